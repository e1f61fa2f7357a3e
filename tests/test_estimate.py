"""`ecgzoo run` estimates the whole job before training, without changing what the run trains."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from run_helpers import cli, register_toy, tiny_run_args

import ecgzoo
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare
from ecgzoo.models.checkpoint import load_checkpoint, rng_state, seed_everything
from ecgzoo.training import estimate as est
from ecgzoo.training.run_config import resolve_run_config

TINY = ['preprocessing=[{name = "zscore"}, {name = "pad-crop", seconds = 4.0}]']


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


def _job(tmp_path, *assignments: str, records: int = 24):
    from ecgzoo.core.config import parse_assignments

    values = parse_assignments([*TINY, f"dataset.records={records}", "trainer.batch_size=8", "trainer.epochs=2",
                                f"cache_dir={tmp_path / 'cache'}", *assignments])
    config = resolve_run_config("toy", "synthetic", "paper", None, values)
    data = ecgzoo.get_dataset("synthetic", **config.dataset)
    return config, data, Pipeline(config.preprocessing)


def _same_rng(a, b) -> bool:
    return (a["python"] == b["python"] and torch.equal(a["torch"], b["torch"])
            and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a["numpy"], b["numpy"], strict=True)))


def test_the_estimate_leaves_every_random_generator_as_it_was(tmp_path):
    config, data, pipeline = _job(tmp_path)
    seed_everything(7)
    before = rng_state()
    found = est.estimate("toy", data, pipeline, config, "cpu")
    assert found is not None and _same_rng(before, rng_state())
    # without the guard the same work draws numbers (the throwaway model's initial weights)
    ecgzoo.create_model("toy", in_leads=1, num_classes=3)
    assert not _same_rng(before, rng_state())


def test_the_estimate_counts_the_jobs_epochs_batches_and_records(tmp_path):
    config, data, pipeline = _job(tmp_path, "split.test_fraction=0.25", "trainer.epochs=5")
    found = est.estimate("toy", data, pipeline, config, "cpu")
    assert (found.epochs, found.batch_size) == (5, 8)
    assert (found.train_records, found.val_records, found.final_records) == (13, 5, 5 + 6)  # 24: 6 test, 30% of 18 validation
    assert found.train_batches == 2 and found.step_s > 0 and found.val_record_s > 0
    assert found.prepare_s is not None and found.prepare_s > 0  # nothing prepared yet
    expected = found.prepare_s + 5 * (2 * found.step_s + 5 * found.val_record_s) + 11 * found.val_record_s
    assert found.total_s == pytest.approx(expected)
    prepare(data, pipeline, cache_dir=tmp_path / "cache", progress=False)
    assert est.estimate("toy", data, pipeline, config, "cpu").prepare_s is None  # already prepared: said so, not re-costed
    assert "preparation already done" in est.estimate("toy", data, pipeline, config, "cpu").describe()


def test_a_job_beyond_a_few_hours_names_the_preset_that_fits(tmp_path):
    config, data, pipeline = _job(tmp_path, "trainer.epochs=10000000")
    said: list[str] = []
    found = est.announce("toy", "synthetic", data, pipeline, config, "cpu", said.append)
    assert found.total_s > est.LONG_S
    assert said[0].startswith("estimated time of the whole job on this machine (cpu, ")
    assert "10000000 epochs" in said[0]
    assert said[1].startswith("that is beyond a few hours on this machine; the preset that fits: "
                              "`ecgzoo run toy synthetic --preset quick` (about ")


def test_where_no_declared_preset_fits_the_quickest_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(est, "LONG_S", 0.0)  # a machine on which nothing fits
    config, data, pipeline = _job(tmp_path)
    said: list[str] = []
    est.announce("toy", "synthetic", data, pipeline, config, "cpu", said.append)
    assert said[1].startswith("that is beyond a few hours on this machine; the quickest preset declared for it: "
                              "`ecgzoo run toy synthetic --preset quick` (about ")


def test_the_suggested_preset_is_estimated_on_the_users_data(tmp_path, monkeypatch):
    # a dataset option the user set (here the record count; for real data the folder, dataset.path) is kept
    # for the preset the advice estimates: without it the advice built the dataset from its defaults and a run
    # pointed at its data with --set dataset.path=... stopped before training (data not found)
    config, data, pipeline = _job(tmp_path, "trainer.epochs=10000000", records=30)
    seen: list[int] = []
    real = est.estimate

    def spy(model, cand_data, *args):
        seen.append(len(cand_data.record_ids()))
        return real(model, cand_data, *args)

    monkeypatch.setattr(est, "estimate", spy)
    assert est.suggest("toy", "synthetic", data, config, "cpu") is not None
    assert seen == [30]


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_bf16_instructions_is_said_with_the_float32_option(tmp_path, monkeypatch, native):
    # measured on an AVX2-only EPYC: a 2048^2 bf16 matmul at 0.3 GFLOP/s against 57.9 in float32, so the
    # cpu preset's training step took 20 s instead of about 1 s
    monkeypatch.setattr(est, "cpu_has_bf16", lambda: native)
    config, data, pipeline = _job(tmp_path, "trainer.precision=bf16")
    said: list[str] = []
    est.announce("toy", "synthetic", data, pipeline, config, "cpu", said.append)
    warned = [line for line in said if "no bf16 instructions" in line]
    assert warned == ([] if native else [warned[0]])
    assert native or "--set trainer.precision=fp32" in warned[0]
    said.clear()
    config, data, pipeline = _job(tmp_path, "trainer.precision=fp32")
    est.announce("toy", "synthetic", data, pipeline, config, "cpu", said.append)
    assert not any("bf16" in line for line in said)


def test_a_short_job_gets_no_advice(tmp_path):
    config, data, pipeline = _job(tmp_path)
    said: list[str] = []
    est.announce("toy", "synthetic", data, pipeline, config, "cpu", said.append)
    assert len(said) == 1 and "about " in said[0]


def test_registry_presets_declare_what_they_fit_specific_ones_first():
    assert est._candidates("cnnv7", "physionet2017") == [("cnnv7-s8", "cpu"), ("cnnv7", "quick")]
    assert est._candidates("xresnet1d101", "ptbxl") == [("xresnet1d101", "ptbxl-cpu"), ("xresnet1d101", "quick")]
    assert est._candidates("toy", "synthetic") == [("toy", "quick")]


def test_durations_and_the_whole_run_progress_line():
    assert [est.format_duration(s) for s in (0.012, 2.54, 40, 12 * 60, 3 * 3600 + 5 * 60, 700 * 3600)] == [
        "12 ms", "2.5 s", "40 s", "12 min", "3 h 05 min", "29 days (700 h)"]
    assert est.run_progress(3, 30, 300, [90.0, 100.0, 110.0]) == "epoch 3 of 30 done, elapsed 5 min, about 45 min left"
    assert est.run_progress(30, 30, 3000, [100.0]) == "epoch 30 of 30 done, elapsed 50 min"
    assert "at most (early stopping" in est.run_progress(1, 4, 10, [10.0], may_stop_early=True)


def test_a_run_trains_the_same_weights_with_and_without_the_estimate(tmp_path):
    quick = ("report.examples_per_class=0", "trainer.epochs=2")
    code, _, err_on = cli(*tiny_run_args(tmp_path, "on", *quick))
    assert code == 0, err_on
    code, _, err_off = cli(*tiny_run_args(tmp_path, "off", *quick, "estimate=false"))
    assert code == 0, err_off
    assert "estimated time of the whole job on this machine" in err_on
    assert "estimated time" not in err_off
    a, b = (load_checkpoint(tmp_path / name / "checkpoints" / "best.safetensors")[0] for name in ("on", "off"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    timing = {"seconds", "records_per_s"}
    ha, hb = ([{k: v for k, v in row.items() if k not in timing}
               for row in json.loads((tmp_path / name / "history.json").read_text())] for name in ("on", "off"))
    assert ha == hb
