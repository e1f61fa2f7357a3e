"""Property-based fuzzing of everything ecgzoo reads: recordings, datasets, checkpoints, run files.

Shared by `tests/test_fuzz.py` (a fixed, derandomized example budget in CI) and
`benchmarks/fuzz_long.py` (a long run that counts cases and violations).

A case starts from a real recording (the shared PhysioNet 2017 sample, when present) or a
synthetic one, written as WFDB, .npy, .csv or .mat, or from a valid checkpoint and run folder,
and applies a list of mutations drawn by hypothesis: truncate a file, flip bytes, change a header
field, change the dtype or shape, swap rate and gain, inject NaN/inf, reorder leads, scale
absurdly, write checkpoint metadata with wrong types or huge values (with and without
recomputed digests). The case is fed through `ecgzoo predict`, `explain`, `evaluate` (a
`wfdb-folder` dataset holding the mutated record) and dataset loading.

The invariant (`violations` returns what broke it, empty when it held):
  * exit 0 with finite probabilities that sum to 1 and a class for every input, nothing on stderr
    but ecgzoo's own progress lines; or
  * a non-zero exit with exactly one error line `ecgzoo CMD: error: ...` naming the input
    (file, record or checkpoint);
  * never a traceback or a Python warning, never a NaN class, never a half-written output file
    (`.tmp-` file, or an evaluation folder without its metrics).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from hypothesis import strategies as st

from ecgzoo._infra.jsonio import loads_strict
from ecgzoo.cli import main

FS = 300.0
WEIRD = ["0", "-1", "abc", "1e309", "nan", "-inf", "99999999999999999999", "", "300/0", "0.000001", "2", "16x3", "1.5"]
FORMATS = ["wfdb", "npy", "csv", "mat", "raw"]


@dataclasses.dataclass
class Source:
    """A base recording: (leads, samples) float32 in mV at FS, and for a real record its original files."""

    name: str
    signal: np.ndarray
    label: str
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)  # {"A00001.hea": b"...", "A00001.mat": b"..."}


def load_sources(sample_dir: Path | None, real: int = 3) -> list[Source]:
    """Synthetic records (always), plus the first `real` shared PhysioNet 2017 sample records of classes N, A, O."""
    import ecgzoo

    data = ecgzoo.get_dataset("synthetic", records=3, seconds=8.0)
    sources = [Source(f"syn{i}", data.load(rid).signal[:, :2400].copy(), data.label(rid))
               for i, rid in enumerate(data.record_ids())]
    if sample_dir is not None and (sample_dir / "REFERENCE.csv").is_file():
        from ecgzoo_plugins.wfdb_records import read_record

        refs = [line.split(",") for line in (sample_dir / "REFERENCE.csv").read_text().split()]
        picked = [next(r for r in refs if r[1] == label) for label in ("N", "A", "O")][:real]
        for rid, label in picked:
            rec = read_record(sample_dir / rid, rid)
            files = {p.name: p.read_bytes() for p in (sample_dir / f"{rid}.hea", sample_dir / f"{rid}.mat")}
            sources.append(Source(rid, rec.signal[:, :6000], label, files))
    return sources


# -- strategies ---------------------------------------------------------------------------------

def mutation() -> st.SearchStrategy:
    frac = st.floats(0.0, 1.0)
    return st.one_of(
        st.tuples(st.just("truncate"), frac),
        st.tuples(st.just("flip"), frac, st.integers(1, 64)),
        st.tuples(st.just("header"), st.integers(0, 12), st.sampled_from(WEIRD)),
        st.tuples(st.just("dtype"), st.sampled_from(["int8", "float16", "float64", "complex64", "bool", "uint64", "int32"])),
        st.tuples(st.just("shape"), st.sampled_from(["3d", "transpose", "two-leads", "empty", "scalar", "short"])),
        st.tuples(st.just("inject"), frac, st.sampled_from(["nan", "inf", "-inf", "1e38"])),
        st.tuples(st.just("swap-rate-gain")),
        st.tuples(st.just("reorder-leads")),
        st.tuples(st.just("scale"), st.sampled_from([0.0, 1e-30, 1e30, -1.0, 1e6])),
    )


def input_case(n_sources: int) -> st.SearchStrategy:
    return st.fixed_dictionaries({
        "source": st.integers(0, n_sources - 1),
        "format": st.sampled_from(FORMATS),
        "mutations": st.lists(mutation(), max_size=3),
        "fs": st.sampled_from([None, "300", "150", "1000", "0", "-5", "nan", "1e308", "1e-300"]),
    })


def checkpoint_case() -> st.SearchStrategy:
    value = st.sampled_from([None, -1, 0, 2**62, 10**12, "x", [1, 2], {"a": 1}, 1e308, True, -0.5])
    edit = st.one_of(
        st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
        st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.integers(1, 64)),
        st.tuples(st.just("meta"), st.sampled_from(["model", "model_config", "model_config.width", "model_config.num_classes",
                                                     "model_config.in_leads", "classes"]), value, st.booleans()),
        st.tuples(st.just("tensor"), st.sampled_from(["dtype", "shape", "offsets"]), st.sampled_from(["F16", "I64", "BOOL", "U8"])),
        st.tuples(st.just("run.json"), st.sampled_from(["input.fs", "input.input_fs", "input.window_seconds", "input.leads",
                                                         "input.lead_names", "classes", "input.pipeline", "input"]), value),
    )
    return st.lists(edit, min_size=1, max_size=2)


# -- building a case's files --------------------------------------------------------------------

def _array_mutations(sig: np.ndarray, mutations: list[tuple]) -> np.ndarray:
    arr: Any = sig.astype(np.float64)
    for m in mutations:
        kind = m[0]
        if kind == "dtype":
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = np.asarray(arr).astype(m[1])
        elif kind == "shape" and np.asarray(arr).ndim >= 1:
            arr = {"3d": lambda a: a[None], "transpose": lambda a: a.T,
                   "two-leads": lambda a: np.concatenate([a, a[::-1]]) if a.ndim == 2 else a,
                   "empty": lambda a: a[..., :0], "scalar": lambda a: np.asarray(a.reshape(-1)[0]) if a.size else a,
                   "short": lambda a: a[..., :10]}[m[1]](np.asarray(arr))
        elif kind == "inject" and np.asarray(arr).size and np.issubdtype(np.asarray(arr).dtype, np.floating):
            arr = np.array(arr)
            arr.reshape(-1)[int(m[1] * (arr.size - 1))] = float(m[2])
        elif kind == "reorder-leads" and np.asarray(arr).ndim == 2:
            arr = np.asarray(arr)[::-1]
        elif kind == "scale":
            with np.errstate(all="ignore"):
                arr = np.asarray(arr) * m[1]
    return np.asarray(arr)


def _write(folder: Path, source: Source, fmt: str, arr: np.ndarray) -> tuple[Path, list[Path]]:
    """Write the (mutated) array in `fmt`; returns (path to give ecgzoo, files that byte mutations may touch)."""
    if fmt == "raw" and source.files:
        for name, data in source.files.items():
            (folder / name).write_bytes(data)
        hea = folder / f"{source.name}.hea"
        return hea, [folder / f"{source.name}.mat", hea]
    if fmt in ("wfdb", "raw"):
        import wfdb

        sig = np.atleast_2d(np.asarray(np.real(arr), dtype=np.float64))  # WFDB has no complex samples: keep the real part
        if sig.ndim != 2 or sig.size == 0:
            sig = np.atleast_2d(np.asarray(source.signal, dtype=np.float64))
        # WFDB format 16 stores inf as an invalid sample (like NaN) and saturates at +-163 mV (gain 200)
        sig = np.clip(np.where(np.isinf(sig), np.nan, sig), -160.0, 160.0)
        sig = sig[:16]  # wfdb writes one header line per lead: keep transposed arrays cheap to write
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wfdb.wrsamp("rec", fs=FS, units=["mV"] * sig.shape[0], sig_name=[f"l{i}" for i in range(sig.shape[0])],
                        p_signal=sig.T, fmt=["16"] * sig.shape[0], adc_gain=[200.0] * sig.shape[0],
                        baseline=[0] * sig.shape[0], write_dir=str(folder))
        return folder / "rec.hea", [folder / "rec.dat", folder / "rec.hea"]
    if fmt == "npy":
        np.save(folder / "rec.npy", arr, allow_pickle=False)
        return folder / "rec.npy", [folder / "rec.npy"]
    if fmt == "csv":
        flat = np.atleast_2d(arr)
        flat = flat.reshape(flat.shape[0], -1) if flat.ndim > 2 else flat
        np.savetxt(folder / "rec.csv", flat.T if flat.ndim == 2 else flat, delimiter=",", fmt="%s")
        return folder / "rec.csv", [folder / "rec.csv"]
    scipy.io.savemat(folder / "rec.mat", {"val": arr})
    return folder / "rec.mat", [folder / "rec.mat"]


def _edit_header_token(path: Path, index: int, value: str) -> None:
    lines = path.read_text(encoding="latin-1").splitlines()
    body = [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")][:2]
    tokens = [(i, j) for i in body for j in range(len(lines[i].split()))]
    if not tokens:
        return
    i, j = tokens[index % len(tokens)]
    parts = lines[i].split()
    parts[j] = value
    lines[i] = " ".join(parts)
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def _swap_rate_gain(path: Path) -> None:
    lines = path.read_text(encoding="latin-1").splitlines()
    body = [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
    if len(body) < 2:
        return
    rec, sig = lines[body[0]].split(), lines[body[1]].split()
    if len(rec) > 2 and len(sig) > 2:
        rec[2], sig[2] = sig[2].split("/")[0].split("(")[0], rec[2]
        lines[body[0]], lines[body[1]] = " ".join(rec), " ".join(sig)
        path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def byte_mutation(path: Path, m: tuple) -> None:
    """Truncate or flip bytes of one file (fractions pick the position)."""
    data = bytearray(path.read_bytes())
    if m[0] == "truncate":
        path.write_bytes(bytes(data[: int(m[1] * len(data))]))
    elif m[0] == "flip" and data:
        start = int(m[1] * (len(data) - 1))
        for k in range(start, min(len(data), start + m[2])):
            data[k] ^= 0xFF
        path.write_bytes(bytes(data))


def build_input(folder: Path, sources: list[Source], case: dict[str, Any]) -> tuple[Path, list[str]]:
    """Write the case's input into `folder`; returns (input path, extra CLI arguments)."""
    source = sources[case["source"]]
    fmt = case["format"] if case["format"] != "raw" or source.files else "wfdb"
    arr = _array_mutations(source.signal, [m for m in case["mutations"] if m[0] in ("dtype", "shape", "inject", "reorder-leads", "scale")])
    path, touchable = _write(folder, source, fmt, arr)
    fs = case["fs"]
    for k, m in enumerate(case["mutations"]):
        target = touchable[k % len(touchable)]
        if m[0] in ("truncate", "flip"):
            byte_mutation(target, m)
        elif m[0] == "header":
            if path.suffix == ".hea":
                _edit_header_token(path, m[1], m[2])
            elif path.suffix == ".csv":
                text = path.read_text(encoding="latin-1").splitlines()
                path.write_text("\n".join([m[2] or "time,ecg", *text[1:]]) + "\n", encoding="latin-1")
            else:
                byte_mutation(target, ("flip", m[1] / 100.0, 4))  # .npy/.mat headers sit at the start
        elif m[0] == "swap-rate-gain":
            if path.suffix == ".hea":
                _swap_rate_gain(path)
            else:
                fs = "200"  # the gain given as the rate
    return path, ([] if path.suffix == ".hea" and fs is None else ["--fs", fs or "300"])


