"""Every registered model, found in the registry (not a hand-written list), through the conformance kit and a one-epoch
training on the synthetic set (the reference trainer, its best checkpoint rebuilt) at its tiny options
(tests/tiny_models.py): a new model plugin is tested from the moment it is registered, and one that cannot run a tiny
configuration fails saying so."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import MAX_PARAMETERS, registered_models, tiny_options

import ecgzoo
from ecgzoo.models.checkpoint import model_from_checkpoint
from ecgzoo.models.model_facts import parameter_count
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


@pytest.fixture(scope="module")
def synthetic():
    """12 synthetic records of 2 s, z-scored: the training (8) and validation (4) sets of the one-epoch runs, and the task."""
    from ecgzoo.data.pipeline import Pipeline
    from ecgzoo.data.prepared import prepare
    from ecgzoo.data.splits import stratified_split

    data = ecgzoo.get_dataset("synthetic", records=12, seconds=SECONDS, fs=FS)
    prep = prepare(data, Pipeline([{"name": "zscore"}, {"name": "pad-crop", "seconds": SECONDS}]), progress=False)
    train, val = stratified_split(prep.labels, 0.34, seed=0)
    return prep.torch_dataset(train), prep.torch_dataset(val), ecgzoo.TrainingTask.single_label(list(prep.classes))


@pytest.mark.parametrize("name", MODELS)
def test_every_registered_model_trains_one_epoch_on_the_synthetic_set(name, synthetic, tmp_path):
    train, val, task = synthetic
    torch.manual_seed(0)
    model = ecgzoo.create_model(name, num_classes=len(task.classes), **tiny_options(name))
    trainer = ecgzoo.create_trainer("trainer", epochs=1, batch_size=4, progress=False)
    result = trainer.fit(model, train, val, task, ecgzoo.FitContext(device="cpu", seed=0, checkpoint_dir=tmp_path))
    assert [e.epoch for e in result.epochs] == [1] and result.best_epoch == 1
    assert math.isfinite(result.epochs[0].train_loss) and math.isfinite(result.epochs[0].val_loss)
    assert task.selection_metric in result.epochs[0].metrics
    rebuilt = model_from_checkpoint(tmp_path / "best.safetensors")  # the trainer's best checkpoint rebuilds the model it trained
    x = torch.stack([val[i][0] for i in range(2)])
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model.eval()(x))
