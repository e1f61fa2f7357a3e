"""CPU speed of full-size CNNv7: forward pass + CAM on 60-s records (18,000 samples at 300 Hz).

For each variant (eager `CNNv7.forward_with_cam`, the GEMM-laid-out `FastCNNv7` in float32, and
`FastCNNv7` in bfloat16 where the CPU has native bfloat16), at each batch size, in a fresh
subprocess (so its peak RSS is its own):

- records/s (best of `--repeats` timed passes after one warm-up: the least disturbed one) and achieved GFLOP/s,
  FLOPs counted from the conv shapes
  (`ecgzoo.models.model_facts.forward_flops`) plus the CAM's 2 * classes * 512 per sample;
- the same process's float32 matmul rate (2048 x 2048 x 2048, best of 3) measured right before
  each timed pass, and the ratio achieved / matmul of each pair (the machine is shared, so only
  neighbouring measurements are comparable); the median pair is the headline figure;
- largest |logit| and |CAM| difference to eager float32 on the same inputs and weights;
- peak resident memory of the process.

    .venv/bin/python benchmarks/bench_models.py                    # writes benchmarks/results/models.json
    .venv/bin/python benchmarks/bench_models.py --batches 1 4 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from machine import machine_info

import ecgzoo
from ecgzoo.models.model_facts import forward_flops

SAMPLES = 18_000
CLASSES = 4
RESULTS = Path(__file__).parent / "results" / "models.json"


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` rate of one square matmul: this machine's reachable GEMM speed right now."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def bf16_native() -> bool:
    """True when oneDNN reports native bfloat16 support (AVX512-BF16 / AMX) on this CPU."""
    check = getattr(torch.backends.mkldnn, "is_bf16_supported", None)
    if check is not None:
        return bool(check())
    return "avx512_bf16" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False


def measure(variant: str, batch: int, repeats: int) -> dict:
    """One variant at one batch size (run inside its own subprocess)."""
    from ecgzoo_plugins.cnnv7_fast import FastCNNv7

    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7", num_classes=CLASSES).eval()
    x = torch.randn(batch, 1, SAMPLES)
    if variant == "eager-fp32":
        run = model.forward_with_cam
    else:
        run = FastCNNv7(model, torch.bfloat16 if variant == "fast-bf16" else torch.float32).forward_with_cam
    flops = batch * (forward_flops(model, SAMPLES) + 2 * CLASSES * model.config.conv_b * SAMPLES)
    with torch.inference_mode():
        ref_logits, ref_cam = model.forward_with_cam(x)
        logits, cam = run(x)  # warm-up and the values compared
        times, matmuls = [], []
        for _ in range(repeats):  # matmul and model alternate, so each ratio pairs neighbouring measurements
            matmuls.append(matmul_gflops(repeats=3))
            t0 = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - t0)
    ratios = sorted(flops / t / 1e9 / mm for t, mm in zip(times, matmuls, strict=True))
    best = min(times)
    return {
        "variant": variant, "batch": batch, "seconds_per_batch": times, "matmul_fp32_gflops": matmuls,
        "records_per_s": batch / best, "achieved_gflops": flops / best / 1e9,
        "ratio_to_matmul_median": ratios[len(ratios) // 2], "ratio_to_matmul_all": ratios,
        "max_abs_logit_diff_vs_eager_fp32": float((logits - ref_logits).abs().max()),
        "max_abs_cam_diff_vs_eager_fp32": float((cam - ref_cam).abs().max()),
        "max_abs_cam_eager": float(ref_cam.abs().max()),
        "same_argmax_as_eager": bool((logits.argmax(1) == ref_logits.argmax(1)).all()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gflop_per_record": flops / batch / 1e9, "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--variants", nargs="+", default=["eager-fp32", "fast-fp32", "fast-bf16"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--one", nargs=2, metavar=("VARIANT", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.repeats)))
        return
    rows = []
    for variant in args.variants:
        if variant == "fast-bf16" and not bf16_native():
            print("fast-bf16: skipped, this CPU has no native bfloat16 (oneDNN)", flush=True)
            continue
        for batch in args.batches:
            out = subprocess.run(
                [sys.executable, __file__, "--one", variant, str(batch), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{variant:10s} batch {batch}: {row['records_per_s']:.2f} records/s, "
                f"{row['achieved_gflops']:.1f} GFLOP/s; achieved / fp32 matmul (paired) median "
                f"{row['ratio_to_matmul_median']:.0%} of {[f'{r:.0%}' for r in row['ratio_to_matmul_all']]}, "
                f"|dlogit| {row['max_abs_logit_diff_vs_eager_fp32']:.2g}, "
                f"|dCAM| {row['max_abs_cam_diff_vs_eager_fp32']:.2g} (|CAM| max {row['max_abs_cam_eager']:.2g}), "
                f"peak RSS {row['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **machine_info(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "bf16_native": bf16_native(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "input": "random N(0,1), 60 s at 300 Hz",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