def build_run_copy(run_dir: Path, folder: Path, edits: list[tuple]) -> Path:
    """A copy of the run's files predict needs, with checkpoint / run.json edits applied."""
    from ecgzoo.models.checkpoint import _meta_digest

    dst = folder / "run"
    (dst / "checkpoints").mkdir(parents=True)
    for rel in ("config.json", "run.json", "checkpoints/best.safetensors"):
        shutil.copy(run_dir / rel, dst / rel)
    ckpt = dst / "checkpoints" / "best.safetensors"
    for e in edits:
        if e[0] in ("truncate", "flip"):
            byte_mutation(ckpt, e)
        elif e[0] == "run.json":
            info = json.loads((dst / "run.json").read_text())
            *parents, leaf = e[1].split(".")
            target = info
            for p in parents:
                target = target[p] if isinstance(target.get(p), dict) else target
            target[leaf] = e[2]
            (dst / "run.json").write_text(json.dumps(info))
        else:
            data = ckpt.read_bytes()
            if len(data) < 8:
                continue
            (n,) = struct.unpack("<Q", data[:8])
            try:
                header = json.loads(data[8 : 8 + n])
                ecg = json.loads(header["__metadata__"]["ecgzoo"])
            except (ValueError, KeyError, TypeError):
                continue
            if e[0] == "meta":
                _, key, value, resign = e
                target = ecg["meta"]
                *parents, leaf = key.split(".")
                for p in parents:
                    target = target.setdefault(p, {}) if isinstance(target.get(p), dict) else target
                target[leaf] = value
                if resign:  # digests recomputed: the file looks intact, its content is nonsense
                    ecg["meta_sha256"] = _meta_digest(ecg["meta"])
                else:
                    ecg.pop("meta_sha256", None), ecg.pop("tensors_sha256", None)  # an "old" file without digests
                header["__metadata__"]["ecgzoo"] = json.dumps(ecg)
            else:
                name = sorted(k for k in header if k != "__metadata__")[0]
                if e[1] == "dtype":
                    header[name]["dtype"] = e[2]
                elif e[1] == "shape":
                    header[name]["shape"] = [*header[name]["shape"][:-1], header[name]["shape"][-1] + 1]
                else:
                    a, b = header[name]["data_offsets"]
                    header[name]["data_offsets"] = [a, b - 4]
            raw = json.dumps(header).encode()
            raw += b" " * (-len(raw) % 8)
            ckpt.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    return dst


