"""How far each explainer can be trusted on a multi-label 12-lead model: evidence removal on held-out records.

The multi-label twin of bench_trust.py (its functions and `ecgzoo.explain.evidence`, not a copy): for a
finished multi-label run or shipped weights (`--run xresnet1d101:ptbxl-superdiag`) and its dataset
(`--data`, PTB-XL for the shipped ones), on `--records` records of the run's TEST split (PTB-XL fold
10 for the shipped weights: never used for training, the epoch or the thresholds), sorted, each
preprocessed by the run's own pipeline:

* Beats: R-peaks found on one lead, `--rpeak-lead` (default II: upright, large R in most records;
  the PTB-XL pipeline has no `rpeaks` step, so the project's `rpeaks` plugin, wfdb's XQRS, runs on
  that lead after the pipeline). Segments: whole beats from one R-R midpoint to the next, removed
  across all 12 leads at once; a record where fewer than 2 beats are found is skipped (and listed).
* Targets: every statement the model calls positive at its stored per-class threshold (chosen on
  the validation fold); where none is, the statement of highest probability (marked `fallback`, so a
  record always has one target and the negatives-only records are not silently dropped).
  Quantities: the statement's sigmoid probability and its logit (the multi-label margin).
* Fills: `road` (noisy linear imputation) and `donor`: the next held-out record (cyclic) whose
  reference labels do not include the explained statement, from one of its own beat boundaries.
* Orderings: every explainer's beat means (`--explainers`, default cam, gradcam, saliency; add
  integrated-gradients where the core allows: its 16 steps cost more than the rest of a target's
  maps together; lead occlusion is lead-level, not temporal, so it is not part of this test),
  `random` (a random map, the control that must not win), `--seeds` random orders (the baseline),
  the removal-effect ceiling and energy-first (the control for maps that find loud beats).
* `--targets-per-record K`: at most K of a record's positive statements, drawn uniformly (seeded by
  the record's index); for a model that calls many statements per record (`ptbxl-all`: 3.8 on
  average), so that 500 records fit the time. The row keeps how many were positive.
* Statistics: paired per (record, statement) against random, over all explained pairs and per
  statement with at least `--min-records` explained records (MoRF lower / LeRF higher = faithful).

Per-record rows go to `--jsonl` as they are scored (all of a record's targets in one row); a rerun
with the same file skips the records already there, so an interrupted run is completed by rerunning.

    OMP_NUM_THREADS=1 taskset -c 0 .venv/bin/python benchmarks/bench_trust_multilabel.py \\
        --run xresnet1d101:ptbxl-superdiag --data /tmp/ecgzoo-data/ptb-xl --records 500
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import ecgzoo
from ecgzoo.explain import evidence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_trust as bt  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def targets_of(probabilities: Sequence[float], thresholds: Sequence[float]) -> tuple[list[int], bool]:
    """The statements to explain: every class with probability at or above its threshold, most probable
    first; none: the most probable class alone, with `fallback` True."""
    p, t = np.asarray(probabilities, dtype=float), np.asarray(thresholds, dtype=float)
    if p.shape != t.shape:
        raise ValueError(f"{p.size} probabilities but {t.size} thresholds: one threshold per class expected")
    positive = np.flatnonzero(p >= t)
    if positive.size:
        return [int(i) for i in positive[np.argsort(-p[positive], kind="stable")]], False
    return [int(np.argmax(p))], True


def drawn(targets: Sequence[int], probabilities: Sequence[float], k: int, seed: int) -> list[int]:
    """At most `k` of `targets` drawn uniformly without replacement (generator seeded by `seed`, the
    record's index, so a rerun draws the same), most probable first; `k` 0 or at least len(targets): all.

    A uniform draw, not the k most probable: on a model that calls many statements per record, the most
    probable is nearly always a statement of every beat alike (sinus rhythm, normal ECG), and a table of
    those alone would say little about the rest."""
    if k <= 0 or k >= len(targets):
        return list(targets)
    picked = np.random.default_rng(seed).choice(len(targets), size=k, replace=False)
    p = np.asarray(probabilities, dtype=float)
    return sorted((int(targets[j]) for j in picked), key=lambda t: -p[t])


def with_rpeaks(run, lead_name: str):
    """The run with a pipeline that also finds R-peaks (meta["rpeaks"]) on lead `lead_name` afterwards."""
    names = list(run.lead_names or ())
    if lead_name not in names:
        raise SystemExit(f"--rpeak-lead {lead_name}: the model's leads are {', '.join(names) or 'not named'}")
    detector, pipeline = ecgzoo.create_preprocessor("rpeaks", lead=names.index(lead_name)), run.pipeline
    return dataclasses.replace(run, pipeline=lambda record: detector(pipeline(record)))


def score_one(args, run, records, i: int, expl) -> dict:
    """One record's row: its targets (`targets_of`, `drawn`) and for each the evidence-removal curves."""
    rec, model = records[i], run.model
    x = torch.from_numpy(np.ascontiguousarray(rec.signal))
    with torch.no_grad():
        logits = model(x[None], valid_length=torch.tensor([rec.valid_length]))[0].double()
    probs = torch.sigmoid(logits).numpy()
    positives, fallback = targets_of(probs, run.thresholds)
    chosen = drawn(positives, probs, args.targets_per_record, i)
    bounds = bt.segments(args, rec)
    rpeaks = evidence.rpeaks_of(rec)
    explained, map_seconds, t0 = [], 0.0, time.perf_counter()
    for target in chosen:
        t1 = time.perf_counter()
        maps = bt.record_maps(args.explainers, expl, model, x, target, rec.valid_length, rec.fs, i)
        map_seconds += time.perf_counter() - t1
        fills = bt.fills_for(args, rec, bounds, bt.donor_for(records, i, run.classes[target]), i)
        curves = evidence.score_record(model, rec.signal, bounds, target, maps, fills, rpeaks=rpeaks,
                                       seeds=range(args.seeds), fractions=args.fractions, ceiling=args.ceiling,
                                       record_seed=i, batch_size=args.batch_size, multilabel=True)
        explained.append({"statement": run.classes[target], "probability": round(float(probs[target]), 6),
                          "threshold": round(float(run.thresholds[target]), 6), "curves": bt.rounded(curves)})
    row = {"record_id": rec.record_id, "labels": list(bt.label_set(rec)), "fallback": fallback, "beats": len(bounds) - 1,
           "positive": len(positives),
           "targets": explained, "map_seconds": round(map_seconds, 2),
           "curve_seconds": round(time.perf_counter() - t0 - map_seconds, 2)}
    return row


def statement_tables(rows: Sequence[dict], min_records: int) -> dict:
    """`evidence.summary` over every explained (record, statement) pair (`all`) and per statement explained
    on at least `min_records` records; `explained`: how many records explain each statement."""
    pairs = [(t["statement"], t["curves"]) for r in rows for t in r["targets"]]
    counts = {s: sum(1 for name, _ in pairs if name == s) for s in sorted({name for name, _ in pairs})}
    out = {"all": evidence.summary([c for _, c in pairs])}
    for statement, n in counts.items():
        if n >= min_records:
            out[statement] = evidence.summary([c for name, c in pairs if name == statement], group=statement)
    return {"summary": out, "explained": counts}


def beats_agree(counts: Sequence[int], tolerance: float = 0.2) -> bool:
    """Whether the first lead's R-peak count (the beats used) lies within `tolerance` of the median count
    over it and the check leads (a detector that also takes T waves for beats doubles the count)."""
    return abs(counts[0] - float(np.median(counts))) <= tolerance * float(np.median(counts))


def lead_check(records, rows, lead_names: Sequence[str], check: Sequence[str]) -> dict[str, list[int]]:
    """R-peak counts of each scored record on the beat lead (first) and the `check` leads, by record id."""
    by_id = {r.record_id: r for r in records}
    out = {}
    for row in rows:
        rec = by_id[row["record_id"]]
        counts = [len(evidence.rpeaks_of(rec))]
        for name in check:
            try:
                found = ecgzoo.create_preprocessor("rpeaks", lead=list(lead_names).index(name))(rec)
                counts.append(len(found.meta["rpeaks"]))
            except ecgzoo.RecordError:
                counts.append(0)
        out[row["record_id"]] = counts
    return out


def agreement(args, run, records, rows) -> dict:
    """--check-leads: how often the beat lead's R-peaks agree with the other leads (`beats_agree`), and the
    statistics again on the records where they do."""
    if not args.check_leads:
        return {}
    counts = lead_check(records, rows, run.lead_names, args.check_leads)
    agree = [r for r in rows if beats_agree(counts[r["record_id"]])]
    tab = statement_tables(agree, args.min_records)
    return {"leads": [args.rpeak_lead, *args.check_leads], "counts": counts, "records_agreeing": len(agree),
            "disagreeing": [r["record_id"] for r in rows if not beats_agree(counts[r["record_id"]])],
            "explained_per_statement": tab["explained"], "evidence": tab["summary"],
            "table_md": bt.markdown(tab["summary"], args.fractions, margin_name="logit", unit="explained statement",
                                    items="explained pairs of the records whose beats agree across leads")}


def faithfulness(args, run, records) -> tuple[list[dict], int]:
    """All rows (`bt.scored_rows`), and how many records were scored now (the rest reused)."""
    expl = bt.explainers(args, run.fs)
    now = []

    def score(i: int) -> tuple[dict, str]:
        row = score_one(args, run, records, i, expl)
        now.append(i)
        passes = sum(c["passes"] for t in row["targets"] for c in t["curves"].values())
        return row, f"{len(row['targets'])} target(s) {', '.join(t['statement'] for t in row['targets'])}, {passes} passes"

    return bt.scored_rows(args, records, score), len(now)


def parse(argv: list[str] | None):
    p = bt.parser(__doc__)
    tag = "{model}"
    p.set_defaults(explainers="cam,gradcam,saliency,random", sanity=0, batch_size=32,
                   jsonl=str(RESULTS / f"trust_{tag}.jsonl.gz"), out=str(RESULTS / f"trust_{tag}.json"))
    p.add_argument("--rpeak-lead", default="II", help="lead the R-peaks (beat boundaries) are found on")
    p.add_argument("--check-leads", default="", help="comma-separated leads whose R-peak counts check the beat lead's")
    p.add_argument("--min-records", type=int, default=20, help="per-statement rows for statements explained this often")
    p.add_argument("--targets-per-record", type=int, default=0, help="explain at most this many of a record's positive "
                   "statements, drawn uniformly at random (seeded by the record's index; 0: all of them)")
    args = bt.parse(argv, p)
    if args.beats or args.segments != "beats":
        p.error("this test removes whole beats (--segments beats) and has no beat-template view (--beats)")
    args.check_leads = [n.strip() for n in args.check_leads.split(",") if n.strip()]
    safe = args.run.replace(":", "_").replace("/", "_").strip("_")
    args.jsonl, args.out = args.jsonl.replace(tag, safe), args.out.replace(tag, safe)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    t0 = time.perf_counter()
    run = bt.open_run(args)
    if not run.thresholds:
        raise SystemExit(f"{args.run}: no per-class thresholds stored: not a multi-label run (use bench_trust.py)")
    run = with_rpeaks(run, args.rpeak_lead)
    records, skipped = bt.held_out_records(run, args.data, args.records + bt.LOOKAHEAD)
    print(f"{min(len(records), args.records)} held-out records; {len(skipped)} skipped", flush=True)
    rows, scored_now = faithfulness(args, run, records)
    tab = statement_tables(rows, args.min_records)
    result = {
        **bt.header(args, run), "classes": run.classes, "records": len(rows),
        "targets_per_record": args.targets_per_record or "all positive",
        "record_ids": [r["record_id"] for r in rows], "skipped": skipped, "rpeak_lead": args.rpeak_lead,
        "explained_pairs": sum(len(r["targets"]) for r in rows), "explained_per_statement": tab["explained"],
        "fallback_records": sum(r["fallback"] for r in rows), "beats_mean": float(np.mean([r["beats"] for r in rows])),
        "settings": {k: getattr(args, k) for k in ("fills", "fractions", "seeds", "ceiling", "explainers", "min_records")},
        "seconds_per_record_mean": float(np.mean([r["seconds"] for r in rows])),
        "evidence": tab["summary"],
        "table_md": bt.markdown(tab["summary"], args.fractions, margin_name="logit", unit="explained statement",
                                items="explained (record, statement) pairs"),
        "sanity": bt.sanity(args, run, records, lambda logits: targets_of(torch.sigmoid(logits).numpy(), run.thresholds)[0][0])
        if args.sanity else {},
        "beat_lead_check": agreement(args, run, records, rows),
    }
    bt.write_result(args, result, t0, f"{len(rows)} records, {result['explained_pairs']} explained pairs ({scored_now} "
                                      f"records scored now, {result['fallback_records']} with no positive statement)")


if __name__ == "__main__":
    main()
