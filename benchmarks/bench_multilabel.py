"""12-lead, multi-label figures: PTB-XL-sized preparation, and training throughput of xresnet1d101 and inception1d.

    nice -n 19 .venv/bin/python benchmarks/bench_multilabel.py prepare   # 21,799 x 12 x 1,000 at 100 Hz
    nice -n 19 .venv/bin/python benchmarks/bench_multilabel.py train     # both families, full size, CPU

prepare: writes a synthetic PTB-XL 1.0.3 tree of the published size and layout (tests/ptbxl_fixtures.py;
21,799 records, 12 leads, 1,000 samples at 100 Hz; the real data is absent here) under /tmp, then, each in a
fresh process so peak memory is its own: reading the tables (dataset creation), `prepare()` cold (every record
read with wfdb, z-scored, into the memory-mapped cache) and cached (the cache entry reopened, every sample
touched once).

train: one training step = forward + binary cross-entropy + backward + Adam step on (batch, 12, length)
inputs with multi-hot targets, as the trainer does for a multi-label task; one evaluation step = forward
without gradients. FLOPs come from torch's FlopCounterMode on the warm-up step; achieved GFLOP/s is set
against a float32 matmul measured in the same run just before (the machine is shared: ratios, not rates;
a second matmul reading after the steps shows how far the yardstick moved while they ran).

Writes benchmarks/results/multilabel.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "multilabel.json"
PTBXL_RECORDS = 21_799

_PHASE = """
import json, resource, sys, time
import numpy as np
import ecgzoo
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare
root, cache, phase, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = time.perf_counter()
data = ecgzoo.get_dataset("ptbxl", path=root, download=False, task="superdiag")
out = {"dataset_seconds": time.perf_counter() - t, "records": len(data), "classes": len(data.classes)}
if phase != "tables":
    t = time.perf_counter()
    prep = prepare(data, Pipeline([{"name": "zscore"}]), cache_dir=cache, progress=False, workers=workers)
    out["prepare_seconds"] = time.perf_counter() - t
    out["from_cache"] = prep.from_cache
    out["shape"] = list(prep.signals.shape)
    if phase == "cached":
        t = time.perf_counter()
        total = sum(float(np.asarray(prep.signals[i:i + 512]).sum()) for i in range(0, len(prep), 512))
        out["read_all_seconds"] = time.perf_counter() - t
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
out["cpu_seconds"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime  # the work itself, under load
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["peak_rss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(out))
"""


def machine() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import machine_info

    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **machine_info(),
            "platform": platform.platform(), "load_average_1min": os.getloadavg()[0]}


def bench_prepare(records: int, workers: int, root: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests"))  # the synthetic PTB-XL tree the tests build, at full size
    from ptbxl_fixtures import write_ptbxl_tree

    out: dict = {"records": records, "workers": workers}
    if not (root / "ptbxl_database.csv").is_file():
        t = time.perf_counter()
        write_ptbxl_tree(root, records=records, rates=(100,))
        out["write_tree_seconds"] = round(time.perf_counter() - t, 1)
    out["tree_mb"] = round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20, 1)
    cache = root.parent / "ptbxl-cache"
    shutil.rmtree(cache, ignore_errors=True)
    for phase in ("tables", "cold", "cached"):
        done = subprocess.run([sys.executable, "-c", _PHASE, str(root), str(cache), phase, str(workers)],
                              capture_output=True, text=True, check=True)
        out[phase] = json.loads(done.stdout.strip().splitlines()[-1])
        print(phase, out[phase], flush=True)
    return out


def _measure(name: str, batch: int, length: int, steps: int, classes: int, precision: str = "fp32") -> dict:
    """Seconds per training and evaluation step of one model after a warm-up step counted by FlopCounterMode.

    precision bf16: the steps run under bfloat16 autocast (as the ptbxl-cpu preset trains) and the
    yardstick is a bfloat16 matmul (AMX/AVX512-BF16 where the CPU has them)."""
    import contextlib

    import torch
    import torch.nn.functional as F
    from bench_training import matmul_gflops
    from torch.utils.flop_counter import FlopCounterMode

    import ecgzoo

    torch.manual_seed(0)
    model = ecgzoo.create_model(name, num_classes=classes, in_leads=12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 12, length)
    y = (torch.rand(batch, classes) < 0.2).float()

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
        F.binary_cross_entropy_with_logits(logits.float(), y).backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.no_grad(), autocast():
            model(x)

    out = {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "batch": batch, "precision": precision,
           "input": [12, length], "steps": steps, "matmul_gflops": matmul_gflops(torch.device("cpu"), dtype=dtype)}
    for label, fn, mode in (("train", train_step, model.train), ("eval", eval_step, model.eval)):
        mode()
        with FlopCounterMode(display=False) as counter:
            fn()
        gflop = counter.get_total_flops() / batch / 1e9
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        seconds = (time.perf_counter() - t0) / steps
        out[f"{label}_gflop_per_record"] = round(gflop, 3)
        out[f"{label}_records_per_s"] = round(batch / seconds, 2)
        out[f"{label}_gflops_achieved"] = round(gflop * batch / seconds, 2)
        out[f"{label}_share_of_matmul"] = round(gflop * batch / seconds / out["matmul_gflops"], 3)
    # the machine is shared: a second matmul reading after the steps shows how much the yardstick moved meanwhile
    out["matmul_gflops_after"] = matmul_gflops(torch.device("cpu"), dtype=dtype)
    print(json.dumps(out), flush=True)
    return out


def bench_train(models: list[str], batch: int, length: int, steps: int, classes: int, precision: str = "fp32") -> list[dict]:
    return [_measure(name, batch, length, steps, classes, precision) for name in models]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("prepare", "train"))
    parser.add_argument("--records", type=int, default=PTBXL_RECORDS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default="/tmp/ecgzoo-bench/ptbxl-synthetic")
    parser.add_argument("--models", nargs="+", default=["xresnet1d101", "inception1d"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=1000, help="samples per lead (10 s at 100 Hz)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--classes", type=int, default=71, help="outputs (PTB-XL 'all': 71 statements)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast, bf16 matmul yardstick")
    parser.add_argument("--key", default=None, help="results key (default: the command's first argument)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    entry = machine()
    entry["command"] = " ".join(["benchmarks/bench_multilabel.py", *sys.argv[1:]])
    if args.what == "prepare":
        entry.update(bench_prepare(args.records, args.workers, Path(args.root)))
    else:
        import torch

        entry["threads"] = torch.get_num_threads()
        entry["models"] = bench_train(args.models, args.batch, args.length, args.steps, args.classes, args.precision)
    entry["load_average_1min_after"] = os.getloadavg()[0]
    results[args.key or args.what] = entry
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
