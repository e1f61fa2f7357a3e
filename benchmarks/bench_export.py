"""Deployment speed of full-size CNNv7 exported by `ecgzoo.models.export`: onnxruntime vs eager PyTorch.

Exports the full-size CNNv7 (4 classes) to ONNX once (timed, file size recorded), then for each
engine, in its own subprocess (so peak RSS is its own): logits + CAM of `--batch` 60-s records
(18,000 samples at 300 Hz), best of `--repeats` timed passes after one warm-up; achieved GFLOP/s
(conv FLOPs from `ecgzoo.models.model_facts.forward_flops` plus the CAM's 2 * classes * 512 per sample)
over the same process's float32 torch matmul rate (2048^3, higher of before/after the model) and,
for onnxruntime, also over onnxruntime's own MatMul rate measured right after; largest
|logit| and |CAM| difference to eager PyTorch on the same inputs.

    .venv/bin/python benchmarks/bench_export.py                 # writes benchmarks/results/export.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_models import matmul_gflops  # noqa: E402  (same matmul yardstick as the model benchmark)
from machine import machine_info

import ecgzoo  # noqa: E402
from ecgzoo.models.export import export_onnx  # noqa: E402
from ecgzoo.models.model_facts import forward_flops  # noqa: E402

SAMPLES = 18_000
CLASSES = 4
RESULTS = Path(__file__).parent / "results" / "export.json"


def _model() -> ecgzoo.EcgModel:
    torch.manual_seed(0)
    return ecgzoo.create_model("cnnv7", num_classes=CLASSES).eval()


def ort_matmul_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """float32 (n x n) @ (n x n) GFLOP/s in onnxruntime itself: the yardstick of its own GEMM."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal((n, n), dtype=np.float32) for k in "ab"}
    session.run(None, feeds)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def measure(engine: str, onnx_path: Path, batch: int, repeats: int) -> dict:
    """One engine in this process: timings, ratio to matmul, difference to eager, peak RSS."""
    model = _model()
    x = torch.randn(batch, 1, SAMPLES, generator=torch.Generator().manual_seed(1))
    threads = torch.get_num_threads()
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        feeds = {"signal": x.numpy()}

        def run() -> tuple[np.ndarray, ...]:
            return tuple(session.run(["logits", "cam"], feeds))
    else:

        def run() -> tuple[np.ndarray, ...]:
            logits, cam = model.forward_with_cam(x)
            return logits.numpy(), cam.numpy()

    flops = batch * (forward_flops(model, SAMPLES) + 2 * CLASSES * model.config.conv_b * SAMPLES)
    mm_before = matmul_gflops()
    with torch.inference_mode():
        ref_logits, ref_cam = (t.numpy() for t in model.forward_with_cam(x))
        logits, cam = run()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
    mm_after = matmul_gflops()
    ort_mm = ort_matmul_gflops(threads) if engine == "onnxruntime" else None
    best = min(times)
    achieved = flops / best / 1e9
    return {
        "engine": engine, "batch": batch, "seconds_per_batch": times, "records_per_s": batch / best,
        "achieved_gflops": achieved, "matmul_fp32_gflops_before": mm_before, "matmul_fp32_gflops_after": mm_after,
        "ratio_to_matmul": achieved / max(mm_before, mm_after),
        "matmul_ort_fp32_gflops": ort_mm, "ratio_to_ort_matmul": achieved / ort_mm if ort_mm else None,
        "max_abs_logit_diff_vs_eager": float(np.abs(logits - ref_logits).max()),
        "max_abs_cam_diff_vs_eager": float(np.abs(cam - ref_cam).max()),
        "max_abs_cam_eager": float(np.abs(ref_cam).max()),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": threads,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--one", nargs=2, metavar=("ENGINE", "ONNX"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]), args.batch, args.repeats)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "cnnv7.onnx"
        t0 = time.perf_counter()
        export_onnx(_model(), onnx_path)
        export_s = time.perf_counter() - t0
        size_mib = onnx_path.stat().st_size / 2**20
        print(f"export_onnx: {export_s:.1f} s, {size_mib:.1f} MiB", flush=True)
        rows = []
        for engine in ("eager", "onnxruntime"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", engine, str(onnx_path), "--batch", str(args.batch),
                 "--repeats", str(args.repeats)], check=True, capture_output=True, text=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{engine:12s} batch {row['batch']}: {row['records_per_s']:.2f} records/s, "
                f"{row['achieved_gflops']:.1f} GFLOP/s = {row['ratio_to_matmul']:.0%} of fp32 matmul "
                f"({row['matmul_fp32_gflops_before']:.1f}/{row['matmul_fp32_gflops_after']:.1f})"
                + (f" = {row['ratio_to_ort_matmul']:.0%} of onnxruntime's own matmul ({row['matmul_ort_fp32_gflops']:.1f})"
                   if row["matmul_ort_fp32_gflops"] else "") + ", "
                f"|dlogit| {row['max_abs_logit_diff_vs_eager']:.2g}, |dCAM| {row['max_abs_cam_diff_vs_eager']:.2g} "
                f"(|CAM| max {row['max_abs_cam_eager']:.2g}), peak RSS {row['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    import onnxruntime

    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **machine_info(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": f"cnnv7, {CLASSES} classes", "input": "random N(0,1), 60 s at 300 Hz",
        "export_seconds": export_s, "onnx_mib": size_mib, "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
