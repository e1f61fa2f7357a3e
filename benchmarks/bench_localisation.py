"""Do maps localise annotated atrial fibrillation? CPSC 2021 records with AF episodes marked sample by sample.

For each WFDB record of `--data` (CPSC 2021: two leads, 200 Hz, `.atr` rhythm annotations; read with
`ecgzoo.data.annotations`), lead `--lead` is explained window by window with the shipped one-lead model exactly
as `ecgzoo explain RUN REC --lead L --save-maps DIR` does (`ecgzoo.serving.saved_maps`): every explainer's map of
class `--cls` (A) at the record's own rate, and, as the baseline a map must beat, the plain probability
track (each sample gets P(A) of its window). Scores:

1. sample-level AUROC of each map against the annotated AF samples (`(AFIB`, `(AFL`), per record (only
   records holding both AF and other samples) and pooled over all samples of all records;
2. episodes: the rule, fixed before any score was seen, marks in each record the share of samples the
   model's own window decisions call A (windows whose most probable class is A), taking the samples where
   the map, smoothed by a centred `--smooth-s` moving mean, is highest (the probability track: the windows
   called A themselves); runs of marked samples closer than `--merge-s` are joined into episodes. Each
   annotated onset (offset) not at the record's start (end) is matched to the nearest marked onset (offset):
   the median absolute distance in seconds and how many were found within `--tolerance-s`; the Jaccard
   index of marked and annotated AF samples (pooled); records without AF: the share marked (false alarms);
   records all AF: the share marked (sensitivity).
3. cost: seconds per explainer (one core), and for beat-removal its model evaluations.

`--rss RECORD` instead measures the peak resident memory of `ecgzoo explain --save-maps` (cam, --lead) in a
fresh process on RECORD and on a 30-minute two-lead record made by joining the CPSC records end to end.

    OMP_NUM_THREADS=1 taskset -c 0 nice -n 5 .venv/bin/python benchmarks/bench_localisation.py \\
        --data /work/shared/data/cpsc2021-sample --explainers cam,gradcam,saliency,beat-removal
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.stats import rankdata

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

import ecgzoo  # noqa: E402
from ecgzoo.data.annotations import episodes_of, rhythm_episodes, rhythm_mask  # noqa: E402
from ecgzoo.data.inputs import open_input, select_lead  # noqa: E402
from ecgzoo.serving.loaded_run import load_run  # noqa: E402
from ecgzoo.serving.saved_maps import save_recording_maps  # noqa: E402

TRACK = "probability track"
OPTIONS = {"integrated-gradients": {"n_steps": 16}}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties counted half, Mann-Whitney); None unless both classes occur."""
    pos, n = int(labels.sum()), len(labels)
    if pos == 0 or pos == n:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))


