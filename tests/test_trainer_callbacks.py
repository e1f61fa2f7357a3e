"""The reference trainer's callbacks: a third-party callback named in the trainer's config sees every hook in the
documented order, adds to the history, and its state survives an interruption and resume (bit-exact result)."""

from __future__ import annotations

import json
from pathlib import Path

import callback_recorder
import pytest
import torch
from run_helpers import cli, tiny_run_args
from test_trainer import CLASSES, TIMING, ToyData, register

import ecgzoo
from ecgzoo.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

RECORDER = "callback_recorder:HookRecorder"
#: the levers the cpu preset uses, each one a callback with state of its own
LEVERS = {"lr_schedule": "warmup-cosine", "ema_decay": 0.9, "save_every_batches": 1, "crop_samples": 48, "augment_flip": True}


def _fit(folder: Path, callbacks: list, **options):
    """Two epochs (unless `options` say otherwise) of two batches (10 training records, batch 5) of the toy model with dropout."""
    register()
    torch.manual_seed(0)
    net = ecgzoo.create_model("toy-dropout", num_classes=3, width=4)
    options = {"epochs": 2, "batch_size": 5, "lr": 0.02, "progress": False, "device": "cpu", "seed": 1, **LEVERS, **options}
    trainer = ecgzoo.create_trainer("trainer", callbacks=callbacks, **options)
    history = trainer.train_and_checkpoint(net, ToyData(10, seed=1), ToyData(6, seed=2), CLASSES, folder)
    return net, history


def _epoch(e: int) -> list[str]:
    """The hooks of epoch e (0-based) of two batches, each with the loop's position (epochs done.batches done)."""
    return [f"on_epoch_start {e}.0", f"on_batch_end {e}.1", f"on_batch_end {e}.2", f"on_validation_start {e}.2",
            f"on_validation_end {e}.2", f"on_epoch_end {e + 1}.0"]


