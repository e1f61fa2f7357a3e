"""The multi-label evidence-removal benchmark (benchmarks/bench_trust_multilabel.py) and the parts of
bench_trust.py and ecgzoo.explain.evidence it shares: targets, per-statement statistics, resumed runs."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bench_helpers import load_benchmark

import ecgzoo
from ecgzoo.explain import evidence


@pytest.fixture(scope="module")
def ml():
    return load_benchmark("bench_trust_multilabel")


@pytest.fixture(scope="module")
def bt():
    return load_benchmark("bench_trust")


def test_targets_are_the_positive_statements_most_probable_first_else_the_most_probable_one(ml):
    assert ml.targets_of([0.2, 0.9, 0.5, 0.6], [0.3, 0.5, 0.5, 0.7]) == ([1, 2], False)  # 0.5 >= 0.5 counts
    assert ml.targets_of([0.2, 0.4, 0.1], [0.3, 0.5, 0.5]) == ([1], True)  # none positive: the top one, flagged
    with pytest.raises(ValueError, match="3 probabilities but 2 thresholds"):
        ml.targets_of([0.2, 0.4, 0.1], [0.3, 0.5])


def test_drawn_targets_are_a_seeded_uniform_subset_most_probable_first(ml):
    probs = [0.9, 0.1, 0.8, 0.7, 0.6]
    assert ml.drawn([0, 2, 3, 4], probs, 0, seed=5) == [0, 2, 3, 4]  # 0: all of them
    assert ml.drawn([0, 2, 3, 4], probs, 9, seed=5) == [0, 2, 3, 4]
    two = ml.drawn([0, 2, 3, 4], probs, 2, seed=5)
    assert len(two) == 2 and set(two) <= {0, 2, 3, 4} and probs[two[0]] >= probs[two[1]]
    assert ml.drawn([0, 2, 3, 4], probs, 2, seed=5) == two  # the same record draws the same
    firsts = {ml.drawn([0, 2, 3, 4], probs, 1, seed=s)[0] for s in range(40)}
    assert firsts == {0, 2, 3, 4}  # not the most probable alone


def _curves(morf: list[float], rnd: list[float]) -> dict:
    flat = {"probability": morf, "margin": morf, "energy": [0, 0.5, 1], "rpeaks": [0, 0.5, 1]}
    base = {"probability": rnd, "margin": rnd, "energy": [0, 0.5, 1], "rpeaks": [0, 0.5, 1]}
    return {"road": {"fraction": [0, 0.5, 1], "segments": 2, "passes": 5,
                     "curves": {"cam": {"morf": flat, "lerf": flat}, evidence.RANDOM_ORDER: {"morf": base, "lerf": base}}}}


def test_per_statement_statistics_match_a_hand_computation(ml):
    rows = [{"targets": [{"statement": "MI", "curves": _curves([1.0, 0.4, 0.2], [1.0, 0.6, 0.2])},
                         {"statement": "STTC", "curves": _curves([1.0, 1.0, 1.0], [1.0, 0.8, 0.6])}]},
            {"targets": [{"statement": "MI", "curves": _curves([0.8, 0.8, 0.0], [0.8, 0.4, 0.0])}]}]
    tab = ml.statement_tables(rows, min_records=2)
    assert tab["explained"] == {"MI": 2, "STTC": 1}
    assert set(tab["summary"]) == {"all", "MI"}  # STTC is explained once: below min_records, no row of its own
    mi = tab["summary"]["MI"]["road"]["orderings"]["cam"]["morf_probability"]
    # trapezoid areas over fractions 0, 0.5, 1: cam 0.5 and 0.6, random 0.6 and 0.4
    assert mi["auc_mean"] == pytest.approx(0.55) and mi["random_mean"] == pytest.approx(0.5)
    assert mi["diff_mean"] == pytest.approx(0.05) and mi["beats_random"] == 1 and mi["records"] == 2
    pooled = tab["summary"]["all"]["road"]["orderings"]["cam"]["morf_probability"]
    assert pooled["records"] == 3 and pooled["auc_mean"] == pytest.approx((0.5 + 1.0 + 0.6) / 3)
    assert pooled["random_mean"] == pytest.approx((0.6 + 0.8 + 0.4) / 3)


def test_resumed_run_scores_only_the_records_not_in_the_file(bt, tmp_path, capsys):
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"record_id": "b", "kept": True}) + "\n")
    records = [SimpleNamespace(record_id=r) for r in "abcd"]
    called = []

    def score(i):
        called.append(i)
        if records[i].record_id == "c":
            raise ecgzoo.RecordError("c", "2 beats needed")
        return {"record_id": records[i].record_id}, "note"

    args = argparse.Namespace(jsonl=str(jsonl), records=4, max_seconds=0)
    rows = bt.scored_rows(args, records, score)
    assert called == [0, 2, 3]  # b was scored before: reused, not rescored
    assert [r["record_id"] for r in rows] == ["a", "b", "d"] and rows[1] == {"record_id": "b", "kept": True}
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["record_id"] for r in lines] == ["b", "a", "d"] and all("seconds" in r for r in lines[1:])
    assert "skipped" in capsys.readouterr().out
    called.clear()
    assert [r["record_id"] for r in bt.scored_rows(args, records, score)] == ["a", "b", "d"] and called == [2]


def test_shards_score_contiguous_blocks_and_their_joined_rows_are_the_whole_run(bt, tmp_path):
    assert [bt.shard_range(f"{i}/3", 10) for i in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert bt.shard_range(None, 10) == (0, 10)
    for bad in ("2/2", "x", "1/0"):
        with pytest.raises(SystemExit, match="--shard"):
            bt.shard_range(bad, 10)
    records = [SimpleNamespace(record_id=r) for r in "abcde"]
    called = []

    def score(i):
        called.append(i)
        return {"record_id": records[i].record_id}, "note"

    parts = []
    for i in range(2):
        args = argparse.Namespace(jsonl=str(tmp_path / f"part{i}.jsonl"), records=5, max_seconds=0, shard=f"{i}/2")
        parts.append([r["record_id"] for r in bt.scored_rows(args, records, score)])
    assert parts == [["a", "b"], ["c", "d", "e"]] and called == [0, 1, 2, 3, 4]
    joined = tmp_path / "all.jsonl"
    joined.write_text("".join((tmp_path / f"part{i}.jsonl").read_text() for i in (1, 0)))
    called.clear()
    args = argparse.Namespace(jsonl=str(joined), records=5, max_seconds=0)
    assert [r["record_id"] for r in bt.scored_rows(args, records, score)] == list("abcde") and called == []


def test_compressed_rows_resume_and_a_killed_run_keeps_its_complete_rows(bt, tmp_path):
    records = [SimpleNamespace(record_id=r) for r in "abcd"]
    path = tmp_path / "rows.jsonl.gz"

    def score(i):
        return {"record_id": records[i].record_id, "pad": "x" * 2000 * i}, "note"

    for n in (2, 4):  # two runs: two gzip members, the second reusing the first's rows
        rows = bt.scored_rows(argparse.Namespace(jsonl=str(path), records=n, max_seconds=0), records, score)
    assert [r["record_id"] for r in rows] == list("abcd") and [r["record_id"] for r in bt.read_rows(path)] == list("abcd")
    assert path.read_bytes()[:2] == b"\x1f\x8b" and path.stat().st_size < 2000  # compressed
    data = path.read_bytes()
    path.write_bytes(data[:-12])  # killed: the last member lacks its end (and maybe its last row)
    kept = [r["record_id"] for r in bt.read_rows(path)]
    assert kept in (list("abc"), list("abcd"))
    (tmp_path / "plain.jsonl").write_text('{"record_id": "a"}\n{"record_id": "b"\n{"record_id": "c"}\n')
    with pytest.raises(SystemExit, match="row 2 is damaged"):
        bt.read_rows(tmp_path / "plain.jsonl")


class _Fixed(torch.nn.Module):
    """Logits (2.0, -1.0, 0.5) for every input."""

    def forward(self, x, valid_length=None):
        return torch.tensor([[2.0, -1.0, 0.5]]).repeat(len(x), 1)


def test_multilabel_outputs_are_the_statements_sigmoid_and_logit():
    x = torch.zeros(3, 1, 8)
    ml = evidence.model_outputs(_Fixed(), x, 2, 8, batch_size=2, multilabel=True)
    assert np.allclose(ml.probability, 1 / (1 + np.exp(-0.5))) and np.allclose(ml.margin, 0.5)
    single = evidence.model_outputs(_Fixed(), x, 2, 8, batch_size=2)  # softmax, and the margin to the top other
    soft = np.exp([2.0, -1.0, 0.5]) / np.exp([2.0, -1.0, 0.5]).sum()
    assert np.allclose(single.probability, soft[2]) and np.allclose(single.margin, 0.5 - 2.0)


def test_donor_is_the_next_record_without_the_explained_statement(bt):
    recs = [SimpleNamespace(label=lab) for lab in [("MI",), ("MI", "STTC"), ("NORM",), "A"]]
    assert bt.donor_for(recs, 0, "MI") is recs[2]
    assert bt.donor_for(recs, 2, "A") is recs[0]  # a single-label record's one label counts as its set
    assert bt.donor_for(recs, 3, "MI") is recs[2]


def test_held_out_records_are_loaded_with_the_runs_dataset_options(bt):
    data = ecgzoo.get_dataset("synthetic", records=6, seconds=4.0)
    ids = data.record_ids()
    run = SimpleNamespace(splits={"train": ids[:3], "test": ids[3:]}, info={"dataset": "synthetic"},
                          config={"config": {"dataset": {"records": 6, "seconds": 4.0}}}, pipeline=lambda r: r)
    records, skipped = bt.held_out_records(run, None, 2)
    assert [r.record_id for r in records] == sorted(ids[3:])[:2] and not skipped
    assert records[0].signal.shape[-1] == round(4.0 * records[0].fs)  # the run's 4-s records, not the 30-s default


def test_beat_lead_agrees_when_its_count_is_near_the_median_of_the_leads(ml):
    assert not ml.beats_agree([27, 13, 13])  # the beat lead took T waves for beats: twice the others' count
    assert ml.beats_agree([12, 23, 12])  # another lead doubled; the beat lead is with the majority
    assert ml.beats_agree([15, 13, 13]) and not ml.beats_agree([16, 13, 13])  # 20% of the median 13 is 2.6
