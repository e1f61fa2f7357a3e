"""Every registered model, found in the registry (not a hand-written list), through the conformance kit and a one-epoch
`ecgzoo.run` on the synthetic set at its tiny options (tests/tiny_models.py): a new model plugin is tested from the
moment it is registered, and one that cannot run a tiny configuration fails saying so."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_models import MAX_PARAMETERS, registered_models, tiny_options

import ecgzoo
from ecgzoo.model_facts import parameter_count
from ecgzoo.run_dir import load_run
from ecgzoo.testing import check_model_plugin

MODELS = registered_models()
SECONDS, FS = 2.0, 300.0


def test_the_registry_lists_the_reference_models():
    assert {"cnnv7", "cnnv7-small", "cnnv7-s8", "cnnv7-s2", "deepecg13", "xresnet1d50", "xresnet1d101", "inception1d"} <= set(MODELS)


def test_a_model_without_tiny_options_fails_naming_itself():
    class Huge(ecgzoo.ModelConfig):
        pass

    class Plugin:
        @staticmethod
        @ecgzoo.hookimpl
        def ecgzoo_models():
            return [ecgzoo.PluginSpec("huge-net", lambda c: None, Huge)]

    ecgzoo.register_plugin(Plugin, "huge-net-plugin")
    with pytest.raises(pytest.fail.Exception, match=r"model 'huge-net' cannot run a tiny configuration: its config Huge has no "
                                                    r"entry in TINY_BY_CONFIG"):
        tiny_options("huge-net")


@pytest.mark.parametrize("name", MODELS)
def test_every_registered_model_passes_the_conformance_kit_at_tiny_widths(name):
    model = check_model_plugin(name, length=int(SECONDS * FS), num_classes=3, **tiny_options(name))
    assert parameter_count(model) <= MAX_PARAMETERS, f"model {name!r}: its tiny options still give {parameter_count(model):,} parameters"


@pytest.mark.parametrize("name", MODELS)
def test_every_registered_model_trains_one_epoch_on_the_synthetic_set(name, tmp_path):
    run = ecgzoo.run(
        name, "synthetic", model=tiny_options(name), dataset={"records": 12, "seconds": SECONDS, "fs": FS},
        preprocessing=[{"name": "zscore"}, {"name": "pad-crop", "seconds": SECONDS}],
        trainer={"epochs": 1, "batch_size": 6, "progress": False}, report={"examples_per_class": 0},
        device="cpu", output_dir=str(tmp_path), name="one-epoch", cache_dir=str(tmp_path / "cache"),
    )
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and math.isfinite(history[0]["train_loss"])
    assert math.isfinite(history[0]["val_loss"]) and (run / "report.md").is_file()
    loaded = load_run(run)  # the run's best checkpoint rebuilds the model it trained
    assert type(loaded.model) is type(ecgzoo.create_model(name, **tiny_options(name)))
    with torch.no_grad():
        assert loaded.model.eval()(torch.zeros(2, 1, int(SECONDS * FS))).shape == (2, len(loaded.classes))
