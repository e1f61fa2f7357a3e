"""`ecgzoo predict RUN_DIR INPUT...`: class and probabilities of new recordings."""

from __future__ import annotations

import argparse

from ecgzoo._infra.jsonio import dumps

HELP = "classify recordings (WFDB, .mat, .npy, CSV) with a finished run; long ones window by window"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory (runs/NAME) or pretrained weights MODEL:TAG (ecgzoo list --pretrained)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="WFDB record (.hea or path without suffix), .mat, .npy or .csv file")
    p.add_argument("--fs", type=float, help="sampling rate in Hz of inputs whose format does not store it (.npy, plain .mat/CSV)")
    p.add_argument("--gain", type=float, help="plain .mat only: values are in adu with this many adu per mV")
    p.add_argument("--lead",
                   help="for a one-lead model and multi-lead recordings: the lead to classify (name in the file, or 0-based index)")
    p.add_argument("--json", action="store_true", help="print one JSON document (per-window timeline included)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32 (exact, default) or bf16 autocast (faster on CPUs with bf16 units; probabilities move by ~1e-3)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per batch for long recordings (bounds memory)")


def main(args: argparse.Namespace) -> int:
    from ecgzoo._infra.device import resolve_device
    from ecgzoo.cli import UsageError
    from ecgzoo.core.manifest import PretrainedError
    from ecgzoo.data.inputs import open_input, select_lead
    from ecgzoo.data.signal_source import InputError
    from ecgzoo.models.checkpoint import CheckpointError
    from ecgzoo.serving.loaded_run import load_run
    from ecgzoo.serving.predict import describe, predict_source

    try:
        device = resolve_device(args.device)
        run = load_run(args.run_dir, device=device)
        results, failed = [], []
        for path in args.inputs:
            source = open_input(path, fs=args.fs, gain=args.gain)
            if args.lead is not None:
                source = select_lead(source, args.lead)
            prediction = predict_source(run, source, args.batch_size, device, args.precision)
            if prediction.problem:
                failed.append(f"{prediction.source}: not classified: {prediction.problem}")
            if args.json:
                results.append(prediction.to_dict())
            else:
                print(describe(prediction), flush=True)
    except (InputError, CheckpointError, PretrainedError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        if "--device" in str(exc):
            raise UsageError(str(exc)) from None
        raise
    if args.json:
        print(dumps({"run": run.label, "classes": run.classes, "results": results}, indent=2))
    if failed:  # finite or nothing: a recording without a class is an error naming it (exit 2)
        raise UsageError("; ".join(failed))
    return 0
