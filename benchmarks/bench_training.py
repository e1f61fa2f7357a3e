"""Training throughput (records/s) of full-size models on this machine, and what the paper's recipe would cost.

One training step = forward + weighted cross-entropy + backward + Adam step, as the `trainer`
plugin does it; one evaluation step = a forward pass without gradients. FLOPs are counted by
torch's FlopCounterMode on the warm-up step; each model's achieved GFLOP/s is set against a
float32 matmul measured just before it (the machine is shared: compare within one run). Inputs are 60-s
records (default 18,000 samples: 300 Hz, the paper's DeepECG-13 input). The projection is the
paper's recipe: 100 epochs over the 70% training split of 8,528 records (5,970) plus a
validation pass over the other 2,558 records each epoch.

    .venv/bin/python benchmarks/bench_training.py                     # cnnv7 and deepecg13, CPU
    .venv/bin/python benchmarks/bench_training.py --models cnnv7 --steps 3 --batch 2
    .venv/bin/python benchmarks/bench_training.py --models cnnv7-s8 --batch 32 --length 9000 --precision fp32 bf16 \
        --out benchmarks/results/training_throughput_cpu_recipe.json      # the cpu preset's steps

With --precision bf16 the steps run under bfloat16 autocast and the yardstick is a bfloat16
matmul of the same moment.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import machine_info
from torch.utils.flop_counter import FlopCounterMode

import ecgzoo

RECORDS, TRAIN_FRACTION, EPOCHS = 8528, 0.7, 100
N_TRAIN = round(RECORDS * TRAIN_FRACTION)
N_VAL = RECORDS - N_TRAIN


def matmul_gflops(device: torch.device, n: int = 2048, seconds: float = 1.0, dtype: torch.dtype = torch.float32) -> float:
    """This moment's matmul rate in `dtype`: the yardstick for the achieved GFLOP/s of a training step."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return round(2 * n**3 * count / (time.perf_counter() - t0) / 1e9, 1)


def measure(name: str, batch: int, steps: int, length: int, classes: int, device: torch.device, precision: str = "fp32") -> dict:
    """Seconds per training step and per evaluation step (after one warm-up step of each)."""
    torch.manual_seed(0)
    model = ecgzoo.create_model(name, num_classes=classes).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = torch.ones(classes, device=device)
    x = torch.randn(batch, model.in_leads, length, device=device)
    y = torch.arange(batch, device=device) % classes
    vl = torch.full((batch,), length, device=device)

    amp = precision == "bf16"

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x, valid_length=vl)
        loss = (F.cross_entropy(logits.float(), y, reduction="none") * weights[y]).mean()
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            model(x, valid_length=vl)

    yardstick = matmul_gflops(device, dtype=torch.bfloat16 if amp else torch.float32)
    out = {"model": name, "precision": precision, "parameters": params, "batch": batch, "steps": steps, "matmul_gflops": yardstick}
    for label, fn, mode in (("train", train_step, model.train), ("eval", eval_step, model.eval)):
        mode()
        with FlopCounterMode(display=False) as counter:
            fn()  # warm-up (allocations, oneDNN kernel selection), counting its floating-point operations
        out[f"{label}_gflop_per_record"] = round(counter.get_total_flops() / batch / 1e9, 1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / steps
        out[f"{label}_seconds_per_step"] = round(seconds, 3)
        # CPU seconds of this process (all its threads): what a step costs when other work takes the cores
        out[f"{label}_cpu_seconds_per_step"] = round((time.process_time() - c0) / steps, 3)
        out[f"{label}_records_per_s"] = round(batch / seconds, 3)
        out[f"{label}_gflops_achieved"] = round(out[f"{label}_gflop_per_record"] * batch / seconds, 1)
    epoch_s = N_TRAIN / out["train_records_per_s"] + N_VAL / out["eval_records_per_s"]
    out["projected_epoch_hours"] = round(epoch_s / 3600, 2)
    out["projected_100_epochs_hours"] = round(EPOCHS * epoch_s / 3600, 1)
    out["train_share_of_matmul"] = round(out["train_gflops_achieved"] / yardstick, 3)
    print(
        f"{name:10s} {precision} {params / 1e6:6.2f} M params  train {out['train_records_per_s']:7.3f} rec/s "
        f"(batch {batch}, {out['train_seconds_per_step']:.2f} s/step)  eval {out['eval_records_per_s']:7.3f} rec/s  "
        f"-> 100 epochs x ({N_TRAIN} train + {N_VAL} val): {out['projected_100_epochs_hours']} h; "
        f"train {out['train_gflop_per_record']} GFLOP/record at {out['train_gflops_achieved']} GFLOP/s "
        f"(matmul {out['matmul_gflops']} GFLOP/s, {precision}; {100 * out['train_share_of_matmul']:.0f}%)",
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cnnv7", "deepecg13"])
    parser.add_argument("--batch", type=int, default=2, help="records per step (the paper's 10 needs ~5x the memory)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--length", type=int, default=18000, help="input samples (60 s at 300 Hz)")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32"], help="measure each model at each")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "training_throughput.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **machine_info(),
        "platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "input_samples": args.length,
        "recipe": {"epochs": EPOCHS, "train_records": N_TRAIN, "val_records": N_VAL},
        "models": [measure(m, args.batch, args.steps, args.length, args.classes, device, p) for m in args.models for p in args.precision],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
