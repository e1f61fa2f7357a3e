"""Installing a throwaway third-party package into this venv for one test (entry point `ecgzoo`)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import ecgzoo


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stderr[-2000:]}"


def pyproject(dist: str, module: str, entry: str) -> str:
    """A setuptools pyproject for one module declared under the `ecgzoo` entry-point group."""
    return f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{dist}"
        version = "0.0.1"
        [project.entry-points.ecgzoo]
        {entry} = "{module}"
        [tool.setuptools]
        py-modules = ["{module}"]
    """


@contextlib.contextmanager
def installed(folder: Path, dist: str, files: dict[str, str]) -> Iterator[None]:
    """`files` written to `folder`, pip-installed (no index, no deps), uninstalled afterwards; fresh registries."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(folder))
    try:
        ecgzoo.reset_registry()
        yield
    finally:
        _pip("uninstall", "-y", dist)
        ecgzoo.reset_registry()
