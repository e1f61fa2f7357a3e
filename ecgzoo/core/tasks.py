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
(`ecgzoo.evaluation.metrics.choose_thresholds`) and stored in the checkpoint; 0.5 stands in
where none were chosen. A trainer's loss is `Task.training_loss` (multi-label: `bce_loss` with
`pos_weights`); what needs the metrics (loss weights, validation figures, the best epoch) is
`ecgzoo.training.task_training.training_for(task)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

SINGLE, MULTI = "single-label", "multi-label"
TaskKind = Literal["single-label", "multi-label"]
#: how a multi-label trainer weights each class's positives in its binary cross-entropy (`pos_weights`)
PosWeight = Literal["none", "balanced"]


@dataclasses.dataclass(frozen=True)
class Task:
    """The kind of task, its class vocabulary in output order and each class's human name.

    `Task(kind, classes, names)` gives the subclass of that kind (`SingleLabelTask`,
    `MultiLabelTask`): each owns what differs between the kinds (targets, activation, loss,
    decisions, thresholds, the headline figure, class counts); callers ask the task, never test
    its kind. What a task's metrics and report look like is `ecgzoo.evaluation.task_scoring`.
    """

    kind: TaskKind
    classes: tuple[str, ...]
    names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: classes whose mean one-vs-rest F1 is the headline score (the dataset's `scored_classes`;
    #: None: every class); not part of the task's identity (equality, `to_json`)
    scored_classes: tuple[str, ...] | None = dataclasses.field(default=None, compare=False)

    #: the loss a trainer minimises, the output activation, the figure that picks the best epoch
    #: by default, the key of the headline figure in metrics.json, the dtype of encoded targets
    #: (each kind's class sets them)
    loss: ClassVar[str]
    activation: ClassVar[str]
    selection_metric: ClassVar[str]
    headline_metric: ClassVar[str]
    label_dtype: ClassVar[type]
    #: the fewest classes with records that training needs, and how to say it
    min_present: ClassVar[int]
    min_present_text: ClassVar[str]
    #: a prediction lists each label at or above its threshold (with probability and threshold), not one class
    lists_labels: ClassVar[bool]

    def __new__(cls, *args: Any, **kwargs: Any) -> Task:
        if cls is Task:  # Task(kind, ...) is the subclass of that kind (an unknown kind: __post_init__ says so)
            cls = _KINDS.get(args[0] if args else kwargs.get("kind"), Task)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS or type(self) is not _KINDS[self.kind]:
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
        return SingleLabelTask(SINGLE, tuple(classes), names or {})

    @classmethod
    def multi_label(cls, classes: Sequence[str], names: Mapping[str, str] | None = None) -> Task:
        return MultiLabelTask(MULTI, tuple(classes), names or {})

    @property
    def multi(self) -> bool:
        """Kept for third-party code written against 0.x; ecgzoo itself asks the task instead."""
        return self.kind == MULTI

    def with_scored(self, scored_classes: Sequence[str] | None) -> Task:
        """The same task with the classes the headline F1 averages (None: every class)."""
        return dataclasses.replace(self, scored_classes=None if scored_classes is None else tuple(scored_classes))

    def name(self, cls: str) -> str:
        """Human name of a class ('AF' -> 'atrial fibrillation'), the class itself when unknown."""
        return self.names.get(cls, cls)

    def encode(self, label: str | Iterable[str], record_id: str = "?") -> int | np.ndarray:
        """Class index (single-label) or 0/1 uint8 vector (multi-label); unknown labels are errors."""
        raise NotImplementedError

    def decode(self, target: int | np.ndarray) -> str | tuple[str, ...]:
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, or an independent sigmoid per class."""
        raise NotImplementedError

    def decide(self, probs: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """Predicted class indices (N,), or (N, K) booleans: probability >= the class's threshold."""
        raise NotImplementedError

    def chosen(self, probs: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> list[int]:
        """The classes one record's probabilities (K,) decide for, most probable first: the arg max, or every
        class at or above its threshold (possibly none)."""
        decided = np.atleast_1d(self.decide(np.asarray(probs)[None], thresholds)[0])
        picked = np.flatnonzero(decided) if decided.dtype == bool else decided
        return sorted((int(i) for i in picked), key=lambda i: -float(probs[i]))

    def thresholds(self, stored: Sequence[float] | None) -> list[float] | None:
        """The decision thresholds to use: those stored with the model; a multi-label task 0.5 where none were."""
        return None if stored is None else [float(t) for t in stored]

    def labels(self, labels: Any, n: int) -> np.ndarray:
        """Encoded targets of n records from a flat or nested list (prepared arrays' metadata)."""
        return np.asarray(labels, dtype=self.label_dtype).reshape(self._label_shape(n))

    def _label_shape(self, n: int) -> tuple[int, ...]:
        return (n,)

    def relabel(self, labels: np.ndarray, to_task: np.ndarray) -> np.ndarray:
        """Targets encoded over another class list, re-encoded over this task's classes: `to_task[j]` is the
        index here of that list's class j (a dataset's classes, matched to a run's by name)."""
        return np.asarray(to_task)[np.asarray(labels)]

    def has_records(self, labels: np.ndarray) -> np.ndarray:
        """(K,) booleans: which classes have at least one record (a positive, for a multi-label task)."""
        return np.isin(np.arange(len(self.classes)), np.asarray(labels))

    def stratify_by(self, labels: np.ndarray) -> np.ndarray:
        """One class index per record to stratify a random split by."""
        return np.asarray(labels)

    def class_counts(self, labels: np.ndarray) -> dict[str, int]:
        """Records carrying each class (a multi-label record counts once per label it has)."""
        labels = np.asarray(labels)
        return {c: int((labels == i).sum()) for i, c in enumerate(self.classes)}

    def loss_value(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The task's plain (unweighted) loss of logits against encoded targets."""
        raise NotImplementedError

    def zero_targets(self, logits: torch.Tensor) -> torch.Tensor:
        """Targets of the shape `loss_value` takes, all class 0 / all negative (timing a step)."""
        raise NotImplementedError

    def training_loss(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None,
                      smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
        """The loss a trainer minimises, averaged (or summed) over records, in float32: single-label, each
        record's cross-entropy (label-smoothed by `smoothing`) times its class's `weight`; multi-label, binary
        cross-entropy with per-class positive weights `weight`, the mean over classes (`smoothing` does not apply)."""
        raise NotImplementedError

    def confusion(self, targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        """(K*K,) int64 counts on the cpu of a batch's (true, decided) class pairs, at index true * K + decided;
        None where a record has no one decided class (multi-label)."""
        return None

    def cache_fields(self) -> dict[str, Any]:
        """What the task adds to a prepared cache entry's identity: a multi-label task itself; a
        single-label task nothing (its entries keep the key they had before tasks existed)."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": list(self.classes), "names": dict(self.names)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, classes: Sequence[str] | None = None) -> Task:
        """The task stored by `to_json`; runs and checkpoints written before tasks existed are single-label."""
        if not data:
            if classes is None:
                raise ValueError("no task stored and no classes given")
            return cls.single_label(classes)
        return Task(data["kind"], tuple(data["classes"]), data.get("names") or {})


@dataclasses.dataclass(frozen=True)
class SingleLabelTask(Task):
    """One class per record: softmax, cross-entropy, arg max; headline: the challenge F1."""

    loss, activation, selection_metric, headline_metric = "cross-entropy", "softmax", "challenge_f1", "challenge_f1"
    label_dtype, min_present, min_present_text, lists_labels = np.int64, 2, "2", False

    def encode(self, label: str | Iterable[str], record_id: str = "?") -> int | np.ndarray:
        from ecgzoo.core.record import RecordError

        if not isinstance(label, str) or label not in self.classes:
            raise RecordError(record_id, f"label {label!r} is not one of the classes {list(self.classes)}")
        return self.classes.index(label)

    def decode(self, target: int | np.ndarray) -> str | tuple[str, ...]:
        return self.classes[int(target)]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def decide(self, probs: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        return np.asarray(probs).argmax(axis=-1)

    def loss_value(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits, targets)

    def zero_targets(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(logits), dtype=torch.long, device=logits.device)

    def training_loss(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None,
                      smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
        per = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none", label_smoothing=smoothing)
        per = per if weight is None else per * weight[targets]
        return per.mean() if reduction == "mean" else per.sum()

    def confusion(self, targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        k = len(self.classes)
        return torch.bincount((targets * k + logits.argmax(1)).cpu(), minlength=k * k)


@dataclasses.dataclass(frozen=True)
class MultiLabelTask(Task):
    """A set of labels per record: a sigmoid per class, binary cross-entropy, per-class thresholds
    (chosen on validation, 0.5 where none were); headline: macro AUROC."""

    loss, activation, selection_metric, headline_metric = "binary-cross-entropy", "sigmoid", "macro_auroc", "macro_auroc"
    label_dtype, min_present, min_present_text, lists_labels = np.uint8, 1, "one class with a positive record", True

    def encode(self, label: str | Iterable[str], record_id: str = "?") -> int | np.ndarray:
        from ecgzoo.core.record import RecordError

        if isinstance(label, str):
            raise RecordError(record_id, f"a multi-label task needs a set of labels, got the string {label!r}")
        target = np.zeros(len(self.classes), dtype=np.uint8)
        for one in label:
            if one not in self.classes:
                raise RecordError(record_id, f"label {one!r} is not one of the classes {list(self.classes)}")
            target[self.classes.index(one)] = 1
        return target

    def decode(self, target: int | np.ndarray) -> str | tuple[str, ...]:
        return tuple(c for c, on in zip(self.classes, np.asarray(target), strict=True) if on)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def decide(self, probs: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        probs = np.asarray(probs)
        t = np.full(len(self.classes), 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if t.shape != (len(self.classes),):
            raise ValueError(f"{t.size} thresholds for {len(self.classes)} classes")
        return probs >= t

    def thresholds(self, stored: Sequence[float] | None) -> list[float] | None:
        return [0.5] * len(self.classes) if stored is None else [float(t) for t in stored]

    def cache_fields(self) -> dict[str, Any]:
        return {"task": self.to_json()}

    def _label_shape(self, n: int) -> tuple[int, ...]:
        return (n, -1)

    def relabel(self, labels: np.ndarray, to_task: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        out = np.zeros((len(labels), len(self.classes)), dtype=np.uint8)
        out[:, np.asarray(to_task)] = labels
        return out

    def has_records(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(labels).reshape(-1, len(self.classes)).any(axis=0)

    def stratify_by(self, labels: np.ndarray) -> np.ndarray:
        return rarest_label(labels)

    def class_counts(self, labels: np.ndarray) -> dict[str, int]:
        return {c: int(n) for c, n in zip(self.classes, np.asarray(labels).sum(axis=0), strict=True)}

    def loss_value(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)

    def zero_targets(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(logits)

    def training_loss(self, logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None = None,
                      smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
        return bce_loss(logits, targets, weight, reduction)


_KINDS: dict[str, type[Task]] = {SINGLE: SingleLabelTask, MULTI: MultiLabelTask}


def rarest_label(targets: np.ndarray) -> np.ndarray:
    """(N,) group of each record of multi-label targets (N, K): the class among its labels that is rarest
    in the whole set (records without a label: group K). Splitting these groups with `stratified_split`
    stratifies a multi-label set: a class reaches both splits whenever two or more of its records have
    it as their rarest label."""
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"multi-label targets must be (records, classes), got shape {targets.shape}")
    counts = targets.sum(axis=0)
    rank = np.where(targets > 0, counts[None, :], np.inf)
    return np.where(np.isinf(rank.min(axis=1)), targets.shape[1], rank.argmin(axis=1)).astype(np.int64)


def pos_weights(targets: np.ndarray, mode: PosWeight) -> torch.Tensor | None:
    """Per-class positive weights of a multi-label task's binary cross-entropy from the training targets (N, K):
    "balanced" `negatives_k / positives_k` (1 for a class without positives); None for mode "none"."""
    if mode == "none":
        return None
    targets = np.asarray(targets, dtype=np.float64)
    pos = targets.sum(axis=0)
    neg = targets.shape[0] - pos
    weights = np.ones(targets.shape[1])
    np.divide(neg, pos, out=weights, where=pos > 0)
    return torch.tensor(weights, dtype=torch.float32)


def bce_loss(logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None = None,
             reduction: str = "mean") -> torch.Tensor:
    """A multi-label task's training loss: binary cross-entropy with logits (a sigmoid per class, optionally
    with `pos_weights`, as `torch.nn.BCEWithLogitsLoss(pos_weight=...)`), mean over classes per record, then
    mean (or sum) over records."""
    pw = pos_weight.to(logits.device) if pos_weight is not None else None
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float(), pos_weight=pw,
                                                               reduction="none").mean(dim=1)
    return per.mean() if reduction == "mean" else per.sum()


def task_of(dataset: Any) -> Task:
    """The dataset's declared task; a dataset declaring none is single-label over its `classes`."""
    task = getattr(dataset, "task", None)
    task = task if isinstance(task, Task) else Task.single_label(list(dataset.classes))
    scored = getattr(dataset, "scored_classes", None)
    return task.with_scored(scored) if scored is not None and task.scored_classes is None else task
