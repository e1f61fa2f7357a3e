"""Reference trainer: learns, selects the best epoch, resumes bit-exactly after SIGKILL / Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import toy_plugins
from torch import nn

import ecgzoo
from ecgzoo.models.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint

CLASSES = ["N", "A", "O"]
TESTS = Path(__file__).resolve().parent
TIMING = ("seconds", "records_per_s")


class DropoutToy(toy_plugins.ToyModel):
    """The toy CAM model with dropout, so that training consumes the torch generator."""

    def __init__(self, config: toy_plugins.ToyConfig):
        super().__init__(config)
        self.drop = nn.Dropout(0.3)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.relu(self.conv(x)))


@ecgzoo.hookimpl
def ecgzoo_models():
    return [ecgzoo.PluginSpec("toy-dropout", DropoutToy, toy_plugins.ToyConfig, summary="toy with dropout")]


class ToyData(torch.utils.data.Dataset):
    """Class c is a sine riding on a baseline of c - 1 plus noise: learnable in a few epochs by the toy model."""

    def __init__(self, n: int, seed: int, delay: float = 0.0, length: int = 64):
        rng = np.random.default_rng(seed)
        self.labels = np.arange(n) % 3
        rng.shuffle(self.labels)
        t = np.linspace(0, 1, length, dtype=np.float32)
        self.x = np.stack([0.5 * np.sin(2 * np.pi * 3 * t) + (c - 1.0) + 0.3 * rng.standard_normal(length) for c in self.labels])
        self.x = self.x.astype(np.float32)[:, None, :]
        self.delay = delay

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        if self.delay:
            time.sleep(self.delay)
        return torch.from_numpy(self.x[i]), int(self.labels[i]), self.x.shape[-1]


def register() -> None:
    ecgzoo.register_plugin(toy_plugins)
    ecgzoo.register_plugin(sys.modules[__name__], "trainer-test-plugins")


def _fit(tmp: Path, epochs: int = 3, model: str = "toy", **options):
    register()
    torch.manual_seed(0)
    net = ecgzoo.create_model(model, num_classes=3, width=4)
    options = {"lr": 0.02, **options}
    trainer = ecgzoo.create_trainer("trainer", epochs=epochs, batch_size=5, progress=False, device="cpu", **options)
    history = trainer.train_and_checkpoint(net, ToyData(30, seed=1), ToyData(15, seed=2), CLASSES, tmp)
    return net, history


def test_trainer_learns_keeps_best_weights_and_logs_every_epoch(tmp_path):
    net, history = _fit(tmp_path, epochs=4, lr=0.05)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert max(h["val_challenge_f1"] for h in history) > 0.5  # 0.22 when everything is called N
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == history
    best = max(history, key=lambda h: h["val_challenge_f1"])  # first of equals wins: strict improvement
    assert [h["epoch"] for h in history if h["best"]][-1] == best["epoch"]
    state, meta = load_checkpoint(tmp_path / "best.safetensors")
    assert meta["epoch"] == best["epoch"] and meta["classes"] == CLASSES
    assert meta["metrics"]["challenge_f1"] == pytest.approx(best["val_challenge_f1"])
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items()), "fit must leave the best weights loaded"
    rebuilt = model_from_checkpoint(tmp_path / "best.safetensors")
    x = torch.from_numpy(ToyData(4, seed=5).x)
    net.eval()
    assert torch.equal(rebuilt(x), net(x))
    _, last = load_checkpoint(tmp_path / "last.safetensors")
    assert last["finished"] and last["epoch"] == 4 and len(last["history"]) == 4


@pytest.mark.parametrize("weighting", ["inverse-frequency", "none"])
def test_loss_is_weighted_by_inverse_training_class_frequency(tmp_path, weighting):
    from ecgzoo.data.splits import class_weights

    full = ToyData(30, seed=1)
    # unbalanced training split: all of class 0, half of class 1, a fifth of class 2
    keep = [i for i, c in enumerate(full.labels) if c == 0 or (c == 1 and i % 2) or (c == 2 and i % 5 == 0)]
    train = torch.utils.data.Subset(full, keep)
    val = ToyData(15, seed=2)
    register()
    torch.manual_seed(0)
    net = ecgzoo.create_model("toy", num_classes=3, width=4)
    trainer = ecgzoo.create_trainer("trainer", epochs=1, lr=1e-12, progress=False, device="cpu", class_weighting=weighting)
    history = trainer.train_and_checkpoint(net, train, val, CLASSES, tmp_path)  # lr 1e-12: weights stay put to ~1e-11
    w = class_weights(full.labels[keep], 3) if weighting == "inverse-frequency" else np.ones(3)
    assert len(set(np.round(w, 6))) == (3 if weighting == "inverse-frequency" else 1)
    net.eval()
    with torch.no_grad():
        per_record = torch.nn.functional.cross_entropy(net(torch.from_numpy(val.x)), torch.from_numpy(val.labels), reduction="none")
    expected = float((per_record * torch.tensor(w, dtype=torch.float32)[val.labels]).mean())
    assert history[0]["val_loss"] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_and_lr_schedule(tmp_path):
    # a learning rate too small to change any prediction: no epoch beats the first
    _, history = _fit(tmp_path, epochs=6, lr=1e-12, patience=2, lr_schedule="cosine")
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["best"] for h in history] == [True, False, False]
    expected = [1e-12 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(3)]
    assert [h["lr"] for h in history] == pytest.approx(expected)


def test_fp16_on_cpu_is_refused_and_bf16_trains(tmp_path):
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        _fit(tmp_path / "fp16", epochs=1, precision="fp16")
    _, history = _fit(tmp_path / "bf16", epochs=1, precision="bf16")
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])


def test_resuming_another_training_is_a_clear_error_and_finished_run_is_not_redone(tmp_path):
    _, history = _fit(tmp_path, epochs=1)
    again_net, again = _fit(tmp_path, epochs=1)  # same call: nothing left to do
    assert again == history
    best, _ = load_checkpoint(tmp_path / "best.safetensors")
    assert all(torch.equal(best[k], v) for k, v in again_net.state_dict().items())
    with pytest.raises(CheckpointError, match=r"last.safetensors belongs to another training.*batch_size.*resume=false"):
        register()
        net = ecgzoo.create_model("toy", num_classes=3, width=4)
        ecgzoo.create_trainer("trainer", epochs=2, batch_size=6, progress=False, device="cpu").train_and_checkpoint(
            net, ToyData(30, seed=1), ToyData(15, seed=2), CLASSES, tmp_path
        )


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    import ecgzoo
    from ecgzoo.models.checkpoint import save_checkpoint
    import test_trainer as tt

    out, delay, progress = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
    tt.register()
    torch.manual_seed(0)
    net = ecgzoo.create_model("toy-dropout", num_classes=3, width=4)
    # the cpu preset's levers too (crops, augmentation, AdamW, per-batch warm-up cosine, weight average):
    # every random draw and every piece of state they add must survive the kill
    trainer = ecgzoo.create_trainer("trainer", epochs=3, batch_size=4, lr=0.02, save_every_batches=1,
                                    progress=progress, device="cpu", seed=3, optimizer="adamw", weight_decay=0.01,
                                    lr_schedule="warmup-cosine", warmup_epochs=0.5, label_smoothing=0.1, ema_decay=0.9,
                                    crop_samples=48, augment_scale=(0.8, 1.2), augment_flip=True, augment_noise=0.01)
    history = trainer.train_and_checkpoint(net, tt.ToyData(24, seed=1, delay=delay), tt.ToyData(9, seed=2), tt.CLASSES, out / "ckpt")
    save_checkpoint(out / "final.safetensors", net, {{"history": history}})
    """
)


