"""The trust benchmark (benchmarks/bench_trust.py) end to end on the tiny run, and its paired statistics by hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from test_predict import _toy, tiny  # noqa: F401 (fixtures: the toy plugin, the shared tiny run)

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_trust.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_trust", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_statistics_against_random(bench):
    expl, rnd = np.array([0.2, 0.3, 0.4, 0.5]), np.array([0.4, 0.4, 0.5, 0.45])
    row = bench.paired(expl, rnd, "lower")
    assert row["diff_mean"] == pytest.approx(np.mean(expl - rnd))
    assert row["beats_random"] == 3 and row["records"] == 4  # lower than random on 3 of 4 records
    assert row["diff_ci95"][0] <= row["diff_mean"] <= row["diff_ci95"][1]
    assert bench.paired(expl, rnd, "higher")["beats_random"] == 1
    assert 0 < row["wilcoxon_p"] <= 1


def test_trust_benchmark_runs_on_a_finished_run(bench, tiny, tmp_path):
    out = tmp_path / "trust.json"
    bench.main(["--run", str(tiny), "--records", "5", "--explainers", "cam,gradcam", "--steps", "4", "--seeds", "1",
                "--sanity", "3", "--out", str(out), "--figures", str(tmp_path)])
    result = json.loads(out.read_text())
    split = json.loads((tiny / "split.json").read_text())
    assert result["records"] == 5 and set(result["labels"]) <= {"N", "A", "O"}
    assert set(result["record_ids"]) <= set(split["val"]) - set(split["train"])  # held-out records only
    for name in ("cam", "gradcam"):
        for mode in ("deletion", "insertion"):
            row = result["faithfulness"][name][mode]
            assert row["records"] == 5 and 0 <= row["auc_mean"] <= 1 and 0 <= row["beats_random"] <= 5
        assert -1 <= result["sanity"][name]["spearman_mean"] <= 1 and result["sanity"][name]["records"] == 3
    assert Path(result["beats"]["cam"]["figure"]).is_file()
    assert set(result["beats"]["rr_irregularity"]) == set(result["labels"])
