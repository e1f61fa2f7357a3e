"""Explainer cost and faithfulness on this machine.

1. Seconds per record of each explainer on full-size CNNv7 (CPU by default) for one 60-s
   record (18,000 samples at 300 Hz), with bounded settings: Integrated Gradients
   `--ig-steps` path points in batches of `--ig-batch`, occlusion windows of
   `--occlusion-window` s every `--occlusion-stride` s. A plain forward pass is timed too, so
   each explainer's cost reads as a multiple of one forward pass measured in the same run.
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
    }


def timing(args: argparse.Namespace) -> dict:
    """Seconds per 60-s record for each explainer on full-size CNNv7, and per forward pass."""
    torch.manual_seed(0)
    model = ecgzoo.create_model(args.model, num_classes=4).eval()
    fs, samples = 300.0, int(60 * 300)
    x = torch.randn(1, model.in_leads, samples)
    with torch.no_grad():
        model(x)  # warm-up
        t0 = time.perf_counter()
        model(x)
        forward_s = time.perf_counter() - t0
    print(f"{args.model}: forward pass on one 60-s record {forward_s:.2f} s", flush=True)
    rows = []
    opts = options(args, fs)
    for name in args.explainers:
        explainer = ecgzoo.create_explainer(name, **opts[name])
        t0 = time.perf_counter()
        attr = explainer.explain(model, x)
        seconds = time.perf_counter() - t0
        assert attr.shape == (1, samples)
        rows.append({"explainer": name, "seconds_per_record": round(seconds, 2),
                     "forward_passes_equivalent": round(seconds / forward_s, 1), "options": opts[name]})
        print(f"  {name:<22} {seconds:8.2f} s/record  ({seconds / forward_s:.1f} x forward)", flush=True)
    return {"model": args.model, "parameters": sum(p.numel() for p in model.parameters()),
            "record_seconds": 60, "fs": fs, "forward_s": round(forward_s, 3), "rows": rows}


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
    from ecgzoo.faithfulness import compare_explainers
    from ecgzoo.inputs import open_input
    from ecgzoo.predict import pipeline_for
    from ecgzoo.record import Record, RecordError
    from ecgzoo.run_dir import load_run

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
    p.add_argument("--threads", type=int, default=2)
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
