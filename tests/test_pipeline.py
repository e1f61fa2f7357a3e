"""Pipeline (config round trip, requirements) and prepare() (arrays, labels, skip report, cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ecgzoo
from ecgzoo.config import ConfigError
from ecgzoo.pipeline import Pipeline
from ecgzoo.prepared import prepare

STEPS = [{"name": "zscore"}, {"name": "pad-crop", "seconds": 5.0}]


def _data(records: int = 6) -> ecgzoo.Dataset:
    return ecgzoo.get_dataset("synthetic", records=records, seconds=4.0)


def test_pipeline_config_is_json_and_rebuilds_the_same_pipeline():
    p = Pipeline(STEPS)
    cfg = json.loads(json.dumps(p.config))
    assert [s["name"] for s in cfg] == ["zscore", "pad-crop"] and cfg[1]["seconds"] == 5.0
    again = Pipeline(cfg)
    rec = _data().load("S00001")
    np.testing.assert_array_equal(p(rec).signal, again(rec).signal)
    assert p.output_fs(300.0) == 300.0


def test_pipeline_bad_step_is_a_config_error():
    with pytest.raises(ConfigError, match="step 0"):
        Pipeline([{"seconds": 3}])
    with pytest.raises(ecgzoo.PluginError):
        Pipeline([{"name": "no-such-step"}])


def test_prepare_arrays_labels_and_torch_dataset():
    data = _data(6)
    prep = prepare(data, Pipeline(STEPS), progress=False)
    assert prep.signals.shape == (6, 1, 1500) and prep.signals.dtype == np.float32
    assert prep.labels.tolist() == [0, 1, 2, 0, 1, 2] and prep.classes == ["N", "A", "O"]
    assert prep.valid_lengths.tolist() == [1200] * 6 and prep.fs == 300.0 and prep.skipped == []
    ds = prep.torch_dataset([4, 1])
    x, y, vl = ds[0]
    assert len(ds) == 2 and x.dtype == torch.float32 and x.shape == (1, 1500) and y == 1 and vl == 1200
    np.testing.assert_array_equal(x.numpy(), prep.signals[4])


def test_prepare_subset_keeps_requested_order():
    prep = prepare(_data(6), Pipeline(STEPS), record_ids=["S00005", "S00000"], progress=False)
    assert prep.record_ids == ["S00005", "S00000"] and prep.labels.tolist() == [2, 0]


def test_prepare_without_fixed_length_names_the_record():
    # synthetic records all have one length, so force a mismatch with a tiny dataset of two lengths
    class TwoLengths(ecgzoo.Dataset):
        classes = ("N",)

        def record_ids(self):
            return ["short", "long"]

        def label(self, rid):
            return "N"

        def load(self, rid):
            n = 400 if rid == "short" else 500
            return ecgzoo.Record(np.sin(np.arange(n, dtype=np.float32))[None], 300.0, rid, "N")

    with pytest.raises(ecgzoo.RecordError, match="'long'.*pad-crop"):
        prepare(TwoLengths(), Pipeline([{"name": "zscore"}]), progress=False)
    prep = prepare(TwoLengths(), Pipeline([{"name": "zscore"}]), on_error="skip", progress=False)
    assert prep.record_ids == ["short"] and prep.skipped[0][0] == "long"


def test_cache_second_run_skips_preprocessing(tmp_path, monkeypatch):
    data = _data(6)
    first = prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert not first.from_cache and isinstance(first.signals, np.memmap)
    calls = []
    original = type(data).load
    monkeypatch.setattr(type(data), "load", lambda self, rid: calls.append(rid) or original(self, rid))
    second = prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert second.from_cache and calls == []
    np.testing.assert_array_equal(np.asarray(first.signals), np.asarray(second.signals))
    # another pipeline config or record list is another entry
    third = prepare(data, Pipeline([{"name": "pad-crop", "seconds": 5.0}]), cache_dir=tmp_path, progress=False)
    assert not third.from_cache and len(calls) == 6
    entries = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 2 and not list(tmp_path.glob(".partial-*"))
