"""How far each explainer can be trusted, measured on held-out real PhysioNet 2017 records.

For a finished run of a model of the CNNv7 family (`--run runs/NAME`, or shipped weights `--run MODEL:TAG`) and the challenge records
(`--data DIR` with A?????.hea/.mat and the reference CSV), on `--records` records the run never
trained on (its TEST list, in sorted order; the validation list where a run has no test list), each
record preprocessed by the run's own pipeline and explained for the model's predicted class:

1. Evidence removal (`ecgzoo.explain.evidence`): the valid signal cut into whole beats (R-R midpoints, from
   the pipeline's R-peaks) or `--window-s` windows (1 s or more), removed segments filled
   in-distribution (`--fills`: `road` noisy linear imputation, `donor` another held-out record's
   stretch, from the next record the model calls another class; `zero` the old fill). For every
   explainer's order, `--seeds` random orders, the removal-effect ceiling and an energy-first control:
   most- and least-relevant-first curves of the target probability and logit margin at
   `--fractions` of the segments, the energy and R-peak shares each removes, paired statistics per
   predicted class against random (mean difference, bootstrap 95% interval, Wilcoxon p, records won).
   `random` in `--explainers` is a random map (uniform noise per sample): a control that must not win.
   Per-record results go to `--jsonl` as they are scored; a rerun with the same file skips the records
   already there and reports on all of them (so an interrupted run is completed by running it again).
   What the old test (zero-filled 0.5-s windows) removes is logged for the same maps at no model cost.
2. The model-parameter randomisation test (Adebayo et al. 2018) on the first `--sanity` records:
   Spearman rank correlation between the map of the trained model and that of the same
   architecture with re-initialised weights (a map that survives randomisation shows the input,
   not the model; below 0.5 passes, as in tests/test_explainers.py).
3. The beat-template view per true class (paper section 5), with `--beats`: CAM and Integrated
   Gradients cut around every R-peak and averaged per class (figure), with the mean normalised map in
   the P-wave region (-250..-80 ms), the QRS (-50..+50 ms) and the T wave (+150..+400 ms), and the
   beat-to-beat RR irregularity (coefficient of variation of RR within a record) per class.

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_trust.py --run cnnv7-s8:physionet2017 \
        --data /tmp/ecgzoo-data/training2017 --records 500 --explainers cam,gradcam,saliency,random
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gzip
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

import ecgzoo
from ecgzoo.explain import evidence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_tables import markdown, old_markdown  # noqa: E402

NAMES = ["cam", "gradcam", "saliency", "random"]
LOOKAHEAD = 20
REGIONS_MS = {"P wave (-250..-80 ms)": (-250, -80), "QRS (-50..+50 ms)": (-50, 50), "T wave (+150..+400 ms)": (150, 400)}


def held_out_records(run, data_path: str | None, count: int) -> tuple[list, list[str]]:
    """The first `count` (sorted) test records of the run (validation where it has no test list), preprocessed
    by its pipeline; skipped ids."""
    split = run.splits or json.loads((run.path / "split.json").read_text())
    ids = sorted(set(split.get("test") or split["val"]) - set(split["train"]))
    dataset_opts = dict(run.config.get("config", {}).get("dataset", {}))  # the task, folds, rate it was trained with
    if data_path is not None:
        dataset_opts["path"] = data_path
    data = ecgzoo.get_dataset(run.info["dataset"], **dataset_opts)
    records, skipped = [], []
    for rid in ids:
        if len(records) == count:
            break
        try:
            records.append(run.pipeline(data.load(rid)))
        except ecgzoo.RecordError as exc:
            skipped.append(f"{rid}: {exc}")
    return records, skipped


def randomised(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """The same architecture with every conv and linear weight re-drawn (Xavier, as CNNv7 initialises)."""
    other = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in other.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(m.weight)
    return other.eval()


def explainers(args: argparse.Namespace, fs: float) -> dict:
    """The plugin explainers named in --explainers (`random`, the random map, is made by `record_maps`)."""
    opts = {"integrated-gradients": {"n_steps": args.ig_steps, "internal_batch_size": 8},
            "occlusion": {"window_s": args.occlusion_window, "stride_s": args.occlusion_window}}
    return {n: ecgzoo.create_explainer(n, **opts.get(n, {}), **({"fs": fs} if n == "occlusion" else {}))
            for n in args.explainers if n != "random"}


def record_maps(names, expl, model, x, target: int, valid: int, fs: float, seed: int) -> dict[str, np.ndarray]:
    """Each explainer's map of one record for `target`; `random`: uniform noise (seeded by the record)."""
    maps = {}
    for n in names:
        if n == "random":
            maps[n] = np.random.default_rng([seed, 7]).random(x.shape[-1])
        else:
            maps[n] = expl[n].explain(model, x[None], torch.tensor([target]), torch.tensor([valid]), fs=fs)[0].numpy()
    return maps


