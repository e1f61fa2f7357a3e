"""How each kind of task is trained: the loss weights, what a validation pass keeps, each epoch's figures.

The task classes (`ecgzoo.core.tasks`) own the loss itself, the probabilities and the decisions; this
module owns what needs the metrics and the process group, which `core` imports none of.
`training_for(task)` is the only place that maps a task to its training: a trainer asks it, and
never tests the task's kind.

==================  =====================================  ========================================
                    single-label                           multi-label
==================  =====================================  ========================================
loss weights        inverse class frequency (or its root)  positive weights (`pos_weight`), or none
validation keeps    the confusion matrix (summed)          targets and sigmoid probabilities (gathered)
epoch figures       accuracy, challenge F1 (train, val),   macro AUROC, F-max, macro F1 (val)
                    macro F1 and per-class F1 (val)
selection figures   challenge_f1, macro_f1, accuracy,      macro_auroc, f_max, macro_f1, loss (a
                    loss                                   single-label name means macro_auroc)
==================  =====================================  ========================================
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ecgzoo.core.tasks import MULTI, SINGLE, Task, pos_weights
from ecgzoo.data.splits import class_weights
from ecgzoo.evaluation.metrics import metrics_from_confusion, selection_score, validation_figures
from ecgzoo.training import distributed

#: an epoch's figures: (the history row's training figures, its validation figures, the validation
#: metrics kept with the best weights, the selection score: higher is better, None where undefined)
EpochFigures = tuple[dict[str, Any], dict[str, Any], dict[str, Any], float | None]


class TaskTraining(abc.ABC):
    """The training of one kind of task; `training_for(task)` picks it. Every method takes the task."""

    @abc.abstractmethod
    def loss_weights(self, task: Task, labels: np.ndarray, class_weighting: str, pos_weight: str,
                     selection_metric: str) -> torch.Tensor | None:
        """The `weight` of `task.training_loss` from the training split's encoded targets (a trainer's options
        `class_weighting`, `pos_weight`); refuses a selection metric this kind has not."""

    @abc.abstractmethod
    def batch_outputs(self, task: Task, targets: torch.Tensor, logits: torch.Tensor) -> Any:
        """What a validation pass keeps of one batch."""

    @abc.abstractmethod
    def gathered(self, task: Task, outputs: Sequence[Any]) -> Any:
        """One rank's kept outputs combined over every rank (a collective: every rank calls it)."""

    @abc.abstractmethod
    def epoch_figures(self, task: Task, train_confusion: np.ndarray, val_loss: float, val_outputs: Any,
                      selection_metric: str, scored: Sequence[str] | None) -> EpochFigures:
        """The epoch's figures from the training batches' summed `task.confusion` (K, K) and the validation
        pass (its loss, its `gathered` outputs); `scored`: the classes the challenge F1 averages."""


class SingleLabelTraining(TaskTraining):
    def loss_weights(self, task: Task, labels: np.ndarray, class_weighting: str, pos_weight: str,
                     selection_metric: str) -> torch.Tensor | None:
        k = len(task.classes)
        if selection_metric in ("macro_auroc", "f_max"):
            raise ValueError(f"trainer option selection_metric={selection_metric!r} is for multi-label tasks; this task is single-label")
        if labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"training labels must be class indices 0..{k - 1} ({list(task.classes)}), found {int(labels.max())}")
        weights = class_weights(labels, k) if class_weighting != "none" else np.ones(k, dtype=np.float32)
        if class_weighting == "sqrt-inverse-frequency":
            weights = np.sqrt(weights).astype(np.float32)
        return torch.tensor(weights, dtype=torch.float32)

    def batch_outputs(self, task: Task, targets: torch.Tensor, logits: torch.Tensor) -> Any:
        return task.confusion(targets, logits)

    def gathered(self, task: Task, outputs: Sequence[Any]) -> Any:
        k = len(task.classes)
        cm = torch.zeros(k * k, dtype=torch.int64)
        for counts in outputs:
            cm += counts
        return distributed.all_reduce_sum(cm).reshape(k, k).numpy()

    def epoch_figures(self, task: Task, train_confusion: np.ndarray, val_loss: float, val_outputs: Any,
                      selection_metric: str, scored: Sequence[str] | None) -> EpochFigures:
        classes = list(task.classes)
        train_m = metrics_from_confusion(train_confusion, classes, scored)
        val_m = metrics_from_confusion(val_outputs, classes, scored)
        score = -val_loss if selection_metric == "loss" else val_m[selection_metric]
        train_part = {"train_accuracy": train_m["accuracy"], "train_challenge_f1": train_m["challenge_f1"]}
        val_part = {"val_accuracy": val_m["accuracy"], "val_challenge_f1": val_m["challenge_f1"], "val_macro_f1": val_m["macro_f1"],
                    "val_f1": {c: val_m["per_class"][c]["f1"] for c in classes}}
        return train_part, val_part, val_m, score


class MultiLabelTraining(TaskTraining):
    def loss_weights(self, task: Task, labels: np.ndarray, class_weighting: str, pos_weight: str,
                     selection_metric: str) -> torch.Tensor | None:
        return pos_weights(labels, pos_weight)  # type: ignore[arg-type]

    def batch_outputs(self, task: Task, targets: torch.Tensor, logits: torch.Tensor) -> Any:
        return targets.cpu().numpy(), task.probabilities(logits).cpu().numpy()

    def gathered(self, task: Task, outputs: Sequence[Any]) -> Any:
        parts = [part for rank in distributed.all_gather_objects(list(outputs)) for part in rank]
        return np.concatenate([t for t, _ in parts]), np.concatenate([p for _, p in parts])

    def epoch_figures(self, task: Task, train_confusion: np.ndarray, val_loss: float, val_outputs: Any,
                      selection_metric: str, scored: Sequence[str] | None) -> EpochFigures:
        figures = validation_figures(*val_outputs)
        score = selection_score(figures, val_loss, selection_metric)
        return {}, {f"val_{name}": value for name, value in figures.items()}, figures, score


_TRAINING: dict[str, TaskTraining] = {SINGLE: SingleLabelTraining(), MULTI: MultiLabelTraining()}


def training_for(task: Task) -> TaskTraining:
    """The training of `task`'s kind."""
    return _TRAINING[task.kind]
