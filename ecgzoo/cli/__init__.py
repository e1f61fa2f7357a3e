"""The `ecgzoo` command line. Each sub-command is one module `ecgzoo.cli.cmd_<name>`
exposing HELP, add_arguments(parser) and main(args) -> exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ecgzoo._infra.files import DiskFullError
from ecgzoo._infra.version import __version__
from ecgzoo.core.config import ConfigError
from ecgzoo.core.explainer import UnsupportedModelError
from ecgzoo.core.manifest import PretrainedError
from ecgzoo.core.record import RecordError
from ecgzoo.core.registry import PluginError

#: sub-commands in the order `ecgzoo --help` lists them
COMMANDS = ("list", "info", "run", "predict", "evaluate", "explain", "publish")


class UsageError(Exception):
    """A command-line mistake: printed without a traceback, exit code 2."""


def _load_commands() -> dict[str, object]:
    modules = {}
    for name in COMMANDS:
        try:
            modules[name] = importlib.import_module(f"ecgzoo.cli.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"ecgzoo.cli.cmd_{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecgzoo", description="Train ECG rhythm classifiers and show why they decide what they decide."
    )
    parser.add_argument("--version", action="version", version=f"ecgzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _load_commands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_main=module.main)
    return parser


def _reader_went_away() -> int:
    """`ecgzoo info cnnv7 | head`: the reader closed the pipe. Stop quietly, as Unix tools do.

    Python's own flush at exit would raise again on the closed descriptor, so stdout is
    pointed at /dev/null first (the recipe of the `signal` module's documentation).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the closed pipe


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        code = int(args._main(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return code
    except BrokenPipeError:
        return _reader_went_away()
    except (UsageError, ConfigError, PluginError, RecordError, UnsupportedModelError, FileNotFoundError,
            PretrainedError) as exc:
        print(f"ecgzoo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except DiskFullError as exc:  # not the user's mistake, but one line saying what happened, no traceback
        print(f"ecgzoo {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ecgzoo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