def label_set(record) -> tuple[str, ...]:
    """A record's reference labels: every statement of a multi-label record, else its one label."""
    return tuple(record.label) if isinstance(record.label, (tuple, list)) else (str(record.label),)


def donor_for(records, i: int, target_class: str):
    """The next held-out record (cyclic) whose reference labels do not include the class being explained."""
    for k in range(1, len(records)):
        other = records[(i + k) % len(records)]
        if target_class not in label_set(other):
            return other
    return records[(i + 1) % len(records)]


def segments(args, rec) -> np.ndarray:
    """The record's segment bounds; a record that cannot be cut so (fewer than 2 beats) is a RecordError."""
    try:
        return evidence.segments_of(rec, args.segments, window_s=args.window_s, beats_per_segment=args.beats_per_segment)
    except ValueError as exc:
        raise ecgzoo.RecordError(rec.record_id, f"{args.segments} segments: {exc}") from None


def fills_for(args, rec, bounds, donor, seed: int) -> dict[str, np.ndarray]:
    out = {}
    for f in args.fills:
        if f == "road":
            out[f] = evidence.road_fill(rec.signal, bounds, np.random.default_rng([seed, 11]), rec.fs)
        elif f == "donor":
            out[f] = evidence.donor_fill(rec.signal, bounds, donor.signal, segments(args, donor))
        else:
            out[f] = evidence.zero_fill(rec.signal, bounds)
    return out


def old_windows(rec, maps, seeds: int, fractions=(0.1, 0.2)) -> dict:
    """What the old test (0.5-s windows zeroed, most attributed first) removes at 10% and 20%: shares of
    energy and of R-peaks, and of QRS complexes (R +- 50 ms) cut part-way. No model pass."""
    valid, x = rec.valid_length, rec.signal.astype(np.float64)
    bounds = evidence.window_bounds(valid, round(0.5 * rec.fs))
    peaks = evidence.rpeaks_of(rec)
    peaks = peaks[peaks < valid]
    half = round(0.05 * rec.fs)
    orders = {n: evidence.order_from_scores(evidence.segment_scores(m, bounds)) for n, m in maps.items()}
    orders.update({f"random order {s}": np.random.default_rng([s, 3]).permutation(len(bounds) - 1) for s in range(seeds)})
    out = {}
    for name, order in orders.items():
        row = {}
        for f in fractions:
            mask = np.zeros(valid, bool)
            for w in order[:round(f * (len(bounds) - 1))]:
                mask[bounds[w]:bounds[w + 1]] = True
            qrs = [mask[max(0, p - half):p + half + 1].mean() for p in peaks]
            row[f"{f:g}"] = {"energy": float((x[:, :valid] ** 2 * mask).sum() / max((x[:, :valid] ** 2).sum(), 1e-30)),
                             "rpeaks": float(mask[peaks].mean()) if len(peaks) else 0.0,
                             "qrs_cut": float(np.mean([0 < q < 1 for q in qrs])) if qrs else 0.0}
        out[name] = row
    return out


