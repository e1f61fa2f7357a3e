"""Trainer interface: fits a model on prepared tensors and reports its history."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import torch

from ecgzoo.model import EcgModel
from ecgzoo.tasks import Task


class Trainer(abc.ABC):
    """What the framework needs from a trainer plugin.

    The run pipeline hands the trainer a model and two `torch.utils.data.Dataset`s
    whose items are `(signal (leads, T) float32, label index, valid_length)`,
    the classes, and a folder for checkpoints. `fit` returns the per-epoch history
    (list of dicts, one per epoch) and leaves the best weights loaded in `model`.

    Multi-label tasks: the runner also passes `task=` (an `ecgzoo.tasks.Task` with
    `task.multi`); items then carry a float32 0/1 target vector over the classes instead
    of a label index, and the trainer trains sigmoid outputs (binary cross-entropy). A
    trainer that cannot is free to raise. Single-label runs never pass `task`, so trainers
    written before tasks existed keep working.
    """

    @abc.abstractmethod
    def fit(
        self,
        model: EcgModel,
        train: torch.utils.data.Dataset,
        val: torch.utils.data.Dataset,
        classes: list[str],
        checkpoint_dir: Path,
        task: Task | None = None,
    ) -> list[dict[str, Any]]:
        """Train `model`; return one metrics dict per epoch."""
