"""Serving speed of a trained model on real records: records/s of the exact float32 path against
bfloat16 autocast, measured alternately in one run, with how far bf16 moves the answers.

The records are the test split the weights were scored on (their manifest's split file), read and
preprocessed by the weights' own pipeline; timing covers the network only (`predict_dataset`).

    .venv/bin/python benchmarks/bench_serving.py --weights cnnv7-s8:physionet2017 \\
        --data /tmp/ecgzoo-data/training2017 --records 256
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_info

import ecgzoo
from ecgzoo.data.prepared import prepare
from ecgzoo.evaluation.scoring import predict_dataset
from ecgzoo.serving.loaded_run import load_run


def timed(model, data, batch: int, precision: str) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    probs = predict_dataset(model, data, "cpu", batch, precision)
    return probs, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="cnnv7-s8:physionet2017", help="pretrained MODEL:TAG or a run directory")
    parser.add_argument("--data", required=True, help="folder of the training set the weights were scored on")
    parser.add_argument("--records", type=int, default=256, help="test records to time (the first N of the split)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="alternating fp32/bf16 passes; the fastest of each counts")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serving.json"))
    args = parser.parse_args()
    run = load_run(args.weights)
    dataset = ecgzoo.get_dataset(run.info["dataset"], path=args.data)
    ids = run.splits["test"][: args.records]
    prepared = prepare(dataset, run.pipeline, record_ids=ids, progress=False, workers=2)
    data = prepared.torch_dataset()
    best = {"fp32": float("inf"), "bf16": float("inf")}
    probs = {}
    for _ in range(args.repeats):
        for precision in ("fp32", "bf16"):
            probs[precision], seconds = timed(run.model, data, args.batch, precision)
            best[precision] = min(best[precision], seconds)
    diff = np.abs(probs["fp32"] - probs["bf16"])
    agree = float((probs["fp32"].argmax(1) == probs["bf16"].argmax(1)).mean())
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **machine_info(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "weights": args.weights, "records": len(ids), "batch": args.batch,
        "input_seconds": run.input_samples / run.fs,
        "fp32_records_per_s": round(len(ids) / best["fp32"], 2), "bf16_records_per_s": round(len(ids) / best["bf16"], 2),
        "bf16_speedup": round(best["fp32"] / best["bf16"], 2),
        "bf16_max_abs_probability_difference": float(diff.max()), "bf16_mean_abs_probability_difference": float(diff.mean()),
        "bf16_same_class_fraction": agree,
    }
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