def rounded(value, digits: int = 6):
    """Floats anywhere in a JSON-ready value to `digits` significant digits (the per-record file stays small)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def score_one(args, run, records, i: int, expl) -> tuple[dict, dict]:
    """One record: its maps, fills and evidence-removal curves (a JSON-ready row) and its maps."""
    rec, model = records[i], run.model
    x = torch.from_numpy(np.ascontiguousarray(rec.signal))
    with torch.no_grad():
        target = int(model(x[None], valid_length=torch.tensor([rec.valid_length])).argmax())
    maps = record_maps(args.explainers, expl, model, x, target, rec.valid_length, rec.fs, i)
    bounds = segments(args, rec)
    fills = fills_for(args, rec, bounds, donor_for(records, i, run.classes[target]), i)
    t0 = time.perf_counter()
    curves = evidence.score_record(model, rec.signal, bounds, target, maps, fills, rpeaks=evidence.rpeaks_of(rec),
                                   seeds=range(args.seeds), fractions=args.fractions, ceiling=args.ceiling,
                                   record_seed=i, batch_size=args.batch_size)
    row = {"record_id": rec.record_id, "label": str(rec.label), "target": run.classes[target], "curves": rounded(curves),
           "old_windows": rounded(old_windows(rec, maps, args.seeds)), "curve_seconds": round(time.perf_counter() - t0, 2)}
    return row, maps


def faithfulness(args, run, records) -> tuple[list[dict], dict, list[int]]:
    """Every record scored (`scored_rows`). Returns all rows, the maps and targets of the records scored
    now (for the sanity and beat views)."""
    expl = explainers(args, run.fs)
    maps, targets = {n: [] for n in args.explainers}, []

    def score(i: int) -> tuple[dict, str]:
        row, m = score_one(args, run, records, i, expl)
        targets.append(run.classes.index(row["target"]))
        for n in args.explainers:
            maps[n].append(m[n])
        return row, ", ".join(f"{f} {c['passes']} passes" for f, c in row["curves"].items())

    return scored_rows(args, records, score), maps, targets


def scored_rows(args, records, score) -> list[dict]:
    """The first --records records in order, each scored by `score(i) -> (row, progress note)` and appended
    to --jsonl as it is done; rows already there (by record_id) are reused, not rescored. Stops scoring new
    records after --max-seconds; a record `score` refuses with a RecordError is reported and left out."""
    path = Path(args.jsonl)
    done = {row["record_id"]: row for row in read_rows(path)}
    rows = []
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    lo, hi = shard_range(getattr(args, "shard", None), min(args.records, len(records)))
    with rows_file(path, "a") as out:
        for i, rec in enumerate(records[:args.records]):
            if rec.record_id in done:
                rows.append(done[rec.record_id])
                continue
            if not lo <= i < hi:
                continue
            if args.max_seconds and time.perf_counter() - started > args.max_seconds:
                print(f"  time budget of {args.max_seconds:g} s spent: stopping at record {i}", flush=True)
                break
            t0 = time.perf_counter()
            try:
                row, note = score(i)
            except ecgzoo.RecordError as exc:
                print(f"  skipped {exc}", flush=True)
                continue
            row["seconds"] = round(time.perf_counter() - t0, 2)
            out.write(json.dumps(row) + "\n")
            out.flush()
            rows.append(row)
            print(f"  {len(rows)}/{args.records} {rec.record_id} {row['seconds']:.1f} s ({note})", flush=True)
    return rows


def rows_file(path: Path, mode: str):
    """A --jsonl file opened as text for reading ("r") or appending ("a"): gzip for `.gz`, plain otherwise."""
    return gzip.open(path, mode + "t", encoding="utf-8") if path.suffix == ".gz" else path.open(mode, encoding="utf-8")


def read_rows(path: Path) -> list[dict]:
    """The rows of a --jsonl file, plain or gzip-compressed (`.jsonl.gz`: each run appends a gzip member,
    flushed row by row). A run that was killed leaves its last member without an end marker and maybe a
    partial last line: the complete rows before it are kept, the rest is scored again."""
    if not path.is_file():
        return []
    lines = []
    try:
        with rows_file(path, "r") as f:
            for line in f:
                lines.append(line)
    except EOFError:  # a gzip member cut short: the lines read so far stand
        pass
    rows = []
    for k, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if k < len(lines) - 1:
                raise SystemExit(f"{path}: row {k + 1} is damaged, in the middle of the file: {line[:80]!r}") from None
    return rows


def shard_range(shard: str | None, n: int) -> tuple[int, int]:
    """Record indices [lo, hi) that `--shard I/N` scores of the first n: the I-th of N contiguous blocks
    (all n without a shard). Shards write their own --jsonl; their rows joined in one file are reused
    by a last run without --shard, which writes the tables of all."""
    if not shard:
        return 0, n
    try:
        i, k = (int(v) for v in shard.split("/"))
    except ValueError:
        raise SystemExit(f"--shard {shard}: expected I/N, e.g. 0/2") from None
    if not (k >= 1 and 0 <= i < k):
        raise SystemExit(f"--shard {shard}: expected 0 <= I < N")
    return i * n // k, (i + 1) * n // k


def tables(rows: list[dict]) -> dict:
    """Summaries over all records and per predicted class, and the old test's removal shares."""
    curves = [r["curves"] for r in rows]
    out = {"all": evidence.summary(curves)}
    for cls in sorted({r["target"] for r in rows}):
        out[cls] = evidence.summary([r["curves"] for r in rows if r["target"] == cls], group=cls)
    names = list(rows[0]["old_windows"])
    old = {n: {f: {k: float(np.mean([r["old_windows"][n][f][k] for r in rows])) for k in rows[0]["old_windows"][n][f]}
               for f in rows[0]["old_windows"][n]} for n in names}
    return {"summary": out, "old_windows": old}


