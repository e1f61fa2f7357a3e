"""The trust benchmark (benchmarks/bench_trust.py) end to end on the tiny run: evidence removal, resumed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import load_benchmark
from test_predict import _toy, tiny  # noqa: F401 (fixtures: the toy plugin, the shared tiny run)


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_trust")


def test_trust_benchmark_runs_and_resumes_on_a_finished_run(bench, tiny, tmp_path, capsys):
    out, jsonl = tmp_path / "trust.json", tmp_path / "rows.jsonl"
    argv = ["--run", str(tiny), "--explainers", "cam,random", "--segments", "window", "--window-s", "1",
            "--fills", "road,donor,zero", "--fractions", "0,0.5,1", "--seeds", "2", "--sanity", "2", "--beats",
            "--out", str(out), "--jsonl", str(jsonl), "--figures", str(tmp_path)]
    bench.main([*argv, "--records", "3"])
    result = json.loads(out.read_text())
    split = json.loads((tiny / "split.json").read_text())
    held_out = set(split.get("test") or split["val"]) - set(split["train"])
    assert result["records"] == 3 and set(result["record_ids"]) <= held_out  # held-out records only
    for fill in ("road", "donor", "zero"):
        rows = result["evidence"]["all"][fill]["orderings"]
        assert set(rows) == {"cam", "random", "energy", "removal effect", "random order"}
        row = rows["cam"]["morf_probability"]
        assert row["records"] == 3 and 0 <= row["auc_mean"] <= 1 and 0 <= row["beats_random"] <= 3
        assert rows["cam"]["morf_energy_share"][0] == 0 and rows["cam"]["morf_energy_share"][-1] == pytest.approx(1)
    assert "Fill `road`" in result["table_md"] and "| `cam` |" in result["table_md"]
    assert -1 <= result["sanity"]["cam"]["spearman_mean"] <= 1 and result["sanity"]["cam"]["records"] == 2
    assert Path(result["beats"]["cam"]["figure"]).is_file()
    assert set(result["old_windows"]["cam"]["0.1"]) == {"energy", "rpeaks", "qrs_cut"}
    assert "| `random order 1` |" in result["table_md"] and "QRS cut at 20%" in result["table_md"]
    first = jsonl.read_text().splitlines()
    capsys.readouterr()
    bench.main([*argv, "--records", "4", "--sanity", "0"])  # the first 3 rows are reused, one more scored
    assert "(1 scored now)" in capsys.readouterr().out
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 4 and lines[:3] == first
    assert json.loads(out.read_text())["records"] == 4
