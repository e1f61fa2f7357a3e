"""The Trainer contract: a third-party trainer package runs through `ecgzoo run` end to end (the runner
saves its best checkpoint and history; predict then works), and the conformance kit checks trainers."""

from __future__ import annotations

import json

import pytest
import torch
from run_helpers import cli, register_toy, tiny_run_args
from thirdparty import installed, pyproject

import ecgzoo
from ecgzoo.testing import check_trainer_plugin

THIRD_PARTY_TRAINER = {
    "pyproject.toml": pyproject("ecgzoo-thirdparty-sgd", "ecgzoo_thirdparty_sgd", "sgd"),
    "ecgzoo_thirdparty_sgd.py": '''
        """Plain SGD in a few lines, written against ecgzoo's public interface only."""
        import time
        import pydantic
        import torch
        import torch.nn.functional as F
        import ecgzoo

        class SgdConfig(ecgzoo.PluginConfig):
            epochs: int = pydantic.Field(2, ge=1, description="passes over the training split")
            lr: float = pydantic.Field(0.05, gt=0, description="learning rate")

        class SgdTrainer(ecgzoo.Trainer):
            def __init__(self, config):
                self.config = config

            def _loss(self, model, data, train, opt=None):
                total, n, right = 0.0, 0, 0
                for x, y, vl in torch.utils.data.DataLoader(data, batch_size=8, shuffle=train):
                    logits = model(x, valid_length=vl)
                    loss = F.cross_entropy(logits, y)
                    if train:
                        opt.zero_grad(); loss.backward(); opt.step()
                    total, n, right = total + float(loss.detach()) * len(y), n + len(y), right + int((logits.argmax(1) == y).sum())
                return total / n, right / n

            def fit(self, model, train, val, task, ctx):
                torch.manual_seed(ctx.seed)
                opt = torch.optim.SGD(model.parameters(), lr=self.config.lr)
                records, best, best_state = [], None, None
                for epoch in range(1, self.config.epochs + 1):
                    t0 = time.perf_counter()
                    model.train()
                    train_loss, _ = self._loss(model, train, True, opt)
                    model.eval()
                    with torch.no_grad():
                        val_loss, acc = self._loss(model, val, False)
                    better = best is None or acc > best
                    if better:
                        best, best_state = acc, {k: v.detach().clone() for k, v in model.state_dict().items()}
                    records.append(ecgzoo.EpochRecord(epoch, train_loss, val_loss, {task.selection_metric: acc, "accuracy": acc},
                                                      best=better, seconds=time.perf_counter() - t0))
                best_epoch = max(r.epoch for r in records if r.best)
                return ecgzoo.FitResult(records, best_state, best_epoch)

        @ecgzoo.hookimpl
        def ecgzoo_trainers():
            return [ecgzoo.PluginSpec("sgd", SgdTrainer, SgdConfig, summary="plain SGD (third-party test package)")]
    ''',
}


def test_third_party_trainer_runs_through_ecgzoo_run_and_predict(tmp_path):
    with installed(tmp_path / "pkg", "ecgzoo-thirdparty-sgd", THIRD_PARTY_TRAINER):
        register_toy()
        args = tiny_run_args(tmp_path / "runs", "sgd-run", "trainer_plugin=sgd", "trainer={epochs=2, lr=0.05}")
        code, out, err = cli(*args)
        assert code == 0, err
        run = tmp_path / "runs" / "sgd-run"
        history = json.loads((run / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2] and "val_challenge_f1" in history[0]
        lines = (run / "checkpoints" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["best_epoch"] == max(h["epoch"] for h in history if h["best"])
        assert (run / "report.md").is_file() and (run / "checkpoints" / "best.safetensors").is_file()
        from ecgzoo.serving.loaded_run import load_run

        loaded = load_run(run)  # the runner's checkpoint: predict/evaluate/explain read it like any other
        assert loaded.classes == json.loads((run / "run.json").read_text())["classes"]
        with torch.no_grad():
            assert loaded.model(torch.zeros(1, 1, loaded.input_samples)).shape == (1, len(loaded.classes))


def test_reference_trainer_honours_the_contract(tmp_path):
    register_toy()
    torch.manual_seed(0)
    model = ecgzoo.create_model("toy", num_classes=3, width=4)
    result = check_trainer_plugin("trainer", model, tmp_path / "ckpt", epochs=2, batch_size=6, lr=0.05, progress=False)
    assert [e.epoch for e in result.epochs] == [1, 2] and "challenge_f1" in result.epochs[0].metrics
    assert (tmp_path / "ckpt" / "last.safetensors").is_file()  # its own resumable state, in the folder it was given


def test_a_trainer_that_breaks_the_contract_is_named():
    class Broken(ecgzoo.Trainer):
        def __init__(self, config):
            self.config = config

        def fit(self, model, train, val, task, ctx):
            return [{"epoch": 1}]  # the 0.1 history list, not a FitResult

    class Plugin:
        @staticmethod
        @ecgzoo.hookimpl
        def ecgzoo_trainers():
            return [ecgzoo.PluginSpec("broken-trainer", Broken, ecgzoo.PluginConfig)]

    register_toy()
    ecgzoo.register_plugin(Plugin, "broken-trainer-plugin")
    with pytest.raises(AssertionError, match="trainer 'broken-trainer': fit returned list, not an ecgzoo.FitResult"):
        check_trainer_plugin("broken-trainer", ecgzoo.create_model("toy", num_classes=2, width=2))


def test_fit_result_and_epoch_record_refuse_inconsistent_values():
    rec = ecgzoo.EpochRecord(1, 0.5, 0.6, {"challenge_f1": 0.7}, train_metrics={"accuracy": 0.8}, best=True, seconds=1.0,
                             extra={"lr": 0.001})
    assert rec.to_json() == {"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "train_accuracy": 0.8, "val_challenge_f1": 0.7,
                             "best": True, "seconds": 1.0, "lr": 0.001}
    with pytest.raises(ValueError, match="epochs are numbered from 1"):
        ecgzoo.EpochRecord(0, 0.5, 0.6, {})
    with pytest.raises(ValueError, match="best_epoch 3 is not one of the recorded epochs"):
        ecgzoo.FitResult([rec], {}, best_epoch=3)