def test_a_callback_given_by_import_path_sees_every_hook_in_order_and_is_saved(tmp_path):
    record = tmp_path / "hooks.json"
    _, history = _fit(tmp_path / "ckpt", [{"name": RECORDER, "options": {"path": str(record)}}])
    recorded = json.loads(record.read_text())
    assert recorded["calls"] == ["on_fit_start 0.0", *_epoch(0), *_epoch(1), "on_fit_end 2.0"]
    assert [h["recorded_batches"] for h in history] == [2, 4]  # a key the callback added to each row
    lines = [json.loads(line) for line in (tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()]
    assert [line["recorded_batches"] for line in lines] == [2, 4]
    _, meta = load_checkpoint(tmp_path / "ckpt" / "last.safetensors")
    assert list(meta["callbacks"]) == ["lr-schedule", "weight-average", "early-stopping", RECORDER, "last-state", "progress",
                                       "ctrl-c"]
    assert meta["callbacks"][RECORDER] == {"calls": recorded["calls"][:-1], "batches": 4}  # saved before on_fit_end
    assert meta["callbacks"]["early-stopping"] == {"bad_epochs": [h["best"] for h in history][::-1].index(True), "stopped": False}


def test_a_callbacks_state_survives_an_interruption_and_the_resumed_run_is_bit_exact(tmp_path):
    register()
    ecgzoo.register_plugin(callback_recorder, "callback-recorder")  # now also known by its registered name

    def spec(name: str, stop: list[int] | None) -> list[dict]:
        return [{"name": "hook-recorder", "options": {"path": str(tmp_path / f"{name}.json"), "interrupt_at": stop}}]

    net_a, history_a = _fit(tmp_path / "a", spec("a", None))
    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", spec("b", [1, 1]))  # asks the loop to stop after the first batch of the second epoch
    first = json.loads((tmp_path / "b.json").read_text())["calls"]
    assert first == ["on_fit_start 0.0", *_epoch(0), "on_epoch_start 1.0", "on_batch_end 1.1", "on_interrupt 1.1",
                     "on_fit_end 1.1"]
    _, meta = load_checkpoint(tmp_path / "b" / "last.safetensors")
    assert (meta["epoch"], meta["batch"], meta["finished"]) == (1, 1, False)
    assert meta["callbacks"]["hook-recorder"] == {"calls": first[:-1], "batches": 3}
    net_b, history_b = _fit(tmp_path / "b", spec("b", [1, 1]))
    resumed = json.loads((tmp_path / "b.json").read_text())
    # the saved calls, then this run's: on_fit_start before the state is loaded (the loop still at 0.0), then the rest
    assert resumed["calls"] == [*first[:-1], "on_fit_start 0.0", "load_state_dict", "on_epoch_start 1.1", "on_batch_end 1.2",
                                "on_validation_start 1.2", "on_validation_end 1.2", "on_epoch_end 2.0", "on_fit_end 2.0"]
    assert resumed["batches"] == 4 == json.loads((tmp_path / "a.json").read_text())["batches"]
    strip = [[{k: v for k, v in h.items() if k not in TIMING} for h in hist] for hist in (history_a, history_b)]
    assert strip[0] == strip[1] and [h["recorded_batches"] for h in history_b] == [2, 4]
    assert all(torch.equal(v, net_b.state_dict()[k]) for k, v in net_a.state_dict().items())
    last_a, last_b = (load_checkpoint(tmp_path / d / "last.safetensors")[1]["callbacks"] for d in "ab")
    assert all(torch.equal(v, last_b["weight-average"]["weights"][k]) for k, v in last_a["weight-average"]["weights"].items())
    assert last_a["lr-schedule"] == last_b["lr-schedule"]


def test_a_training_state_of_the_earlier_layout_is_refused_clearly(tmp_path):
    _fit(tmp_path, [], epochs=1)
    path = tmp_path / "last.safetensors"
    state, meta = load_checkpoint(path)
    old = {k: v for k, v in meta.items() if k not in ("state_format", "callbacks")}  # 0.1: no callbacks' states
    model = ecgzoo.create_model("toy-dropout", num_classes=3, width=4)
    model.load_state_dict(state)
    save_checkpoint(path, model, old)
    with pytest.raises(CheckpointError, match=r"last.safetensors: a training state in layout 1, written by another version of "
                                              r"the trainer; this version continues layout 2 only \(remove the file or set "
                                              r"resume=false"):
        _fit(tmp_path, [], epochs=2)
    _, history = _fit(tmp_path, [], epochs=1, resume=False)  # and resume=false starts over
    assert [h["epoch"] for h in history] == [1]


@pytest.mark.parametrize("name, options, message", [
    ("no_such_module_xyz:Thing", {}, r"callbacks: 'no_such_module_xyz:Thing': module 'no_such_module_xyz' cannot be imported"),
    ("callback_recorder:Missing", {}, r"module 'callback_recorder' has no class 'Missing'"),
    ("callback_recorder:RecorderConfig", {"path": "x"}, r"gives a RecorderConfig, not a subclass of ecgzoo.Callback"),
    (RECORDER, {"path": "x", "colour": "red"}, r"cannot be made with the options \{'path': 'x', 'colour': 'red'\} \(.*colour"),
    ("no-such-callback", {}, r"trainer option callbacks: no callback plugin named 'no-such-callback'\. Available: \(none\)\. An "
                            r"import path package.module:Class works too\."),
])
def test_a_callback_that_cannot_be_made_is_a_clear_error(tmp_path, name, options, message):
    with pytest.raises(ecgzoo.PluginError if ":" not in name else ecgzoo.ConfigError, match=message):
        _fit(tmp_path, [{"name": name, "options": options}], epochs=1)


def test_ecgzoo_run_takes_a_registered_callback_from_the_trainer_table(tmp_path):
    ecgzoo.register_plugin(callback_recorder, "callback-recorder")
    code, out, _ = cli("list", "callback")
    assert code == 0 and "hook-recorder" in out and "records the training hooks" in out
    record = tmp_path / "hooks.json"
    register()
    quick = ["estimate=false", "report.examples_per_class=0"]
    args = tiny_run_args(tmp_path / "runs", "cb", *quick,
                         f'trainer.callbacks=["{RECORDER}", {{name = "hook-recorder", options = {{path = "{record}"}}}}]')
    code, _, err = cli(*args)
    assert code != 0 and "cannot be made with the options {}" in err and "path" in err  # the bare import path lacks its `path` option
    args = tiny_run_args(tmp_path / "runs", "cb2", *quick,
                         f'trainer.callbacks=[{{name = "hook-recorder", options = {{path = "{record}"}}}}]')
    code, _, err = cli(*args)
    assert code == 0, err
    calls = json.loads(record.read_text())["calls"]
    assert calls[0] == "on_fit_start 0.0" and calls[-1] == "on_fit_end 2.0" and calls.count("on_epoch_end 2.0") == 1
    history = json.loads((tmp_path / "runs" / "cb2" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