def sanity(args, run, records, target=lambda logits: int(logits.argmax())) -> dict:
    """Spearman correlation of each explainer's map under the trained vs re-initialised weights, on the
    first --sanity held-out records, both maps for the class `target(logits)` picks from the trained
    model's logits (default: the predicted class)."""
    other, fs = randomised(run.model), run.fs
    expl = explainers(args, fs)
    out = {}
    for n, e in expl.items():
        rhos = []
        for rec in records[:args.sanity]:
            x, vl = torch.from_numpy(np.ascontiguousarray(rec.signal))[None], torch.tensor([rec.valid_length])
            with torch.no_grad():
                t = torch.tensor([target(run.model(x, valid_length=vl)[0].double())])
            m, r = (e.explain(model, x, t, vl)[0].numpy() for model in (run.model, other))
            v = rec.valid_length
            rhos.append(float(stats.spearmanr(m[:v], r[:v]).statistic))
        rhos = np.nan_to_num(np.array(rhos))
        out[n] = {"spearman_mean": float(rhos.mean()), "spearman_abs_mean": float(np.abs(rhos).mean()),
                  "records": len(rhos), "passes": bool(np.abs(rhos).mean() < 0.5)}
    return out


def beat_view(args, run, records, maps, labels) -> dict:
    """Per-class beat templates of CAM and IG: region means of the normalised map, RR irregularity, figures."""
    from ecgzoo._infra.files import save_figure
    from ecgzoo.explain.beats import class_templates
    from ecgzoo.report.figures import plot_class_average

    result = {}
    for name in [n for n in ("cam", "integrated-gradients") if n in maps]:
        per_class, skipped = class_templates(records, maps[name], labels)
        fig = plot_class_average(per_class, explainer=name, units=records[0].units,
                                 title=f"{name}: mean beat and normalised map per true class ({len(records)} held-out records)")
        figure = save_figure(Path(args.figures) / f"trust_beats_{name}.png", fig, dpi=80)
        rows = {}
        for cls, tpl in per_class.items():
            mean = tpl.mean_attribution()
            rows[cls] = {"beats": int(tpl.count), **{k: float(mean[(tpl.offsets_ms >= a) & (tpl.offsets_ms <= b)].mean())
                                                      for k, (a, b) in REGIONS_MS.items()}}
        result[name] = {"classes": rows, "skipped": len(skipped), "figure": str(figure)}
    rr = {}
    for cls in sorted(set(labels)):
        cvs = []
        for rec, lab in zip(records, labels, strict=True):
            peaks = np.asarray(rec.meta.get("rpeaks", []))
            peaks = peaks[peaks < rec.valid_length] if peaks.size else peaks
            if lab == cls and peaks.size >= 4:
                r = np.diff(peaks) / rec.fs
                cvs.append(float(r.std() / r.mean()))
        rr[cls] = {"records": len(cvs), "rr_cv_median": float(np.median(cvs)) if cvs else None}
    result["rr_irregularity"] = rr
    return result


