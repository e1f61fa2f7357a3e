"""Reference trainer `trainer`: the paper's recipe, resumable to the bit, data-parallel when asked.

Defaults follow REFERENCE.md section 4: Adam at a constant 1e-3, batch size 10, 100 epochs,
cross-entropy weighted by inverse class frequency of the training split (Keras-style: each
record's loss times its class weight, averaged over the batch), model selection by the
validation challenge F1 (mean F1 of N, A, O). Options add early stopping, cosine/step LR
schedules, gradient clipping, bf16/fp16 autocast on CUDA and DistributedDataParallel
(see `ecgzoo.training.distributed`).

Files in `checkpoint_dir` (rank 0 only), this trainer's own state for resuming; the run's
`best.safetensors` and `metrics.jsonl` are written once, by the runner, from the returned `FitResult`:
  best_epoch.safetensors  weights of the best validation epoch (+ its metrics); `ecgzoo.models.checkpoint.model_from_checkpoint`
  last.safetensors        full training state (weights, optimizer, scheduler, RNG of every rank, position in the
                          epoch, history): written after every epoch and every `save_every_batches` batches
  epochs.jsonl            one JSON line per finished epoch, flushed and fsynced as it is written

Calling `fit` again with the same arguments continues from `last.safetensors` (after SIGKILL, a
crash or Ctrl-C); with the same seed the result is bit-for-bit that of an uninterrupted run.
Ctrl-C finishes the current batch, saves, then raises KeyboardInterrupt; a second Ctrl-C aborts.

Modules: the loop (`trainer_loop`), its options (`trainer_config`), the loss and validation
(`trainer_scoring`), the resumable state (`trainer_resume`); the levers are callbacks
(`ecgzoo.Callback`, listed in `trainer_callbacks`): the schedule (`trainer_schedule`), the weight
average (`trainer_ema`), early stopping and Ctrl-C (`trainer_stopping`), saving the state
(`trainer_last_state`), progress (`trainer_progress`); the `callbacks` option adds others.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import torch

import ecgzoo
from ecgzoo.plugin_api import cudnn_flags_restored
from ecgzoo_plugins import trainer_resume
from ecgzoo_plugins.trainer_config import TrainerConfig
from ecgzoo_plugins.trainer_loop import FitLoop

BEST, LAST, METRICS = trainer_resume.BEST, trainer_resume.LAST, trainer_resume.METRICS


class ReferenceTrainer(ecgzoo.Trainer):
    """The paper's training recipe with resumable, optionally distributed, training."""

    scored_classes: tuple[str, ...] | None = None  #: what challenge_f1 averages (the task's); None: 0.1's default

    def __init__(self, config: TrainerConfig) -> None:
        self.config = config

    def fit(self, model: ecgzoo.EcgModel, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
            task: ecgzoo.TrainingTask, ctx: ecgzoo.FitContext) -> ecgzoo.FitResult:
        """`ecgzoo.Trainer.fit`: the run's device and seed apply unless this trainer's own options set them;
        the resumable state lives in `ctx.checkpoint_dir` (a private temporary folder when None)."""
        update: dict[str, Any] = {}
        if self.config.device == "auto":
            update["device"] = ctx.device
        if self.config.seed is None:
            update["seed"] = ctx.seed
        if self.config.precision == "fp32" and ctx.precision != "fp32":
            update["precision"] = ctx.precision
        run = ReferenceTrainer(self.config.model_copy(update=update))
        run.scored_classes = getattr(task, "scored_classes", None)
        with contextlib.ExitStack() as stack:
            folder = ctx.checkpoint_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecgzoo-fit-")))
            history = run.train_and_checkpoint(model, train, val, list(task.classes), folder, task)
        return _fit_result(model, history)

    @cudnn_flags_restored()  # the deterministic cuDNN flags the loop sets hold for this call only
    def train_and_checkpoint(self, model: ecgzoo.EcgModel, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
                             classes: list[str], checkpoint_dir: Path, task: ecgzoo.Task | None = None) -> list[dict[str, Any]]:
        """Train with this trainer's own files in `checkpoint_dir` (best_epoch, last, epochs.jsonl); resumes from
        `last.safetensors`; returns the history rows and leaves the best weights in `model`."""
        if self.config.seed is None:
            self.config = self.config.model_copy(update={"seed": 0})
        multi = task is not None and task.multi  # multi-label: sigmoid + BCE (bce_loss, pos_weights)
        loop = FitLoop(self.config, model, train, val, list(classes), Path(checkpoint_dir), multi, self.scored_classes)
        loop.run(train, val)
        if loop.best_state is not None:
            model.load_state_dict(loop.best_state)
        return list(loop.history)

    def _fingerprint(self, model: ecgzoo.EcgModel, classes: list[str], n_train: int, n_val: int, world: int) -> dict[str, Any]:
        """What a saved state must share with this training to continue it (`trainer_resume.fingerprint`)."""
        return trainer_resume.fingerprint(self.config, model, classes, n_train, n_val, world)

    def _check_resumable(self, meta: dict[str, Any], fingerprint: dict[str, Any], path: Path) -> None:
        """Refuse a state of another training (`trainer_resume.check_resumable`)."""
        trainer_resume.check_resumable(meta, fingerprint, path)


_RECORD_KEYS = {"epoch", "train_loss", "val_loss", "best", "seconds"}


def _fit_result(model: ecgzoo.EcgModel, history: list[dict[str, Any]]) -> ecgzoo.FitResult:
    """The contract's result from this trainer's history rows; the best weights are those `model` holds now."""
    epochs = []
    for row in history:
        metrics = {k[4:]: float(v) for k, v in row.items() if k.startswith("val_") and k != "val_loss" and isinstance(v, (int, float))}
        train_metrics = {k[6:]: float(v) for k, v in row.items()
                         if k.startswith("train_") and k != "train_loss" and isinstance(v, (int, float))}
        extra = {k: v for k, v in row.items() if k not in _RECORD_KEYS and not k.startswith(("val_", "train_"))}
        extra.update({k: v for k, v in row.items() if k.startswith("val_") and not isinstance(v, (int, float))})
        epochs.append(ecgzoo.EpochRecord(epoch=int(row["epoch"]), train_loss=float(row["train_loss"]), val_loss=float(row["val_loss"]),
                                         metrics=metrics, train_metrics=train_metrics, best=bool(row["best"]),
                                         seconds=float(row["seconds"]), extra=extra))
    best = max((e.epoch for e in epochs if e.best), default=epochs[-1].epoch if epochs else 0)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return ecgzoo.FitResult(epochs=epochs, best_state=state, best_epoch=best)


@ecgzoo.hookimpl
def ecgzoo_trainers() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "trainer", ReferenceTrainer, TrainerConfig,
            summary="paper recipe (Adam 1e-3, batch 10, 100 epochs, weighted CE, best val challenge F1); resumable, DDP",
        )
    ]
