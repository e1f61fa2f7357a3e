"""Pipeline (config round trip, requirements) and prepare() (arrays, labels, skip report, cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ecgzoo
from ecgzoo.core.config import ConfigError
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare

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


def _prepare_in_child(cache_dir: str, queue) -> None:
    import ecgzoo as z
    from ecgzoo.data.pipeline import Pipeline as P
    from ecgzoo.data.prepared import prepare as prep

    data = z.get_dataset("synthetic", records=40, seconds=4.0)
    out = prep(data, P(STEPS), cache_dir=cache_dir, progress=False)
    queue.put((str(out.cache_path), float(np.asarray(out.signals).sum()), out.from_cache))


def test_two_processes_building_one_entry_at_once_do_not_corrupt_it(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_prepare_in_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0][0] == results[1][0] and results[0][1] == results[1][1]
    assert not list(tmp_path.glob(".partial-*"))
    again = prepare(ecgzoo.get_dataset("synthetic", records=40, seconds=4.0), Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert again.from_cache and float(np.asarray(again.signals).sum()) == results[0][1]


def test_interrupted_build_leaves_no_entry_and_stale_partials_are_cleaned(tmp_path, monkeypatch):
    from ecgzoo.data.prepared import cache_key

    data = _data(6)
    original = type(data).load

    def dies_on_the_fourth(self, rid):
        if rid == "S00003":
            raise KeyboardInterrupt
        return original(self, rid)

    monkeypatch.setattr(type(data), "load", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(type(data), "load", original)
    # a run killed outright (no cleanup) leaves a partial folder under a dead pid: never used, removed later
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    key = cache_key(data, Pipeline(STEPS), data.record_ids())
    stale = tmp_path / f".partial-{key}-{dead.pid}-deadbeef"
    stale.mkdir()
    (stale / "signals.npy").write_bytes(b"garbage")
    prep = prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert not prep.from_cache and not stale.exists() and prep.signals.shape == (6, 1, 1500)


def test_cached_build_does_not_hold_the_array_in_memory(tmp_path):
    import tracemalloc

    data = ecgzoo.get_dataset("synthetic", records=60, seconds=10.0)
    steps = [{"name": "pad-crop", "seconds": 60.0}]  # 60 x 18,000 float32 = 4.3 MB on disk
    tracemalloc.start()
    prep = prepare(data, Pipeline(steps), cache_dir=tmp_path, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert prep.signals.nbytes == 60 * 18000 * 4
    assert peak < 0.5 * prep.signals.nbytes, f"peak traced allocation {peak} bytes"


def test_torch_dataset_pickles_without_the_cached_signals(tmp_path):
    import pickle

    prep = prepare(_data(6), Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    ds = prep.torch_dataset([2, 3])
    blob = pickle.dumps(ds)
    assert len(blob) < prep.signals.nbytes
    x, y, _ = pickle.loads(blob)[1]
    np.testing.assert_array_equal(x.numpy(), prep.signals[3])
    assert y == 0  # S00003 is N


def test_workers_give_the_same_arrays(tmp_path):
    data = _data(12)
    one = prepare(data, Pipeline(STEPS), progress=False)
    two = prepare(data, Pipeline(STEPS), progress=False, workers=2)
    np.testing.assert_array_equal(one.signals, two.signals)
    assert one.record_ids == two.record_ids and one.labels.tolist() == two.labels.tolist()