def _script(tmp: Path) -> Path:
    path = tmp / "train_toy.py"
    path.write_text(SCRIPT.format(tests=str(TESTS)))
    return path


def _run(script: Path, out: Path, progress: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(script), str(out), "0", "1" if progress else "0"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def _interrupt(script: Path, out: Path, sig: int) -> tuple[int, str]:
    """Start a slow training, send `sig` once a mid-epoch state of epoch 2 exists; its exit status and stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(out), "0.02", "0"], stderr=subprocess.PIPE, text=True, env=env)
    last = out / "ckpt" / "last.safetensors"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file():
            meta = load_checkpoint(last)[1]
            if meta["epoch"] == 1 and meta["batch"] >= 2:
                proc.send_signal(sig)
                break
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=60)  # reads stderr to the end and closes the pipe
    return proc.returncode, stderr


def _final(out: Path):
    state, meta = load_checkpoint(out / "final.safetensors")
    last, last_meta = load_checkpoint(out / "ckpt" / "last.safetensors")
    history = [{k: v for k, v in h.items() if k not in TIMING} for h in meta["history"]]
    return state, last, history, last_meta["optimizer"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    done = _run(_script(out), out)
    assert done.returncode == 0, done.stderr
    return _final(out)


def _assert_same(a, b) -> None:
    (best_a, last_a, hist_a, opt_a), (best_b, last_b, hist_b, opt_b) = a, b
    assert hist_a == hist_b
    for name in best_a:
        assert torch.equal(best_a[name], best_b[name]), f"best weights differ in {name}"
        assert torch.equal(last_a[name], last_b[name]), f"last weights differ in {name}"
    for idx, st in opt_a["state"].items():
        assert all(torch.equal(v, opt_b["state"][idx][k]) for k, v in st.items()), "Adam moments differ"


def test_sigkill_mid_epoch_then_same_call_gives_identical_weights(tmp_path, uninterrupted):
    script = _script(tmp_path)
    returncode, _ = _interrupt(script, tmp_path, signal.SIGKILL)
    assert returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not (tmp_path / "final.safetensors").exists()
    meta = load_checkpoint(tmp_path / "ckpt" / "last.safetensors")[1]
    assert not meta["finished"] and (meta["epoch"], meta["batch"]) >= (1, 2)
    resumed = _run(script, tmp_path, progress=True)
    assert resumed.returncode == 0, resumed.stderr
    # it continued where the killed run stopped (epoch 2, mid-epoch) instead of starting over
    assert f"resuming from {tmp_path / 'ckpt' / 'last.safetensors'} (epoch 2, batch {meta['batch']})" in resumed.stderr
    assert "epoch 3/3" in resumed.stderr and "rec/s" in resumed.stderr  # the progress bar
    # and the whole run's line after each epoch: epoch k of n, elapsed, time left
    assert "ecgzoo: epoch 2 of 3 done, elapsed " in resumed.stderr and " left" in resumed.stderr
    assert "ecgzoo: epoch 3 of 3 done, elapsed " in resumed.stderr
    final = _final(tmp_path)
    _assert_same(final, uninterrupted)
    assert load_checkpoint(tmp_path / "final.safetensors")[1]["history"][0] == meta["history"][0]  # epoch 1 not redone
    assert len((tmp_path / "ckpt" / "metrics.jsonl").read_text().splitlines()) == 3


def test_ctrl_c_saves_then_resumes_to_the_same_weights(tmp_path, uninterrupted):
    script = _script(tmp_path)
    returncode, stderr = _interrupt(script, tmp_path, signal.SIGINT)
    assert returncode != 0 and "KeyboardInterrupt" in stderr, stderr
    # the trainer says what it saved; how to continue is the caller's to say (`ecgzoo run` prints the exact command)
    assert "training state saved to" in stderr and "run the same command again" not in stderr
    meta = load_checkpoint(tmp_path / "ckpt" / "last.safetensors")[1]
    assert not meta["finished"] and (meta["epoch"], meta["batch"]) >= (1, 2)
    resumed = _run(script, tmp_path, progress=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"(epoch 2, batch {meta['batch']})" in resumed.stderr
    _assert_same(_final(tmp_path), uninterrupted)