# -- running and judging ------------------------------------------------------------------------

@dataclasses.dataclass
class Outcome:
    """One checked call: its exit code (None when it raised) and the invariant's violations (empty: held)."""

    code: int | None
    violations: list[str]


def run_cli(*argv: str) -> tuple[int | None, str, str, list[str]]:
    """(exit code or None when it raised, stdout, stderr, python warnings) of one in-process `ecgzoo` call."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # library internals, not about the data
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except BaseException as exc:  # noqa: BLE001 - a traceback is the violation being looked for
                err.write(f"Traceback (uncaught): {type(exc).__name__}: {exc}\n")
                code = None
    return code, out.getvalue(), err.getvalue(), [f"{w.category.__name__}: {w.message}" for w in caught]


def _progress_line(line: str) -> bool:
    return line.startswith("ecgzoo: ") or "preparing records" in line or not line.strip()


def violations(command: str, result: tuple, names: list[str], out_dir: Path | None = None) -> list[str]:
    """What of the invariant (module doc) one call broke; empty when it held."""
    code, out, err, caught = result
    found = [f"python warning: {w}" for w in caught]
    if code is None or "Traceback" in err:
        return [*found, f"traceback: {err.strip().splitlines()[-1] if err.strip() else '?'}"]
    if "Warning" in err:
        found.append(f"warning on stderr: {err.strip()}")
    errors = [ln for ln in err.splitlines() if ln.startswith(f"ecgzoo {command}: error:")]
    others = [ln for ln in err.splitlines() if not ln.startswith(f"ecgzoo {command}: error:") and not _progress_line(ln)]
    if others:
        found.append(f"unexpected stderr: {others[:2]}")
    if command == "predict" and out.lstrip().startswith("{"):
        try:
            doc = loads_strict(out)
        except ValueError as exc:
            return [*found, f"stdout is not strict JSON: {exc}"]
        for r in doc["results"]:
            p = r["probabilities"]
            if p is not None:
                v = np.array(list(p.values()), dtype=float)
                if r["class"] is None or not np.isfinite(v).all() or abs(v.sum() - 1) > 1e-3:
                    found.append(f"bad probabilities {p} class {r['class']}")
            elif code == 0:
                found.append("exit 0 without a class")
    if code == 0:
        if errors:
            found.append(f"exit 0 with an error line: {errors}")
    else:
        if len(errors) != 1 or err.strip().splitlines()[-1] != errors[0]:
            found.append(f"exit {code} without exactly one final error line: {err.strip()[-300:]!r}")
        elif not any(n in errors[0] for n in names):
            found.append(f"error line names none of {names}: {errors[0]}")
    if out_dir is not None and out_dir.exists():
        if [p for p in out_dir.rglob("*") if ".tmp-" in p.name]:
            found.append("half-written (.tmp-) file left")
    return found


def check_predict(run_dir: Path, path: Path, extra: list[str]) -> Outcome:
    result = run_cli("predict", str(run_dir), str(path), *extra, "--json")
    return Outcome(result[0], violations("predict", result, [str(path), path.stem]))


def check_explain(run_dir: Path, path: Path, extra: list[str], out: Path) -> Outcome:
    result = run_cli("explain", str(run_dir), str(path), *extra, "--out", str(out))
    found = violations("explain", result, [str(path), path.stem], out)
    if result[0] == 0 and not list(out.glob("*.png")):
        found.append("explain exit 0 without a figure")
    return Outcome(result[0], found)


def write_folder(folder: Path, sources: list[Source], case: dict[str, Any]) -> str:
    """A wfdb-folder dataset: three intact records and the case's mutated one (WFDB); returns its record id."""
    for i, s in enumerate(sources[:3]):
        _write_named(folder, f"ok{i}", s.signal)
    sub = folder / "mutated"
    sub.mkdir()
    path, _ = build_input(sub, sources, {**case, "format": "raw" if case["format"] == "raw" else "wfdb"})
    rid = "bad"
    for f in sub.iterdir():  # the record renamed to `rid` (its header names its signal file)
        data = f.read_bytes()
        if f.suffix == ".hea":
            data = data.replace(path.stem.encode(), rid.encode())
        (folder / f"{rid}{f.suffix}").write_bytes(data)
    shutil.rmtree(sub)
    labels = [f"ok{i},{s.label}" for i, s in enumerate(sources[:3])] + [f"{rid},{sources[case['source']].label}"]
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    return rid


