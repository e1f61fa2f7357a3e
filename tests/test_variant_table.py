"""benchmarks/variant_table.py: the variant comparison is read from the result files, cell by cell."""

from __future__ import annotations

import json

import pytest
from bench_helpers import load_benchmark


@pytest.fixture(scope="module")
def vt():
    return load_benchmark("variant_table")


def _row(diff: float) -> dict:
    return {"diff_mean": diff, "diff_ci95": [diff - 0.01, diff + 0.01], "beats_random": 7, "records": 10}


def test_each_cell_comes_from_the_files(vt, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"test": {"challenge_f1": 0.85, "challenge_f1_ci95": [0.82, 0.88], "n": 1128}}))
    orderings = {"cam": {"morf_probability": _row(-0.05), "lerf_probability": _row(0.04)}}
    trust = {"records": 10, "evidence": {"all": {"road": {"orderings": orderings},
                                                 "donor": {"orderings": {"cam": {"morf_probability": _row(-0.02)}}}}}}
    (tmp_path / "trust.json").write_text(json.dumps(trust))
    (tmp_path / "loc.json").write_text(json.dumps({"summary": {"cam": {"auroc_mean_paroxysmal": 0.7, "auroc_per_record": [0.6, 0.8]}}}))
    text = vt.table([("rf2", str(run), str(tmp_path / "trust.json"), str(tmp_path / "loc.json"))], ["cam", "saliency"])
    cam, saliency = text.splitlines()[2:]
    assert cam == ("| rf2 | 0.850 [0.820, 0.880], 1128 | `cam` | -0.050 [-0.060, -0.040], 7/10 | -0.020 [-0.030, -0.010], 7/10 | "
                   "+0.040 [+0.030, +0.050], 7/10 | 10 | 0.700 (2 records) |")
    assert saliency.count("not run") == 4  # not in the trust file, not in the localisation file


def test_a_run_without_test_figures_is_refused_by_name(vt, tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"validation": {}}))
    with pytest.raises(SystemExit, match="no test-split figures .*validation"):
        vt.test_figures(str(tmp_path))


def test_the_paired_difference_matches_a_hand_computation(vt, tmp_path):
    head = "record,true,predicted\n"
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    # A right on 3 of 4, B on all 4; classes N, A; scored both
    a.write_text(head + "r1,N,N\nr2,N,N\nr3,A,A\nr4,A,N\n")
    b.write_text(head + "r4,A,A\nr1,N,N\nr2,N,N\nr3,A,A\n")
    d = vt.paired_difference(str(a), str(b), ["N", "A"], ["N", "A"], resamples=200)
    # A: F1(N) = 2*2/(2*2+1) = 0.8, F1(A) = 2*1/(2*1+1) = 2/3; mean 0.7333; B: 1.0
    assert d["records"] == 4 and d["a"] == pytest.approx((0.8 + 2 / 3) / 2) and d["b"] == 1.0
    assert d["diff"] == pytest.approx(1 - (0.8 + 2 / 3) / 2) and d["diff_ci95"][0] >= 0 and d["share_b_lower"] == 0
    b.write_text(head + "r1,N,N\nr2,N,N\nr3,A,A\n")
    with pytest.raises(SystemExit, match="different records"):
        vt.paired_difference(str(a), str(b), ["N", "A"], ["N", "A"])
