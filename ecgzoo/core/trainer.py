"""Trainer interface: fits a model on prepared tensors; the runner owns checkpoints and history.

Who calls what, when (in the style of pytest's hookspec.py):

* `ecgzoo run` creates the trainer plugin with its validated options (the trainer's own table,
  `trainer.*`), builds a `FitContext` (device, seed, rank and world size, precision, a folder of
  its own) and calls `fit(model, train, val, task, ctx)` once per process: once, or in every
  process of `--nproc N` / torchrun, after the process group is joined.
* `fit` trains `model` in place on `train`, validates on `val` (both `torch.utils.data.Dataset`s of
  `(signal (leads, T) float32, target, valid_length)` items; the target as `task` encodes it) and
  returns a `FitResult`: one `EpochRecord` per finished epoch (losses and a metrics mapping named
  by the task) and the state dict of the best epoch.
* The runner, on rank 0 only, then saves `checkpoints/best.safetensors` from `FitResult.best_state`
  (safetensors + JSON metadata; `ecgzoo predict`/`evaluate`/`explain` read it), writes
  `history.json` and `checkpoints/metrics.jsonl` from the epoch records, and draws the report's
  training curves from them. A trainer therefore needs no knowledge of ecgzoo's file formats.
* `ctx.checkpoint_dir` is the trainer's own folder for resumable state (the reference trainer
  keeps `last.safetensors` there). The same run directory is handed back when an interrupted run
  is repeated (`--name`), so a trainer that saves there can continue where it stopped; one that
  does not simply starts again. Only rank 0 should write there.

Guarantees the runner gives: `ctx.seed` seeds the model's initial weights identically on every
rank before `fit`; `model.num_classes == len(task.classes)`; `train` and `val` are non-empty.
Guarantees a trainer gives: `best_state` loads into `model` (`model.load_state_dict`), its keys
and shapes unchanged; epochs are numbered from 1; `EpochRecord.metrics` holds the task's
selection metric.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from ecgzoo.core.model import EcgModel
from ecgzoo.core.tasks import Task

Precision = Literal["fp32", "bf16", "fp16"]


#: What a trainer learns: `ecgzoo.core.tasks.Task` (kind, classes in output order, `scored_classes` the
#: headline F1 averages, `selection_metric` that picks the best epoch). Single-label: a target is a
#: class index; multi-label (`task.multi`): a float32 0/1 vector over the classes, and the trainer
#: trains sigmoid outputs (binary cross-entropy); a trainer that cannot is free to raise.
TrainingTask = Task


@dataclasses.dataclass(frozen=True)
class FitContext:
    """Where and how a trainer runs: the run's settings, not the trainer's own options."""

    device: str = "cpu"  #: "cpu" or "cuda" (resolved: never "auto")
    seed: int = 0  #: seed of the run; a trainer seeds its shuffling and augmentation from it
    rank: int = 0  #: this process's rank in a data-parallel group
    world_size: int = 1  #: processes in the group (1: not distributed)
    precision: Precision = "fp32"  #: the run's numeric precision request (a trainer may refuse what it cannot do)
    checkpoint_dir: Path | None = None  #: the trainer's own folder for resumable state (rank 0 writes)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """One finished epoch: losses, validation metrics named by the task, and anything else worth a curve."""

    epoch: int
    train_loss: float
    val_loss: float
    metrics: Mapping[str, float]  #: validation metrics, e.g. {"challenge_f1": 0.81, "accuracy": 0.9}
    train_metrics: Mapping[str, float] = dataclasses.field(default_factory=dict)  #: the same on the training split, when measured
    best: bool = False  #: the best epoch so far by the trainer's selection rule
    seconds: float = math.nan
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)  #: e.g. {"lr": 1e-3}

    def __post_init__(self) -> None:
        if self.epoch < 1:
            raise ValueError(f"epochs are numbered from 1, got {self.epoch}")

    def to_json(self) -> dict[str, Any]:
        """A flat row of history.json / metrics.jsonl: epoch, train_/val_ losses and metrics, best, seconds, extras."""
        row: dict[str, Any] = {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss}
        row.update({f"train_{k}": float(v) for k, v in self.train_metrics.items()})
        row.update({f"val_{k}": float(v) for k, v in self.metrics.items()})
        row.update({"best": bool(self.best), "seconds": self.seconds, **dict(self.extra)})
        return row


@dataclasses.dataclass
class FitResult:
    """What `Trainer.fit` returns: every epoch's record and the weights of the best one."""

    epochs: list[EpochRecord]
    best_state: dict[str, torch.Tensor]  #: `model.state_dict()` of the best epoch (on any device)
    best_epoch: int

    def __post_init__(self) -> None:
        if not self.epochs:
            raise ValueError("a FitResult needs at least one epoch record")
        if self.best_epoch not in {e.epoch for e in self.epochs}:
            raise ValueError(f"best_epoch {self.best_epoch} is not one of the recorded epochs")

    def history(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.epochs]


class Trainer(abc.ABC):
    """What the framework needs from a trainer plugin (the contract is in the module docstring)."""

    @abc.abstractmethod
    def fit(self, model: EcgModel, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
            task: TrainingTask, ctx: FitContext) -> FitResult:
        """Train `model` in place; return every epoch's record and the best epoch's weights."""