def _write_named(folder: Path, name: str, sig: np.ndarray) -> None:
    import wfdb

    wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["ECG"], p_signal=sig[:1].T.astype(np.float64), fmt=["16"],
                adc_gain=[200.0], baseline=[0], write_dir=str(folder))


def check_evaluate(run_dir: Path, folder: Path, rid: str, out: Path) -> Outcome:
    result = run_cli("evaluate", str(run_dir), "wfdb-folder", "--set", f"path={folder}", "--device", "cpu", "--out", str(out))
    found = violations("evaluate", result, [rid, str(folder)], out.parent)
    if result[0] == 0:
        try:
            metrics = loads_strict((out / "metrics.json").read_text())
            if metrics["n"] + metrics.get("failed", 0) != 4:
                found.append(f"evaluate scored {metrics['n']} of 4 records")
        except (OSError, ValueError) as exc:
            found.append(f"evaluate exit 0 without strict metrics.json: {exc}")
    elif out.exists() or out.with_name(out.name + ".incomplete").exists():
        found.append("failed evaluation left an output folder")
    return Outcome(result[0], found)


def check_dataset(folder: Path, rid: str) -> Outcome:
    """Loading the mutated record: a finite Record (code 0), or a RecordError naming it (2); anything else is a violation."""
    import ecgzoo

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            rec = ecgzoo.get_dataset("wfdb-folder", path=str(folder)).load(rid)
        except ecgzoo.RecordError as exc:
            code, found = 2, [] if rid in str(exc) else [f"RecordError without the record id: {exc}"]
        except (ecgzoo.ConfigError, ValueError) as exc:
            code, found = 2, [] if str(folder) in str(exc) or rid in str(exc) else [f"error naming nothing: {exc}"]
        except Exception as exc:  # noqa: BLE001
            code, found = None, [f"traceback: {type(exc).__name__}: {exc}"]
        else:
            sig = np.asarray(rec.signal)
            ok = sig.ndim == 2 and sig.size > 0 and np.isfinite(sig).all() and rec.fs > 0
            code, found = 0, [] if ok else [f"loaded a bad record: shape {sig.shape}, fs {rec.fs}"]
    return Outcome(code, found + [f"python warning: {w.category.__name__}: {w.message}" for w in caught])