def probability_track(windows: list[dict], cls: int, fs: float, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(cls) per sample, True where the window's most probable class is cls); later windows overwrite overlaps."""
    track, called = np.full(samples, np.nan), np.zeros(samples, dtype=bool)
    for w in windows:
        a, b = int(round(w["start_s"] * fs)), int(round(w["end_s"] * fs))
        if w["probabilities"] is not None:
            track[a:b] = w["probabilities"][cls]
            called[a:b] = int(np.argmax(w["probabilities"])) == cls
    return track, called


def marked(values: np.ndarray, share: float, fs: float, smooth_s: float) -> np.ndarray:
    """The `share` of samples where `values` (smoothed over `smooth_s` s, NaN as the lowest) are highest."""
    k = int(round(share * len(values)))
    if k == 0:
        return np.zeros(len(values), dtype=bool)
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    if smooth_s > 0:
        finite = np.isfinite(v)
        v = np.where(finite, uniform_filter1d(np.where(finite, v, 0.0), max(1, round(smooth_s * fs)), mode="nearest"), -np.inf)
    out = np.zeros(len(v), dtype=bool)
    out[np.argsort(-v, kind="stable")[:k]] = True
    return out


def joined(mask: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Runs of True, those closer than `gap` samples joined."""
    out: list[list[int]] = []
    for a, b in episodes_of(mask):
        if out and a - out[-1][1] < gap:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


#: annotations within this of the record's start or end mark the record's edge, not an onset or offset (CPSC 2021
#: closes an episode that runs to the end with an `(N` on the last sample); records with less than this of AF
#: (or of other rhythm) count as without AF (all AF)
EDGE_S = 1.0


def group(af: np.ndarray, fs: float) -> str:
    """'no AF', 'all AF' or 'paroxysmal' (at least EDGE_S of both)."""
    edge = EDGE_S * fs
    return "no AF" if af.sum() < edge else "all AF" if (~af).sum() < edge else "paroxysmal"


def edge_errors(truth: list[tuple[int, int]], found: list[tuple[int, int]], samples: int, fs: float) -> dict[str, list]:
    """Seconds from each annotated onset (not within EDGE_S of the start) and offset (not within EDGE_S of the end) to
    the nearest found one (None: none found)."""
    out: dict[str, list] = {"onset": [], "offset": []}
    edge = EDGE_S * fs
    for kind, i, skip in (("onset", 0, 0), ("offset", 1, samples)):
        marks = np.array([e[i] for e in found])
        for e in truth:
            if abs(e[i] - skip) > edge:
                out[kind].append(float(np.min(np.abs(marks - e[i]))) / fs if len(marks) else None)
    return out


def score_record(maps: dict[str, np.ndarray], af: np.ndarray, called: np.ndarray, fs: float, args) -> dict:
    """Per map: AUROC, the marked share, Jaccard counts and onset/offset errors on one record."""
    truth = episodes_of(af)
    share = float(called.mean())
    out = {}
    for name, values in maps.items():
        ok = np.isfinite(values)
        mask = called if name == TRACK else marked(values, share, fs, args.smooth_s)
        found = joined(mask, int(round(args.merge_s * fs)))
        both = group(af, fs) == "paroxysmal"
        out[name] = {"auroc": auroc(values[ok], af[ok]) if both else None, "marked_share": float(mask.mean()),
                     "intersection": int((mask & af).sum()), "union": int((mask | af).sum()),
                     "episodes": len(found), **edge_errors(truth, found, len(af), fs)}
    return out


def explain_record(run, path: Path, args, explainers: dict) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """(scores and costs, maps of class `args.cls` with the probability track, annotated AF mask) of one record."""
    source = select_lead(open_input(path), args.lead)
    episodes = rhythm_episodes(path, source.samples) or []
    af = rhythm_mask(episodes, source.samples)
    maps, seconds, cost = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, explainer in explainers.items():
            t0 = time.perf_counter()
            counted = _Counted(explainer)
            save_recording_maps(run, source, {name: counted}, tmp, classes=[args.cls], batch_size=args.batch_size)
            seconds[name] = time.perf_counter() - t0
            maps[name] = np.load(Path(tmp) / f"{path.name}_{name}.npy")[0].astype(np.float64)
            cost[name] = counted.evaluations
            windows = json.loads((Path(tmp) / f"{path.name}_{name}.json").read_text())["windows"]
    track, called = probability_track(windows, args.cls, source.fs, source.samples)
    maps[TRACK] = track
    scores = score_record(maps, af, called, source.fs, args)
    result = {"record": path.name, "group": group(af, source.fs), "seconds_signal": source.samples / source.fs,
              "af_share": float(af.mean()),
              "called_share": float(called.mean()), "episodes": len(episodes_of(af)), "explain_seconds": seconds,
              "evaluations": cost, "scores": scores}
    return result, maps, af


class _Counted:
    """An explainer that counts the model evaluations the wrapped one reports (`last_cost`, beat-removal)."""

    def __init__(self, explainer):
        self.explainer, self.evaluations = explainer, 0
        self.config = getattr(explainer, "config", None)

    def explain(self, *args, **kwargs):
        out = self.explainer.explain(*args, **kwargs)
        cost = getattr(self.explainer, "last_cost", None)
        self.evaluations += cost.evaluations if cost is not None else 0
        return out


def _median(values: list) -> float | None:
    found = [v for v in values if v is not None]
    return float(np.median(found)) if found else None


def summary(results: list[dict], pooled: dict[str, float | None], tolerance_s: float) -> dict[str, dict]:
    """Per map: per-record and pooled AUROC, onset/offset errors, Jaccard, false-alarm and sensitivity shares, cost."""
    both = [r for r in results if r["group"] == "paroxysmal"]
    none = [r for r in results if r["group"] == "no AF"]
    only = [r for r in results if r["group"] == "all AF"]
    out = {}
    for name in results[0]["scores"]:
        s = [r["scores"][name] for r in results]
        row = {"auroc_per_record": [r["scores"][name]["auroc"] for r in both], "auroc_pooled": pooled[name],
               "jaccard_pooled": sum(x["intersection"] for x in s) / max(1, sum(x["union"] for x in s)),
               "false_alarm_share_no_af": float(np.mean([r["scores"][name]["marked_share"] for r in none])) if none else None,
               "marked_share_all_af": float(np.mean([r["scores"][name]["marked_share"] for r in only])) if only else None,
               "seconds": sum(r["explain_seconds"].get(name, 0.0) for r in results),
               "evaluations": sum(r["evaluations"].get(name, 0) for r in results)}
        row["auroc_mean_paroxysmal"] = float(np.mean(row["auroc_per_record"])) if both else None
        for kind in ("onset", "offset"):
            errors = [e for r in results for e in r["scores"][name][kind]]
            row[f"{kind}_median_s"] = _median(errors)
            row[f"{kind}_within"] = [sum(e is not None and e <= tolerance_s for e in errors), len(errors)]
        out[name] = row
    return out


def _f(v, fmt: str = ".3f") -> str:
    return "n/a" if v is None else format(v, fmt)


def table(rows: dict[str, dict], tolerance_s: float) -> str:
    """The summary as a markdown table (one row per map)."""
    lines = ["| map | AUROC per record (paroxysmal, mean) | AUROC pooled | onset: median s, within "
             f"{tolerance_s:g} s | offset: median s, within {tolerance_s:g} s | Jaccard pooled | marked, no-AF records | "
             "marked, all-AF records | explain time (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        on, off = r["onset_within"], r["offset_within"]
        lines.append(f"| {name} | {_f(r['auroc_mean_paroxysmal'])} ({', '.join(_f(a, '.2f') for a in r['auroc_per_record'])}) | "
                     f"{_f(r['auroc_pooled'])} | {_f(r['onset_median_s'], '.1f')}, {on[0]}/{on[1]} | "
                     f"{_f(r['offset_median_s'], '.1f')}, {off[0]}/{off[1]} | {_f(r['jaccard_pooled'])} | "
                     f"{_f(r['false_alarm_share_no_af'])} | {_f(r['marked_share_all_af'])} | {r['seconds']:.0f}"
                     + (f" ({r['evaluations']:,} evaluations)" if r["evaluations"] else "") + " |")
    return "\n".join(lines)


def _peak_rss_mb(cmd: list[str]) -> float:
    """Peak resident memory (MB) of a fresh process running `cmd`."""
    import os
    import subprocess

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024


def _joined_record(data: Path, folder: Path, minutes: float) -> Path:
    """A two-lead WFDB record of `minutes` made of the CPSC records of `data` joined end to end (digital values kept)."""
    import wfdb

    parts, n, fs = [], 0, None
    names = (data / "RECORDS").read_text().split()
    while n < minutes * 60 * (fs or 200):
        rec = wfdb.rdrecord(str(data / names[len(parts) % len(names)]), physical=False)
        fs = rec.fs
        parts.append(rec.d_signal)
        n += len(rec.d_signal)
    sig = np.concatenate(parts)[:int(minutes * 60 * fs)]
    wfdb.wrsamp("joined", fs=fs, units=["mV", "mV"], sig_name=list(rec.sig_name), d_signal=sig, fmt=["16", "16"],
                adc_gain=list(rec.adc_gain), baseline=list(rec.baseline), write_dir=str(folder))
    return folder / "joined.hea"


def rss(args) -> dict:
    """Peak RSS of `ecgzoo explain --save-maps` (cam, --lead) on args.rss and on a 30-minute joined record."""
    exe = str(Path(sys.executable).with_name("ecgzoo"))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        joined_path = _joined_record(Path(args.data), Path(tmp), 30.0)
        for path in (Path(args.rss), joined_path):
            minutes = open_input(path).samples / open_input(path).fs / 60
            cmd = [exe, "explain", args.run, str(path), "--lead", str(args.lead), "--explainer", "cam",
                   "--save-maps", str(Path(tmp) / "maps"), "--out", str(Path(tmp) / "out")]
            t0 = time.perf_counter()
            out[path.stem] = {"minutes": minutes, "peak_rss_mb": _peak_rss_mb(cmd), "seconds": time.perf_counter() - t0,
                              "command": " ".join(cmd[1:])}
            print(f"{path.stem}: {minutes:.1f} min, peak RSS {out[path.stem]['peak_rss_mb']:.0f} MB, "
                  f"{out[path.stem]['seconds']:.0f} s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default="cnnv7-s8:physionet2017")
    p.add_argument("--data", default="/work/shared/data/cpsc2021-sample")
    p.add_argument("--records", default="", help="comma-separated record names (default: all of RECORDS)")
    p.add_argument("--explainers", default="cam,gradcam,saliency,beat-removal")
    p.add_argument("--lead", default="0")
    p.add_argument("--cls", type=int, default=1, help="class index explained (1: A for physionet2017)")
    p.add_argument("--smooth-s", type=float, default=10.0)
    p.add_argument("--merge-s", type=float, default=10.0)
    p.add_argument("--tolerance-s", type=float, default=30.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--rss", metavar="RECORD", help="measure peak RSS of --save-maps on RECORD and a 30-min joined record")
    p.add_argument("--out", default="benchmarks/results/localisation.json")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    head = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **machine_info(),
            "command": " ".join(sys.argv), "torch_threads": torch.get_num_threads()}
    if args.rss:
        out = {**head, "rss": rss(args)}
        Path(args.out).write_text(json.dumps(out, indent=1))
        return
    run = load_run(args.run)
    explainers = {n: ecgzoo.create_explainer(n, **OPTIONS.get(n, {})) for n in args.explainers.split(",") if n}
    data = Path(args.data)
    names = args.records.split(",") if args.records else (data / "RECORDS").read_text().split()
    results, pooled_maps, pooled_af = [], {}, []
    for name in names:
        r, maps, af = explain_record(run, data / name, args, explainers)
        results.append(r)
        pooled_af.append(af)
        for k, v in maps.items():
            pooled_maps.setdefault(k, []).append(v.astype(np.float32))
        print(f"{name}: {r['seconds_signal'] / 60:.1f} min, AF {r['af_share']:.2f}, called A {r['called_share']:.2f}, "
              + ", ".join(f"{k} {_f(v['auroc'], '.2f')}" for k, v in r["scores"].items())
              + f" ({', '.join(f'{k} {s:.0f} s' for k, s in r['explain_seconds'].items())})", flush=True)
    af = np.concatenate(pooled_af)
    pooled = {}
    for k, parts in pooled_maps.items():
        v = np.concatenate(parts)
        ok = np.isfinite(v)
        pooled[k] = auroc(v[ok], af[ok])
    rows = summary(results, pooled, args.tolerance_s)
    print(table(rows, args.tolerance_s), flush=True)
    Path(args.out).write_text(json.dumps({**head, "options": vars(args), "explainer_options": OPTIONS, "summary": rows,
                                          "results": results}, indent=1))

if __name__ == "__main__":
    main()
