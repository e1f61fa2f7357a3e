"""Property-based fuzzing (tests/fuzz_harness.py) with a fixed, derandomized example budget.

Each property draws mutated inputs, datasets or checkpoints and asserts the harness invariant:
exit 0 with finite probabilities summing to 1, or a non-zero exit with one line naming the input;
never a traceback, a warning, a NaN class or a half-written output file. The budget keeps the
suite fast and CI deterministic (`derandomize=True`: the same examples on every run); the long
run is `benchmarks/fuzz_long.py`.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR
from fuzz_harness import (
    build_input,
    build_run_copy,
    check_dataset,
    check_evaluate,
    check_explain,
    check_predict,
    checkpoint_case,
    input_case,
    load_sources,
    write_folder,
)
from hypothesis import HealthCheck, given, settings
from run_helpers import register_toy, shared_run

_BASE = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def budget(examples: int) -> settings:
    """The fixed example budget of one property (derandomized: the same cases on every run)."""
    return settings(_BASE, max_examples=examples)
SOURCES = load_sources(SAMPLE_DIR if (SAMPLE_DIR / "REFERENCE.csv").is_file() else None)
_counter = itertools.count()


@pytest.fixture
def run_dir(tmp_path_factory):
    register_toy()
    return shared_run(tmp_path_factory)[0]


def _case_dir(tmp_path: Path) -> Path:
    folder = tmp_path / f"case{next(_counter)}"
    folder.mkdir()
    return folder


def test_sources_include_the_real_records_when_shared_data_is_present():
    real = [s for s in SOURCES if s.files]
    if not (SAMPLE_DIR / "REFERENCE.csv").is_file():
        pytest.skip(f"shared PhysioNet 2017 sample not found at {SAMPLE_DIR}: fuzzing synthetic records only")
    assert len(real) == 3 and all(s.signal.shape[0] == 1 for s in real)


@budget(40)
@given(case=input_case(len(SOURCES)))
def test_fuzz_predict(run_dir, tmp_path, case):
    folder = _case_dir(tmp_path)
    path, extra = build_input(folder, SOURCES, case)
    assert check_predict(run_dir, path, extra).violations == []


@budget(8)
@given(case=input_case(len(SOURCES)))
def test_fuzz_explain(run_dir, tmp_path, case):
    folder = _case_dir(tmp_path)
    path, extra = build_input(folder, SOURCES, case)
    assert check_explain(run_dir, path, extra, folder / "out").violations == []


@budget(25)
@given(case=input_case(len(SOURCES)))
def test_fuzz_dataset_loading(tmp_path, case):
    folder = _case_dir(tmp_path)
    rid = write_folder(folder, SOURCES, case)
    assert check_dataset(folder, rid).violations == []


@budget(4)
@given(case=input_case(len(SOURCES)))
def test_fuzz_evaluate(run_dir, case):
    with tempfile.TemporaryDirectory(prefix="ecgzoo-fuzz-") as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        rid = write_folder(folder, SOURCES, case)
        assert check_evaluate(run_dir, folder, rid, Path(tmp) / "eval").violations == []


@budget(30)
@given(edits=checkpoint_case(), case=input_case(len(SOURCES)))
def test_fuzz_checkpoint_and_run_files(run_dir, tmp_path, edits, case):
    folder = _case_dir(tmp_path)
    run_copy = build_run_copy(run_dir, folder, edits)
    path, _ = build_input(folder, SOURCES, {**case, "format": "npy", "mutations": []})
    from fuzz_harness import run_cli, violations

    result = run_cli("predict", str(run_copy), str(path), "--fs", "300", "--json")
    assert violations("predict", result, [str(run_copy)]) == []
