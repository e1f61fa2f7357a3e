"""`ecgzoo evaluate RUN_DIR DATASET`: a finished run's metrics and figures on other data."""

from __future__ import annotations

import argparse

from ecgzoo.core.config import parse_assignments

HELP = "score a finished run on a dataset (or its validation split): metrics.json, figures, report.md"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory (runs/NAME) or pretrained weights MODEL:TAG (ecgzoo list --pretrained)")
    p.add_argument("dataset", help="dataset plugin (ecgzoo list dataset)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, e.g. path=/data/training2017 (repeatable; 'dataset.' prefix optional)")
    p.add_argument("--split", choices=("all", "test", "val", "train"), default="all",
                   help="all records (default), or the run's (or pretrained weights') own test/validation/training records (same dataset)")
    p.add_argument("--out", help="output folder (default RUN_DIR/evaluations/DATASET-SPLIT-TIME); must not exist")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32 (exact, default) or bf16 autocast (faster on CPUs with bf16 units; probabilities move by ~1e-3)")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="a bad record stops (raise) or is skipped and listed")


def main(args: argparse.Namespace) -> int:
    from ecgzoo.cli import UsageError
    from ecgzoo.core.manifest import PretrainedError
    from ecgzoo.models.checkpoint import CheckpointError
    from ecgzoo.serving.evaluate import EvaluationError, evaluate

    options = parse_assignments(args.assignments)
    options = {**options.pop("dataset", {}), **options}
    try:
        out = evaluate(args.run_dir, args.dataset, options, split=args.split, out=args.out,
                       device=args.device, on_error=args.on_error, precision=args.precision)
    except (CheckpointError, EvaluationError, FileExistsError, PretrainedError) as exc:
        raise UsageError(str(exc)) from None
    print(f"report: {out / 'report.md'}")
    return 0
