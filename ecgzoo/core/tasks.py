"""What a dataset asks a model to learn: one class per record, or a set of labels per record.

A `Task` travels with a dataset (`Dataset.task`), the prepared arrays, `run.json` and the
checkpoint, so every consumer (trainer, evaluation, prediction, report) takes its decisions from
one place instead of guessing from label shapes:

=================  ===========================  ==================================
                   single-label (PhysioNet 2017)  multi-label (PTB-XL, CinC 2021)
=================  ===========================  ==================================
label of a record  one class name                a tuple of class names (may be empty)
encoded target     class index (int)             0/1 vector over the classes
output activation  softmax over classes          sigmoid per class
loss               (weighted) cross-entropy      binary cross-entropy (optional pos weights)
decision           arg max                       probability >= the class's threshold
selection metric   challenge F1                  macro AUROC
=================  ===========================  ==================================

Thresholds of a multi-label task are chosen per class on the validation split
(`ecgzoo.evaluation.multilabel_metrics.choose_thresholds`) and stored in the checkpoint; 0.5 stands in
where none were chosen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

SINGLE, MULTI = "single-label", "multi-label"
TaskKind = Literal["single-label", "multi-label"]


@dataclasses.dataclass(frozen=True)
class Task:
    """The kind of task, its class vocabulary in output order and each class's human name."""

    kind: TaskKind
    classes: tuple[str, ...]
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: classes whose mean one-vs-rest F1 is the headline score (the dataset's `scored_classes`;
    #: None: every class); not part of the task's identity (equality, `to_json`)
    scored_classes: tuple[str, ...] | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in (SINGLE, MULTI):
            raise ValueError(f"task kind must be {SINGLE!r} or {MULTI!r}, got {self.kind!r}")
        classes = tuple(str(c) for c in self.classes)
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"task classes must be non-empty and distinct, got {list(classes)}")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "names", dict(self.names))
        if self.scored_classes is not None:
            object.__setattr__(self, "scored_classes", tuple(str(c) for c in self.scored_classes))

    @classmethod
    def single_label(cls, classes: Sequence[str], names: Mapping[str, str] | None = None) -> Task:
        return cls(SINGLE, tuple(classes), names or {})

    @classmethod
    def multi_label(cls, classes: Sequence[str], names: Mapping[str, str] | None = None) -> Task:
        return cls(MULTI, tuple(classes), names or {})

    @property
    def multi(self) -> bool:
        return self.kind == MULTI

    @property
    def loss(self) -> str:
        return "binary-cross-entropy" if self.multi else "cross-entropy"

    @property
    def activation(self) -> str:
        return "sigmoid" if self.multi else "softmax"

    @property
    def selection_metric(self) -> str:
        """The validation figure that picks the best epoch by default."""
        return "macro_auroc" if self.multi else "challenge_f1"

    def with_scored(self, scored_classes: Sequence[str] | None) -> Task:
        """The same task with the classes the headline F1 averages (None: every class)."""
        return dataclasses.replace(self, scored_classes=None if scored_classes is None else tuple(scored_classes))

    def name(self, cls: str) -> str:
        """Human name of a class ('AF' -> 'atrial fibrillation'), the class itself when unknown."""
        return self.names.get(cls, cls)

    def encode(self, label: str | Iterable[str], record_id: str = "?") -> int | np.ndarray:
        """Class index (single-label) or 0/1 uint8 vector (multi-label); unknown labels are errors."""
        from ecgzoo.core.record import RecordError

        if not self.multi:
            if not isinstance(label, str) or label not in self.classes:
                raise RecordError(record_id, f"label {label!r} is not one of the classes {list(self.classes)}")
            return self.classes.index(label)
        if isinstance(label, str):
            raise RecordError(record_id, f"a multi-label task needs a set of labels, got the string {label!r}")
        target = np.zeros(len(self.classes), dtype=np.uint8)
        for one in label:
            if one not in self.classes:
                raise RecordError(record_id, f"label {one!r} is not one of the classes {list(self.classes)}")
            target[self.classes.index(one)] = 1
        return target

    def decode(self, target: int | np.ndarray) -> str | tuple[str, ...]:
        if not self.multi:
            return self.classes[int(target)]
        return tuple(c for c, on in zip(self.classes, np.asarray(target), strict=True) if on)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or an independent sigmoid per class."""
        logits = logits.float()
        return torch.sigmoid(logits) if self.multi else torch.softmax(logits, dim=-1)

    def decide(self, probs: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """Predicted class indices (N,), or (N, K) booleans: probability >= the class's threshold."""
        probs = np.asarray(probs)
        if not self.multi:
            return probs.argmax(axis=-1)
        t = np.full(len(self.classes), 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if t.shape != (len(self.classes),):
            raise ValueError(f"{t.size} thresholds for {len(self.classes)} classes")
        return probs >= t

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": list(self.classes), "names": dict(self.names)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, classes: Sequence[str] | None = None) -> Task:
        """The task stored by `to_json`; runs and checkpoints written before tasks existed are single-label."""
        if not data:
            if classes is None:
                raise ValueError("no task stored and no classes given")
            return cls.single_label(classes)
        return cls(data["kind"], tuple(data["classes"]), data.get("names") or {})


def task_of(dataset: Any) -> Task:
    """The dataset's declared task; a dataset declaring none is single-label over its `classes`."""
    task = getattr(dataset, "task", None)
    task = task if isinstance(task, Task) else Task.single_label(list(dataset.classes))
    scored = getattr(dataset, "scored_classes", None)
    return task.with_scored(scored) if scored is not None and task.scored_classes is None else task
