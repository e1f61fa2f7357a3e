"""Trainer interface: fits a model on prepared tensors and reports its history."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import torch

from ecgzoo.model import EcgModel


class Trainer(abc.ABC):
    """What the framework needs from a trainer plugin.

    The run pipeline hands the trainer a model and two `torch.utils.data.Dataset`s
    whose items are `(signal (leads, T) float32, label index, valid_length)`,
    the classes, and a folder for checkpoints. `fit` returns the per-epoch history
    (list of dicts, one per epoch) and leaves the best weights loaded in `model`.
    """

    @abc.abstractmethod
    def fit(
        self,
        model: EcgModel,
        train: torch.utils.data.Dataset,
        val: torch.utils.data.Dataset,
        classes: list[str],
        checkpoint_dir: Path,
    ) -> list[dict[str, Any]]:
        """Train `model`; return one metrics dict per epoch."""
