"""examples/plugin-package, built and installed as a user would, is found by every ecgzoo process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "examples" / "plugin-package"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, str]:
    """The package built from its pyproject (setuptools, no network) and installed into a folder of its own;
    the environment of a process that has it on its path."""
    source = tmp_path_factory.mktemp("src") / "plugin-package"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))  # the build writes there
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           "--target", str(target), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(target.glob("ecgzoo_example_plugin-0.1.0.dist-info/entry_points.txt"))
    return {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}


def _ecgzoo(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from ecgzoo.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_another_process_lists_the_packages_model_with_its_entry_point(site):
    done = _ecgzoo(site, "list", "model")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "examplenet" in x)
    assert "entry point example = ecgzoo_example_plugin" in line
    info = _ecgzoo(site, "info", "examplenet")
    assert info.returncode == 0 and "width" in info.stdout and "kernel" in info.stdout


def test_the_packages_own_tests_pass(site):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PACKAGE / "tests")],
                          env=site, cwd=PACKAGE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout


@pytest.mark.slow  # a training run in a fresh process: about 20-30 s on one core
def test_ecgzoo_run_trains_the_packages_model(site, tmp_path):
    done = _ecgzoo(site, "run", "examplenet", "synthetic", "--name", "pkg", "--output-dir", str(tmp_path),
                   "--set", "dataset.records=24", "--set", 'preprocessing=[{name = "zscore"}, {name = "pad-crop", seconds = 4.0}]',
                   "--set", "trainer.epochs=1", "--set", "trainer.progress=false", "--set", "report.examples_per_class=0",
                   "--set", "estimate=false", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Model **examplenet** trained on dataset **synthetic**" in (tmp_path / "pkg" / "report.md").read_text()
