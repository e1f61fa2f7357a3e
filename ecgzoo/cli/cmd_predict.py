"""`ecgzoo predict RUN_DIR INPUT...`: class and probabilities of new recordings."""

from __future__ import annotations

import argparse

from ecgzoo.jsonio import dumps

HELP = "classify recordings (WFDB, .mat, .npy, CSV) with a finished run; long ones window by window"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory (runs/NAME)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="WFDB record (.hea or path without suffix), .mat, .npy or .csv file")
    p.add_argument("--fs", type=float, help="sampling rate in Hz of inputs whose format does not store it (.npy, plain .mat/CSV)")
    p.add_argument("--gain", type=float, help="plain .mat only: values are in adu with this many adu per mV")
    p.add_argument("--json", action="store_true", help="print one JSON document (per-window timeline included)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per batch for long recordings (bounds memory)")


def main(args: argparse.Namespace) -> int:
    from ecgzoo.checkpoint import CheckpointError
    from ecgzoo.cli import UsageError
    from ecgzoo.inputs import InputError, open_input
    from ecgzoo.predict import describe, predict_source
    from ecgzoo.run_dir import load_run
    from ecgzoo.runner import resolve_device

    try:
        device = resolve_device(args.device)
        run = load_run(args.run_dir, device=device)
        results, failed = [], []
        for path in args.inputs:
            prediction = predict_source(run, open_input(path, fs=args.fs, gain=args.gain), args.batch_size, device)
            if prediction.problem:
                failed.append(f"{prediction.source}: not classified: {prediction.problem}")
            if args.json:
                results.append(prediction.to_dict())
            else:
                print(describe(prediction), flush=True)
    except (InputError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        if "--device" in str(exc):
            raise UsageError(str(exc)) from None
        raise
    if args.json:
        print(dumps({"run": str(run.path), "classes": run.classes, "results": results}, indent=2))
    if failed:  # finite or nothing: a recording without a class is an error naming it (exit 2)
        raise UsageError("; ".join(failed))
    return 0
