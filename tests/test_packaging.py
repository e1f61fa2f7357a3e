"""Reference plugins in every install layout: a non-editable wheel in a fresh venv, run from another
folder; a registry that cannot be found is loud, never an empty plugin list."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import ecgzoo
from ecgzoo.cli import main as cli

REPO = Path(__file__).resolve().parent.parent


def test_missing_registry_is_a_broken_entry_named_in_every_lookup(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECGZOO_REGISTRY", str(tmp_path / "gone.toml"))
    ecgzoo.reset_registry()
    broken = ecgzoo.get_registry().broken()
    assert len(broken) == 1 and "the plugin registry cannot be read" in broken[0].error
    assert "no reference plugin is available" in broken[0].error
    with pytest.raises(ecgzoo.PluginError, match=r"no model plugin named 'cnnv7'.*1 broken plugin source"):
        ecgzoo.create_model("cnnv7")
    assert cli(["list"]) == 0
    assert "gone.toml" in capsys.readouterr().out


def test_registry_is_read_from_the_reference_package_not_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("ECGZOO_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    ecgzoo.reset_registry()
    assert "cnnv7" in ecgzoo.list_models() and ecgzoo.get_registry().broken() == []
    assert str(ecgzoo.core.registry.default_registry_file()).endswith(os.path.join("plugins", "registry.toml"))


def test_every_package_folder_is_listed_in_pyproject():
    """A new subpackage left out of [tool.setuptools] packages would be missing from the wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "ecgzoo").rglob("__init__.py")}
    plugins = REPO / "plugins"
    folders |= {".".join(("ecgzoo_plugins", *p.parent.relative_to(plugins).parts)) for p in plugins.rglob("__init__.py")}
    assert listed == folders


@pytest.mark.slow
def test_non_editable_wheel_in_a_fresh_venv_lists_the_reference_plugins_from_another_folder(tmp_path):
    """Build the wheel, install it (no deps) into a new venv that borrows this venv's dependencies
    through a .pth line (site-packages added that way is not scanned for .pth files, so the editable
    ecgzoo stays invisible), and run `ecgzoo list` in an empty folder."""
    wheels, source = tmp_path / "wheels", tmp_path / "source"
    # a clean copy: setuptools builds in the source tree, where a stale build/ could leak removed files into the wheel
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "runs",
                                                                ".pytest_cache", ".cache", ".data"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = wheels.glob("ecgzoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ecgzoo_plugins/registry.toml" in names
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "ecgzoo").rglob("*") if p.suffix in (".py", ".html", ".csv", ".md")}
    assert shipped - names == set()  # every module of every subpackage, the viewer's page
    tables = {f"ecgzoo_plugins/vocab/{p.name}" for p in (REPO / "plugins" / "vocab").iterdir()}
    assert tables and tables - names == set()  # the cinc2021 plugin's tables and their SOURCES.md
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ECGZOO_REGISTRY", "PYTHONPATH")}
    where = subprocess.run([py, "-c", "import ecgzoo, ecgzoo_plugins; print(ecgzoo.__file__); print(ecgzoo_plugins.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(p.startswith(site) for p in where), where  # the wheel's copies, not the source tree
    done = subprocess.run([venv / "bin" / "ecgzoo", "list"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()}
    assert {"cnnv7", "cnnv7-small", "deepecg13", "synthetic", "physionet2017", "trainer", "cam", "occlusion"} <= names
    assert "BROKEN" not in done.stdout.upper(), done.stdout
