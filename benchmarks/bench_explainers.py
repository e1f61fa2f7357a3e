"""Explainer cost and faithfulness on this machine.

1. Wall time of each explainer for one record of each of `--models` (CPU): full-size CNNv7 on a 60-s
   300-Hz record, the shipped weights (`cnnv7-s8:physionet2017`, `xresnet1d101:ptbxl-superdiag`) on
   their own input contract (60 s at 300 Hz; 10 s, 12 leads at 100 Hz), in units of one eager float32
   forward pass of the same record timed just before and after it in the same process (the machine is
   shared: only same-run ratios mean anything), and as achieved GFLOP/s (FLOPs counted by torch's
   FlopCounterMode) over the float32 matmul rate measured in the same run, with the engine that ran,
   for each fast-path precision (`--precisions`) and optionally the autograd/captum path (`--slow`);
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
from bench_models import matmul_gflops  # the same matmul yardstick as the model benchmark
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


#: targets in eager forward passes on full-size CNNv7 (issue 18; Integrated Gradients with 16 points: 40)
TARGETS = {"cam": 1.1, "gradcam": 1.5, "integrated-gradients": 40.0, "occlusion": 8.0}


def _clock(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def model_and_input(name: str, ecg: bool = False) -> tuple[torch.nn.Module, torch.Tensor, float]:
    """(model in eval mode, one input record, its rate in Hz): shipped weights `model:tag` with their input
    contract (rate, window, leads), else a fresh model (4 classes) on a 60-s 300-Hz record; the record is
    random, or synthetic ECG with `ecg` (for `beat-removal`)."""
    from ecgzoo.models.pretrained import find_manifest, is_pretrained_name, load_pretrained_model

    torch.manual_seed(0)
    if is_pretrained_name(name):
        model, contract = load_pretrained_model(name).eval(), find_manifest(name).input
        fs, seconds = contract.fs, contract.window_seconds
    else:
        model, fs, seconds = ecgzoo.create_model(name, num_classes=4).eval(), 300.0, 60.0
    samples = int(round(seconds * fs))
    x = ecg_input(model.in_leads, samples, fs) if ecg else torch.randn(1, model.in_leads, samples)
    return model, x, fs


def counted_flops(fn) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products and convolutions `fn` runs, by torch's
    FLOP formulas (those of FlopCounterMode, whose module tracking breaks autograd.grad), with in-place
    GEMMs (addmm_, the fast engines' accumulation) and inference-mode matmuls counted too."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            packet = func._overloadpacket
            if packet is torch.ops.aten.addmm_:
                Count.total += 2 * args[1].shape[0] * args[1].shape[1] * args[2].shape[1]
            elif packet is torch.ops.aten.matmul:  # reaches the mode undecomposed under inference_mode
                Count.total += 2 * out.numel() * args[0].shape[-1]
            elif packet in flop_registry:
                Count.total += flop_registry[packet](*args, **kwargs, out_val=out)
            return out

    with Count():
        fn()
    return int(Count.total)


def timing(args: argparse.Namespace, name: str) -> dict:
    """Each explainer's cost on one record of model `name` in units of one eager float32 forward pass of
    the same record, timed in the same process, alternating with it (forward, explainer, forward, ...),
    and its achieved GFLOP/s (counted FLOPs / fewest wall seconds) over the float32 matmul rate measured
    right before and after this model's rows (the higher of the two).

    The machine is shared: wall times are disturbed upwards by whatever else runs, so the fewest seconds
    of the repeats count, and the unit is the fewest seconds of all forward passes of the run. CPU seconds
    of this process (one thread) are far less disturbed by others and are reported next to them."""
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    model, x, fs = model_and_input(name, ecg="beat-removal" in args.explainers)
    target = torch.tensor([1])

    def forward() -> None:
        with torch.no_grad():
            model(x)

    forward()  # warm-up
    mm_before = matmul_gflops()
    rows, opts, maps, forwards = [], options(args, fs), {}, []
    variants = [(n, p) for n in args.explainers for p in args.precisions
                if not (p == "bf16" and n == "saliency")] + [(n, "slow") for n in args.slow]
    for explainer_name, precision in variants:
        rows.append(_row(model, x, fs, target, explainer_name, precision, opts, maps, forwards, args.repeats))
    mm = max(mm_before, matmul_gflops())
    forward_flops = counted_flops(forward)
    unit_wall, unit_cpu = min(f[0] for f in forwards), min(f[1] for f in forwards)
    print(f"{name}: unit eager fp32 forward, fewest of {len(forwards)}: wall {unit_wall:.3f} s, cpu {unit_cpu:.3f} s, "
          f"{forward_flops / 1e9:.2f} GFLOP = {forward_flops / unit_wall / 1e9 / mm:.0%} of fp32 matmul {mm:.1f} GFLOP/s")
    for row in rows:
        row["units_wall"] = round(row["wall_s"] / unit_wall, 2)
        row["units_cpu"] = round(row["cpu_s"] / unit_cpu, 2)
        row["achieved_gflops"] = round(row["flops"] / row["wall_s"] / 1e9, 2)
        row["ratio_to_matmul"] = round(row["flops"] / row["wall_s"] / 1e9 / mm, 3)
        row["achieved_gflops_per_cpu_s"] = round(row["flops"] / row["cpu_s"] / 1e9, 2)
        row["hours_per_24h_extrapolated_wall"] = round(row["wall_s"] / (x.shape[-1] / fs) * 86400 / 3600, 2)
        t = row["target_units"] if name == "cnnv7" else None
        verdict = "" if t is None else ("met" if row["units_wall"] <= t else f"MISSED by {row['units_wall'] / t:.2f}x")
        print(f"  {row['explainer']:<22} {row['path']:<5} {row['engine']:<16} {row['units_wall']:6.2f} units wall, "
              f"{row['units_cpu']:6.2f} cpu; {row['flops'] / 1e9:7.1f} GFLOP, {row['achieved_gflops']:6.1f} GFLOP/s = "
              f"{row['ratio_to_matmul']:.0%} of matmul (target {t}: {verdict or '-'})"
              + "".join(f"; {k} {row[k]:.2e}" for k in ("rel_l2_error_vs_fp32", "rel_l2_diff_vs_fast_fp32") if k in row))
    return {"model": name, "date": started, "parameters": sum(p.numel() for p in model.parameters()), "input_shape": list(x.shape),
            "fs": fs, "unit_wall_s": unit_wall, "unit_cpu_s": unit_cpu, "forward_flops": forward_flops,
            "forward_gflops": round(forward_flops / unit_wall / 1e9, 2), "matmul_fp32_gflops_before": mm_before,
            "matmul_fp32_gflops": mm, "forward_runs": len(forwards), "rows": rows,
            "note": "units = fewest seconds of the explainer's repeats / fewest seconds of all eager fp32 forward passes "
                    "of the same record in this run; GFLOP/s = counted FLOPs / fewest wall seconds; 24-h figures "
                    "extrapolated linearly from the record's cost, not measured"}


def _row(model: torch.nn.Module, x: torch.Tensor, fs: float, target: torch.Tensor, name: str, precision: str,
         opts: dict, maps: dict, forwards: list, repeats: int) -> dict:
    """One explainer/path: fewest wall and CPU seconds of `repeats` calls (each after a timed forward pass,
    appended to `forwards`), the engine that ran, its counted FLOPs and its map's distance to the fp32 map."""
    extra = {"fast": False} if precision == "slow" else {"precision": precision}
    explainer = ecgzoo.create_explainer(name, **opts[name], **extra)
    box, runs = {}, []

    def forward() -> None:
        with torch.no_grad():
            model(x)

    for _ in range(repeats):
        forwards.append(_clock(forward))
        runs.append(_clock(lambda e=explainer, b=box: b.update(attr=e.explain(model, x, target=target, fs=fs))))
    forwards.append(_clock(forward))
    attr = box["attr"]
    assert attr.shape == (1, x.shape[-1])
    row = {"explainer": name, "path": precision, "engine": getattr(explainer, "engine_used", ""), "options": opts[name],
           "target_units": TARGETS.get(name), "wall_s": round(min(r[0] for r in runs), 4),
           "cpu_s": round(min(r[1] for r in runs), 4),
           "flops": counted_flops(lambda: explainer.explain(model, x, target=target, fs=fs))}
    cost = getattr(explainer, "last_cost", None)  # beat-removal: model evaluations and their work in full passes
    if cost is not None:
        row.update(evaluations=cost.evaluations, full_pass_equivalents=round(cost.full_pass_equivalents, 2))
    if precision == "fp32":
        maps[name] = attr
    elif name in maps:
        key = "rel_l2_error_vs_fp32" if precision == "bf16" else "rel_l2_diff_vs_fast_fp32"
        row[key] = float((attr - maps[name]).norm() / maps[name].norm())
    print(f"  {name:<22} {precision:<5} {row['engine']:<16} wall {row['wall_s']:8.3f} s  cpu {row['cpu_s']:8.3f} s", flush=True)
    return row


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
    p.add_argument("--models", "--model", dest="models", default="cnnv7",
                   help="comma-separated model names or shipped weights (model:tag, timed on their input contract), "
                        "e.g. cnnv7,cnnv7-s8:physionet2017,xresnet1d101:ptbxl-superdiag")
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
        kept = result.get("timing") if isinstance(result.get("timing"), dict) and "rows" not in result["timing"] else {}
        result["timing"] = {**kept, **{name.strip(): timing(args, name.strip()) for name in args.models.split(",")
                                       if name.strip()}}  # one entry per model; earlier runs of other models kept
    if args.run:
        if not args.data:
            raise SystemExit("--run needs --data")
        result["deletion"] = faithfulness(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
