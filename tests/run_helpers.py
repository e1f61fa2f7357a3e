"""One tiny finished run shared by the run, predict and evaluate tests (built once per session)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import toy_plugins

import ecgzoo
from ecgzoo.cli import main

#: a few short synthetic records, a 4-channel toy CAM model, 2 epochs: seconds on one core
TINY_SETS = [
    "dataset.records=24",
    'preprocessing=[{name = "zscore"}, {name = "pad-crop", seconds = 4.0}]',
    "trainer.epochs=2",
    "trainer.batch_size=8",
    "trainer.progress=false",
    "report.examples_per_class=1",
    "device=cpu",
]

_CACHE: dict[str, Any] = {}


def register_toy() -> None:
    """The toy model from tests/toy_plugins.py, under its own plugin name."""
    ecgzoo.register_plugin(toy_plugins, "toy-plugins")


def cli(*argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one `ecgzoo` command run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def tiny_run_args(output_dir: Path, name: str, *extra: str) -> list[str]:
    args = ["run", "toy", "synthetic", "--output-dir", str(output_dir), "--name", name]
    for item in TINY_SETS:
        args += ["--set", item]
    for item in extra:
        args += ["--set", item]
    return args


def shared_run(tmp_path_factory: Any) -> tuple[Path, str, str]:
    """(run directory, stdout, stderr) of the session's tiny run (the toy model must be registered)."""
    if "run" not in _CACHE:
        root = tmp_path_factory.mktemp("runs")
        code, out, err = cli(*tiny_run_args(root, "tiny"))
        assert code == 0, err
        _CACHE["run"] = (root / "tiny", out, err)
    return _CACHE["run"]
