"""Explainer cost and faithfulness on this machine.

1. Wall time of each explainer on full-size CNNv7 (CPU) for one 60-s record (18,000 samples at
   300 Hz), in units of one eager float32 forward pass of the same record timed just before and
   after it in the same process (the machine is shared: only same-run ratios mean anything), for
   each fast-path precision (`--precisions`) and optionally the autograd/captum path (`--slow`);
   Integrated Gradients `--ig-steps` path points in batches of `--ig-batch`, occlusion windows of
   `--occlusion-window` s every `--occlusion-stride` s. The cost of a 24-hour recording is
   extrapolated linearly from the per-second cost (all explainers are local: windows of a long
   input cost the same per second), and the bf16 map's relative L2 error against fp32 is printed.
   `beat-removal` (in `--explainers`) runs on a synthetic 60-s ECG instead of noise (it needs beats; the
   input is then the same for every explainer of the run) and reports its model evaluations (one per
   beat and lead, plus one) and their work in full forward passes (receptive-field crops where the model
   declares a radius).
2. With `--run RUN_DIR` (a model trained on PhysioNet 2017 data) and `--data DIR` (records
   `A?????.mat/.hea` and `REFERENCE.csv`, e.g. the shared 240-record sample): the deletion-AUC
   table of each explainer next to the random baseline, over `--records` records per class.

    .venv/bin/python benchmarks/bench_explainers.py                       # timing only
    .venv/bin/python benchmarks/bench_explainers.py --skip-timing --run runs/NAME \
        --data ../shared/data/physionet2017-sample --records 5
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_info

import ecgzoo

NAMES = ["cam", "gradcam", "saliency", "integrated-gradients", "occlusion"]


def options(args: argparse.Namespace, fs: float) -> dict[str, dict]:
    return {
        "cam": {}, "gradcam": {}, "saliency": {},
        "integrated-gradients": {"n_steps": args.ig_steps, "internal_batch_size": args.ig_batch},
        "occlusion": {"fs": fs, "window_s": args.occlusion_window, "stride_s": args.occlusion_stride,
                      "perturbations_per_eval": args.occlusion_batch},
        "beat-removal": {"batch_size": args.beat_batch},
    }


def ecg_input(leads: int, samples: int, fs: float) -> torch.Tensor:
    """(1, leads, samples) of synthetic ECG (beats for `beat-removal` to find; the other explainers cost the same
    on any input), every lead the same trace."""
    data = ecgzoo.get_dataset("synthetic", records=1, seconds=samples / fs, fs=fs, seed=0)
    sig = data.load(data.record_ids()[0]).signal[0, :samples]
    return torch.from_numpy(np.tile(sig, (leads, 1)))[None]


TARGETS = {"cam": 1.1, "gradcam": 1.5, "integrated-gradients": 12.0, "occlusion": 8.0}


def _clock(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def timing(args: argparse.Namespace) -> dict:
    """Each explainer's cost on one 60-s record in units of one eager float32 forward pass of the same
    record, timed in the same process, alternating with it (forward, explainer, forward, ...).

    The machine is shared with training runs: wall times are disturbed upwards by whatever else runs,
    so the fewest seconds of the repeats count, and the unit is the fewest seconds of all forward
    passes of the run. CPU seconds of this process (one thread) are far less disturbed by others and
    are reported next to them; on an idle machine the two agree."""
    torch.manual_seed(0)
    model = ecgzoo.create_model(args.model, num_classes=4).eval()
    fs, samples = 300.0, int(60 * 300)
    x = ecg_input(model.in_leads, samples, fs) if "beat-removal" in args.explainers else torch.randn(1, model.in_leads, samples)
    target = torch.tensor([1])

    def forward() -> None:
        with torch.no_grad():
            model(x)

    forward()  # warm-up
    rows, opts, maps, forwards = [], options(args, fs), {}, []
    variants = [(n, p) for n in args.explainers for p in args.precisions
                if not (p == "bf16" and n == "saliency")] + [(n, "slow") for n in args.slow]
    for name, precision in variants:
        extra = {"fast": False} if precision == "slow" else {"precision": precision}
        explainer = ecgzoo.create_explainer(name, **opts[name], **extra)
        box, runs = {}, []
        for _ in range(args.repeats):
            forwards.append(_clock(forward))
            runs.append(_clock(lambda e=explainer, b=box: b.update(attr=e.explain(model, x, target=target, fs=fs))))
        forwards.append(_clock(forward))
        attr = box["attr"]
        assert attr.shape == (1, samples)
        row = {"explainer": name, "path": precision, "options": opts[name], "target_units": TARGETS.get(name),
               "wall_s": round(min(r[0] for r in runs), 3), "cpu_s": round(min(r[1] for r in runs), 3)}
        cost = getattr(explainer, "last_cost", None)  # beat-removal: model evaluations and their work in full passes
        if cost is not None:
            row.update(evaluations=cost.evaluations, full_pass_equivalents=round(cost.full_pass_equivalents, 2))
        if precision == "fp32":
            maps[name] = attr
        elif name in maps:
            key = "rel_l2_error_vs_fp32" if precision == "bf16" else "rel_l2_diff_vs_fast_fp32"
            row[key] = float((attr - maps[name]).norm() / maps[name].norm())
        rows.append(row)
        print(f"  {name:<22} {precision:<5} wall {row['wall_s']:8.2f} s  cpu {row['cpu_s']:8.2f} s", flush=True)
    unit_wall, unit_cpu = min(f[0] for f in forwards), min(f[1] for f in forwards)
    print(f"unit: eager fp32 forward, fewest of {len(forwards)}: wall {unit_wall:.2f} s, cpu {unit_cpu:.2f} s")
    for row in rows:
        row["units_wall"] = round(row["wall_s"] / unit_wall, 2)
        row["units_cpu"] = round(row["cpu_s"] / unit_cpu, 2)
        row["hours_per_24h_extrapolated_wall"] = round(row["wall_s"] / 60 * 86400 / 3600, 2)
        t = row["target_units"]
        verdict = "" if t is None else ("met" if row["units_wall"] <= t else f"MISSED by {row['units_wall'] / t:.2f}x")
        print(f"  {row['explainer']:<22} {row['path']:<5} {row['units_wall']:6.2f} units wall, {row['units_cpu']:6.2f} cpu"
              f"  (target {t}: {verdict or '-'}); 24 h: {row['hours_per_24h_extrapolated_wall']:.1f} h extrapolated"
              + "".join(f"; {k} {row[k]:.2e}" for k in ("rel_l2_error_vs_fp32", "rel_l2_diff_vs_fast_fp32") if k in row))
    return {"model": args.model, "parameters": sum(p.numel() for p in model.parameters()), "record_seconds": 60,
            "fs": fs, "unit_wall_s": unit_wall, "unit_cpu_s": unit_cpu, "forward_runs": len(forwards),
            "forward_wall_s_all": [round(f[0], 3) for f in forwards], "rows": rows,
            "note": "units = fewest seconds of the explainer's repeats / fewest seconds of all eager fp32 forward passes "
                    "of the same record in this run; 24-h figures extrapolated linearly from the 60-s cost, not measured"}


def sample_records(data: Path, per_class: int, classes: list[str], only: set[str] | None) -> list[tuple[str, str]]:
    """(record id, label): the first `per_class` records of each of the run's classes in REFERENCE.csv
    order, among `only` (the run's validation records) when given."""
    ref = data / "REFERENCE.csv"
    if not ref.is_file():
        raise SystemExit(f"{ref} not found: --data must hold A?????.mat/.hea and REFERENCE.csv")
    chosen: dict[str, list[str]] = {}
    with ref.open() as fh:
        for rid, label in csv.reader(fh):
            if label not in classes or (only is not None and rid not in only):
                continue
            if len(chosen.setdefault(label, [])) < per_class:
                chosen[label].append(rid)
    return [(rid, label) for label, ids in sorted(chosen.items()) for rid in ids]


def faithfulness(args: argparse.Namespace) -> dict:
    """Deletion-AUC table of each explainer on real records with a trained model."""
    from ecgzoo.core.record import Record, RecordError
    from ecgzoo.data.inputs import open_input
    from ecgzoo.explain.faithfulness import compare_explainers
    from ecgzoo.serving.loaded_run import load_run
    from ecgzoo.serving.predict import pipeline_for

    run = load_run(args.run)
    split = run.path / "split.json"
    only = set(json.loads(split.read_text())["val"]) if split.is_file() and not args.any_records else None
    records, labels = [], []
    for rid, label in sample_records(Path(args.data), args.records, run.classes, only):
        source = open_input(Path(args.data) / f"{rid}.mat")
        pipeline, _ = pipeline_for(run, source.fs)
        n = min(source.samples, int(round(run.input_samples / run.fs * source.fs)))
        try:
            records.append(pipeline(Record(source.read(0, n), source.fs, rid, label)))
        except RecordError as exc:
            print(f"skipped {exc}")
            continue
        labels.append(label)
    signals = [torch.from_numpy(np.ascontiguousarray(r.signal)) for r in records]
    lengths = [r.valid_length for r in records]
    t0 = time.perf_counter()
    table, _ = compare_explainers(run.model, signals, args.explainers, run.fs, options=options(args, run.fs),
                                  valid_lengths=lengths, window_s=args.window_s, steps=args.steps, seeds=(0, 1, 2))
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        predicted = [run.classes[int(run.model(s[None], valid_length=torch.tensor([v])).argmax())]
                     for s, v in zip(signals, lengths, strict=True)]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))
    print(table.to_text())
    print(f"({len(records)} {'validation ' if only else ''}records, accuracy of the model on them {accuracy:.2f}, "
          f"{seconds:.0f} s)")
    return {"run": str(run.path), "model": run.info.get("model", run.config.get("model")), "records": len(records),
            "validation_records_only": only is not None, "labels": labels, "predicted": predicted,
            "record_ids": [r.record_id for r in records], "accuracy_on_these": accuracy, "seconds": round(seconds, 1),
            **table.to_dict()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cnnv7")
    p.add_argument("--explainers", default=",".join(NAMES))
    p.add_argument("--ig-steps", type=int, default=16)
    p.add_argument("--ig-batch", type=int, default=4)
    p.add_argument("--occlusion-window", type=float, default=1.0)
    p.add_argument("--occlusion-stride", type=float, default=1.0)
    p.add_argument("--occlusion-batch", type=int, default=4)
    p.add_argument("--beat-batch", type=int, default=32, help="beat-removal: removed copies per pass")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="fast-path precisions to time")
    p.add_argument("--slow", nargs="*", default=[], help="explainers also timed through autograd/captum (fast=false)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per explainer (the fewest seconds counts)")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--run", help="finished run directory of a model trained on PhysioNet 2017 data")
    p.add_argument("--data", help="folder with A?????.mat/.hea and REFERENCE.csv")
    p.add_argument("--records", type=int, default=5, help="records per class for the deletion table")
    p.add_argument("--any-records", action="store_true", help="also use the run's training records (default: validation only)")
    p.add_argument("--window-s", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "explainers.json"))
    args = p.parse_args()
    args.explainers = [n.strip() for n in args.explainers.split(",") if n.strip()]
    torch.set_num_threads(args.threads)
    result = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              **machine_info(), "torch": torch.__version__, "threads": args.threads, "device": "cpu"}
    out = Path(args.out)
    if out.is_file():
        previous = json.loads(out.read_text())
        result = {**previous, **result}
    if not args.skip_timing:
        result["timing"] = timing(args)
    if args.run:
        if not args.data:
            raise SystemExit("--run needs --data")
        result["deletion"] = faithfulness(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
