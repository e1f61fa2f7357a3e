"""`ecgzoo run MODEL DATASET`: train, evaluate, explain and report in one command."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable

from ecgzoo.core.config import parse_assignments
from ecgzoo.core.registry import UnknownPluginError
from ecgzoo.training.run_config import resolve_run_config

#: what an unknown plugin name may mean (the commonest case: a plugin registered in a notebook)
NOT_HERE = ("A plugin registered with ecgzoo.register_plugin (in a notebook or a script) exists only in that Python "
            "process: train it there with ecgzoo.run(MODEL, DATASET, preset=...), or make it a package with an `ecgzoo` "
            "entry point (examples/plugin-package) so every ecgzoo command finds it.")

HELP = "train MODEL on DATASET, evaluate, explain examples and write a report (run directory under runs/)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model plugin (ecgzoo list model)")
    p.add_argument("dataset", help="dataset plugin (ecgzoo list dataset), e.g. synthetic or physionet2017")
    p.add_argument("--preset", default="paper",
                   help="a preset declared in registry.toml: paper (the paper's recipe, default), quick (narrow model, 10-s crops, "
                        "few epochs: minutes on a CPU), cpu (the shipped weights' CPU recipe); an unknown name lists them")
    p.add_argument("--config", metavar="RUN.toml", help="options from a TOML file (keys as in --set)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="one option, e.g. trainer.epochs=5, model.masked_pooling=true, split.val_fraction=0.2 (repeatable)")
    p.add_argument("--init", metavar="MODEL:TAG",
                   help="start from these pretrained weights (ecgzoo list --pretrained), adapted to the dataset's classes and leads")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (default auto: cuda when available)")
    p.add_argument("--explainer", help="explainer plugin for the report's examples (default cam; ecgzoo list explainer)")
    p.add_argument("--nproc", type=int, help="data-parallel training processes on this machine (DistributedDataParallel)")
    p.add_argument("--name", help="run directory name under runs/ (an incomplete run of that name is continued)")
    p.add_argument("--output-dir", help="folder receiving the run directory (default runs)")


def resume_command(args: argparse.Namespace) -> Callable[[str], str]:
    """name -> the command line that continues this run: the same arguments, any name replaced by `--name NAME`."""
    parts = ["ecgzoo", "run", args.model, args.dataset]
    if args.preset != "paper":
        parts += ["--preset", args.preset]
    if args.config:
        parts += ["--config", args.config]
    parts += [x for item in args.assignments if item.partition("=")[0].strip() != "name" for x in ("--set", item)]
    for flag, value in (("--init", args.init), ("--device", args.device), ("--explainer", args.explainer), ("--nproc", args.nproc),
                        ("--output-dir", args.output_dir)):
        if value is not None:
            parts += [flag, str(value)]
    return lambda name: shlex.join([*parts, "--name", name])


def main(args: argparse.Namespace) -> int:
    from ecgzoo.cli import UsageError
    from ecgzoo.training.runner import run

    assignments = parse_assignments(args.assignments)
    for key, value in (("init", args.init), ("device", args.device), ("explainer", args.explainer), ("nproc", args.nproc),
                       ("name", args.name), ("output_dir", args.output_dir)):
        if value is not None:
            assignments[key] = value
    try:
        config = resolve_run_config(args.model, args.dataset, args.preset, args.config, assignments)
        run(args.model, args.dataset, config, resume=resume_command(args))
    except FileExistsError as exc:
        raise UsageError(str(exc)) from None
    except UnknownPluginError as exc:
        raise UnknownPluginError(f"{exc} {NOT_HERE}") from None
    return 0