def parser(doc: str = __doc__) -> argparse.ArgumentParser:
    """The options of the evidence-removal test (bench_trust_multilabel.py adds its own and new defaults)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--run", required=True, help="finished run directory, or MODEL:TAG of shipped weights")
    p.add_argument("--data", help="folder with the dataset's records; default: the run's dataset path")
    p.add_argument("--records", type=int, default=500)
    p.add_argument("--explainers", default=",".join(NAMES))
    p.add_argument("--segments", choices=("beats", "window"), default="beats")
    p.add_argument("--beats-per-segment", type=int, default=1)
    p.add_argument("--window-s", type=float, default=1.0, help="window segments: seconds (1 or more)")
    p.add_argument("--fills", default="road,donor", help="comma-separated: road, donor, zero")
    p.add_argument("--fractions", default="0,0.1,0.2,0.3,0.5,0.7,1", help="fractions of the segments removed per step")
    p.add_argument("--seeds", type=int, default=3, help="random orders per record")
    p.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the removal-effect ordering")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--sanity", type=int, default=10)
    p.add_argument("--beats", action="store_true", help="also the beat-template view of CAM / IG")
    p.add_argument("--ig-steps", type=int, default=16)
    p.add_argument("--occlusion-window", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shard", help="I/N: score only the I-th of N contiguous blocks of the records (one process per core, "
                   "each with its own --jsonl; a last run without --shard on the joined rows writes the tables of all)")
    p.add_argument("--max-seconds", type=float, default=0, help="stop scoring new records after this long (0: never); "
                   "the statistics then cover the records scored, and the JSON says how many")
    p.add_argument("--jsonl", default=str(Path(__file__).parent / "results" / "trust_records.jsonl.gz"),
                   help="per-record rows, appended as they are scored (.gz: gzip-compressed; plain otherwise)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "trust.json"))
    p.add_argument("--figures", default=str(Path(__file__).parent / "results"))
    return p


def parse(argv: list[str] | None, p: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Parsed options (of `p`, default `parser()`), the comma lists split and the fills checked."""
    p = p or parser()
    args = p.parse_args(argv)
    args.explainers = [n.strip() for n in args.explainers.split(",") if n.strip()]
    args.fills = [f.strip() for f in args.fills.split(",") if f.strip()]
    if set(args.fills) - set(evidence.FILLS):
        p.error(f"--fills: expected some of {', '.join(evidence.FILLS)}, got {','.join(args.fills)}")
    args.fractions = [float(f) for f in args.fractions.split(",")]
    return args


def open_run(args: argparse.Namespace):
    """The run of --run, with --threads set for torch."""
    torch.set_num_threads(args.threads)
    from ecgzoo.serving.loaded_run import load_run

    return load_run(args.run)


def header(args: argparse.Namespace, run) -> dict:
    """What every result file starts with: when, where, which model."""
    from machine import machine_info

    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **machine_info(),
            "setup": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
            "run": run.label or str(run.path), "model": run.info.get("model"), "model_options": run.config.get("model"),
            "parameters": sum(q.numel() for q in run.model.parameters()), "records_requested": args.records}


def write_result(args: argparse.Namespace, result: dict, t0: float, line: str) -> None:
    """--out written (with the seconds since t0), its tables and `line` printed."""
    from ecgzoo._infra.files import write_json

    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(args.out, result)
    print(result["table_md"])
    print(f"{line}; {result['seconds']} s; wrote {args.out}")


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    t0 = time.perf_counter()
    run = open_run(args)
    # LOOKAHEAD more records: donors for the last ones, the same donors whatever --records is
    records, skipped = held_out_records(run, args.data, args.records + LOOKAHEAD)
    labels = [str(r.label) for r in records[:args.records]]
    print(f"{len(labels)} held-out records ({', '.join(f'{c} {labels.count(c)}' for c in sorted(set(labels)))}); "
          f"{len(skipped)} skipped", flush=True)
    rows, maps, targets = faithfulness(args, run, records)
    scored_now = [r for r in records if r.record_id in {row["record_id"] for row in rows}][-len(targets):] if targets else []
    tab = tables(rows)
    result = {
        **header(args, run), "records": len(rows),
        "record_ids": [r["record_id"] for r in rows], "skipped": skipped,
        "labels": {c: [r["label"] for r in rows].count(c) for c in sorted({r["label"] for r in rows})},
        "accuracy_on_these": float(np.mean([r["label"] == r["target"] for r in rows])),
        "settings": {k: getattr(args, k) for k in ("segments", "beats_per_segment", "window_s", "fills", "fractions", "seeds",
                                                   "ceiling", "sanity", "explainers")},
        "seconds_per_record_mean": float(np.mean([r["seconds"] for r in rows])),
        "evidence": tab["summary"], "old_windows": tab["old_windows"],
        "table_md": markdown(tab["summary"], args.fractions) + "\n" + old_markdown(tab["old_windows"]),
        "sanity": sanity(args, run, records) if args.sanity else {},
        "beats": beat_view(args, run, scored_now, maps, [str(r.label) for r in scored_now]) if args.beats and targets else {},
    }
    write_result(args, result, t0, f"{len(rows)} records ({len(targets)} scored now); "
                                   f"accuracy on these {result['accuracy_on_these']:.3f}")


if __name__ == "__main__":
    main()
