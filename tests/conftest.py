"""Shared fixtures: a fresh plugin registry per test and the location of the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import ecgzoo

# Unit tests use tiny models: one thread is as fast, and far faster on a loaded 2-core machine
# where two threads per process oversubscribe the cores.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ECGZOO_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE_DIR = SHARED_DATA / "physionet2017-sample"
TRAINING_ARCHIVE = SHARED_DATA / "physionet2017" / "training2017.tar.xz"


@pytest.fixture(autouse=True)
def fresh_registry():
    """Each test sees only registry.toml + entry points, plus what it registers itself."""
    ecgzoo.reset_registry()
    yield
    ecgzoo.reset_registry()


@pytest.fixture
def sample_dir() -> Path:
    """The 240 untouched PhysioNet 2017 sample records; skip where the shared data is absent."""
    if not (SAMPLE_DIR / "REFERENCE.csv").is_file():
        pytest.skip(f"shared PhysioNet 2017 sample not found at {SAMPLE_DIR} (set ECGZOO_SHARED_DATA)")
    return SAMPLE_DIR


@pytest.fixture
def tiny_run(tmp_path_factory) -> Path:
    """The session's tiny finished run (tests/run_helpers.py), with its toy model registered for this test."""
    from run_helpers import register_toy, shared_run

    register_toy()
    return shared_run(tmp_path_factory)[0]
