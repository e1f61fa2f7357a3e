"""Wall time and validation challenge F1 of `ecgzoo run MODEL DATASET --preset quick`.

    .venv/bin/python benchmarks/bench_quick_preset.py                       # synthetic data
    .venv/bin/python benchmarks/bench_quick_preset.py --dataset physionet2017 \
        --set dataset.path=/tmp/ecgzoo-data/training2017                    # the 7,529 real records, 70/30

Runs the whole pipeline in this process (preparation, training, evaluation, explanation,
report), prints the figures and appends them to benchmarks/results/quick_preset.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from machine import machine_info

from ecgzoo.core.config import parse_assignments
from ecgzoo.training.run_config import resolve_run_config
from ecgzoo.training.runner import run

RESULTS = Path(__file__).resolve().parent / "results" / "quick_preset.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cnnv7")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--preset", default="quick")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--output-dir", default=None, help="where the run directory goes (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.output_dir or tempfile.mkdtemp(prefix="ecgzoo-bench-")
    assignments = parse_assignments(args.assignments)
    assignments.setdefault("output_dir", out)
    assignments.setdefault("device", "cpu")
    config = resolve_run_config(args.model, args.dataset, args.preset, None, assignments)
    t0 = time.perf_counter()
    run_dir = run(args.model, args.dataset, config)
    wall = time.perf_counter() - t0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    row = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **machine_info(),
        "torch_threads": torch.get_num_threads(),
        "command": f"ecgzoo run {args.model} {args.dataset} --preset {args.preset} " + " ".join(f"--set {a}" for a in args.assignments),
        "records": info["records"], "train_records": info["train_records"], "val_records": info["val_records"],
        "input": f"{info['input']['leads']} x {round(info['input']['window_seconds'] * info['input']['fs'])} samples "
                 f"at {info['input']['fs']:g} Hz",
        "epochs": len(history), "best_epoch": metrics.get("best_epoch"),
        "wall_s": round(wall, 1),
        "train_s": round(sum(h["seconds"] for h in history), 1),
        "val_challenge_f1": round(metrics["challenge_f1"], 4),
        "val_accuracy": round(metrics["accuracy"], 4),
        "val_f1_per_class": {c: round(m["f1"], 4) for c, m in metrics["per_class"].items()},
        "run_dir": str(run_dir),
    }
    print(json.dumps(row, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    rows.append(row)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=2) + "\n")
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
