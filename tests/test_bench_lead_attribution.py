"""The lead-deletion benchmark (benchmarks/bench_lead_attribution.py): curves by hand on a V1-only model, the
textbook-lead summary, and the script end to end on the PTB-XL sample with an untrained tiny model."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from test_lead_attribution import V1, OnlyV1, _records

import ecgzoo
from ecgzoo.core.leads import STANDARD_12

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_lead_attribution.py"
PTBXL_SAMPLE = SHARED_DATA / "ptbxl-sample"
TINY_XRESNET = ["--model-set", "layers=[1,1,1,1]", "--model-set", "width=4", "--model-set", "stem=[4,4,8]"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_lead_attribution", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_deletion_aucs_against_a_hand_computation_on_a_model_that_reads_only_v1(bench):
    model, x = OnlyV1().eval(), _records(1)[0]
    subject = bench.Subject(model, None, ["a", "b"], True, "v1 only", "linear")
    explainers = {"lead-occlusion": ecgzoo.create_explainer("lead-occlusion", output="sigmoid")}
    r = bench.record_curves(subject, explainers, x, [0], "zero", None, STANDARD_12, [7, 3], argparse.Namespace(seeds=4, batch_size=5))
    full = torch.sigmoid(model(x[None])[0, 0]).item()
    gone = torch.sigmoid(torch.tensor(0.3)).item()  # class 0 with V1 zeroed: its bias alone
    # the probability is `full` until V1 is deleted (after j other leads), `gone` after: trapezoid over fractions k/12
    def auc(j: int) -> float:
        return (full * j + (full + gone) / 2 + gone * (11 - j)) / 12
    assert r["lead-occlusion"][0] == pytest.approx(auc(0))  # the ranking deletes V1 first
    positions = [int(np.flatnonzero(np.random.default_rng([7, 3, s]).permutation(12) == V1)[0]) for s in range(4)]
    assert r["random"][0] == pytest.approx(np.mean([auc(j) for j in positions]))
    assert r["ranks"]["lead-occlusion"][0][V1] == 1 and sorted(r["ranks"]["lead-occlusion"][0]) == list(range(1, 13))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # --precision bf16: the same curves to bfloat16's precision
        low = bench.record_curves(subject, explainers, x, [0], "zero", None, STANDARD_12, [7, 3],
                                  argparse.Namespace(seeds=4, batch_size=5))
    assert low["lead-occlusion"][0] == pytest.approx(auc(0), abs=0.01) and low["random"][0] == pytest.approx(r["random"][0], abs=0.01)


def test_the_rank_table_names_the_textbook_leads_and_their_chance_level(bench):
    ranks = list(range(1, 13))
    first = {"ranks": {"e": [3, 4, 5, 6, 7, 8, 1, 9, 10, 11, 12, 2]}, "class": "CLBBB"}  # V1 first, V6 second
    second = {"ranks": {"e": [1, *ranks[1:6], 12, *ranks[6:10], 11]}, "class": "CLBBB"}  # I first, V1 12th, V6 11th
    table = bench.lead_ranking([first, second], "e", ["CLBBB", "NORM"], STANDARD_12)
    tb = table["CLBBB"]["textbook"]
    assert tb["leads"] == ["V1", "V6"] and tb["mean_rank"] == pytest.approx((1 + 2 + 12 + 11) / 4)
    assert tb["top_lead_in_textbook"] == 0.5 and tb["random_top_lead_in_textbook"] == pytest.approx(2 / 12)
    assert table["CLBBB"]["mean_rank"]["I"] == 2.0 and "NORM" not in table  # no NORM record: no row


def test_benchmark_runs_end_to_end_on_the_ptbxl_sample_with_an_untrained_tiny_model(bench, tmp_path, capsys):
    if not (PTBXL_SAMPLE / "ptbxl_database.csv").is_file():
        pytest.skip(f"shared PTB-XL sample not found at {PTBXL_SAMPLE} (set ECGZOO_SHARED_DATA)")
    out = tmp_path / "lead.json"
    result = bench.main(["--untrained", "xresnet1d101", *TINY_XRESNET, "--data", str(PTBXL_SAMPLE), "--task", "superdiag",
                         "--max-records", "6", "--fill", "zero,other-record,reconstruct", "--reference-records", "3",
                         "--out", str(out), "--min-records", "1"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    data = ecgzoo.get_dataset("ptbxl", path=str(PTBXL_SAMPLE), task="superdiag", download=False)
    fold10 = sorted((r for r in data.record_ids() if data.fold(r) == 10), key=int)[:6]
    assert result["records"] == 6 and result["record_ids"] == fold10 and result["probability"] == "sigmoid"
    pairs = sum(len(data.label(r)) for r in fold10)
    for fill in ("zero", "other-record", "reconstruct"):
        for name in ("lead-occlusion", "lead-gradxinput"):
            res = result["results"][fill][name]
            pooled = res["classes"]["all"]
            assert pooled["records"] == pairs and 0 <= pooled["beats_random"] <= pairs
            assert 0 <= pooled["auc_mean"] <= 1 and 0 <= pooled["random_mean"] <= 1
            assert pooled["diff_ci95"][0] <= pooled["diff_mean"] <= pooled["diff_ci95"][1]
            for entry in res["ranking"].values():  # ranks 1..12 of each record average to 6.5 over the leads
                assert np.mean(list(entry["mean_rank"].values())) == pytest.approx(6.5)
    capsys.readouterr()
    assert bench.main(["--table", str(out)]) is None
    printed = capsys.readouterr().out
    assert "**fill other-record, lead-occlusion**" in printed and "| all (pooled) |" in printed
