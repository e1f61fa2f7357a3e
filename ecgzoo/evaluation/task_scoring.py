"""How each kind of task is scored and read: metrics, thresholds, predictions CSV, headline, chance check.

The task classes (`ecgzoo.core.tasks`) own what a model's outputs mean; this module owns what
their metrics are, because the metrics live in this package and `core` imports none of it.
`scoring(task)` is the only place that maps a task to its scoring: every caller (the runner,
`ecgzoo evaluate`, the report, publish, the chance check) asks it, none tests the task's kind.

==================  =================================  ======================================
                    single-label                       multi-label
==================  =================================  ======================================
metrics             `metrics.classification_metrics`   `metrics.multilabel_metrics`
thresholds          none (arg max)                     chosen per class on validation
headline            challenge F1 (+ accuracy)          macro AUROC, F-max, macro F1 (+ extras)
predictions CSV     true, predicted class, p_*         true, predicted labels ('|'), p_*
chance check        always the training majority       AUROC 0.5
==================  =================================  ======================================
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgzoo._infra.csv_files import csv_text
from ecgzoo.core.tasks import MULTI, SINGLE, Task
from ecgzoo.evaluation import chance, metrics


class TaskScoring(abc.ABC):
    """The scoring of one kind of task; `scoring(task)` picks it. Every method takes the task."""

    #: what the headline figure is called in prose, and the report's sentence on its example maps
    headline_name = ""

    @abc.abstractmethod
    def metrics(self, task: Task, y: np.ndarray, probs: np.ndarray, thresholds: Any = None,
                scored: Sequence[str] | None = None, interval: bool = False) -> dict[str, Any]:
        """Every figure of predictions `probs` against encoded targets `y` (with a 95% bootstrap
        interval of the headline figure when `interval`: a test split, an evaluation)."""

    def choose_thresholds(self, task: Task, y: np.ndarray, probs: np.ndarray) -> list[float] | None:
        """Decision thresholds chosen on these (validation) predictions; None where the task decides by arg max."""
        return None

    def validation_note(self) -> dict[str, Any]:
        """Keys added to the validation metrics (where the thresholds were chosen)."""
        return {}

    def test_note(self) -> dict[str, Any]:
        return {}

    def predictions_csv(self, task: Task, record_ids: Sequence[str], y: np.ndarray, probs: np.ndarray,
                        thresholds: Any = None) -> str:
        """One row per record: id, true and predicted label(s), every probability (5 decimals); quoted by the
        csv module where a cell needs it (a record id with a comma)."""
        decided = task.decide(probs, thresholds)
        rows = ([rid, _joined(task.decode(t)), _joined(task.decode(d)), *(f"{v:.5f}" for v in p)]
                for rid, t, d, p in zip(record_ids, np.asarray(y), decided, probs, strict=True))
        return csv_text(["record", "true", "predicted", *(f"p_{c}" for c in task.classes)], rows)

    @abc.abstractmethod
    def headline(self, metrics_: dict[str, Any]) -> str:
        """One line of the scores a reader compares first (Markdown bold on the headline figure)."""

    @abc.abstractmethod
    def test_intro(self, test: dict[str, Any]) -> str:
        """How the run's last lines introduce the test split's headline."""

    @abc.abstractmethod
    def shipped(self, metrics_: dict[str, Any]) -> dict[str, Any]:
        """The figures of one metrics.json section that published weights carry (`ecgzoo publish`)."""

    @abc.abstractmethod
    def chance(self, task: Task, y_val: np.ndarray, probs: np.ndarray, y_train: np.ndarray,
               scored: Sequence[str] | None) -> dict[str, Any]:
        """The chance-level check of the validation headline figure (`ecgzoo.evaluation.chance`)."""


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _joined(decoded: str | tuple[str, ...]) -> str:
    return decoded if isinstance(decoded, str) else "|".join(decoded)


class SingleLabelScoring(TaskScoring):
    headline_name = "challenge F1"

    def metrics(self, task: Task, y: np.ndarray, probs: np.ndarray, thresholds: Any = None,
                scored: Sequence[str] | None = None, interval: bool = False) -> dict[str, Any]:
        score = metrics.metrics_with_interval if interval else metrics.classification_metrics
        return score(y, task.decide(probs), list(task.classes), scored)

    def headline(self, metrics_: dict[str, Any]) -> str:
        if "challenge_f1_ci95" in metrics_:
            return metrics.headline_text(metrics_)
        return f"challenge F1 **{metrics.figure_text(metrics_['challenge_f1'])}**, accuracy **{metrics_['accuracy']:.3f}**"

    def test_intro(self, test: dict[str, Any]) -> str:
        return f"test split ({test['n']} records, never used for training or selection)"

    def shipped(self, metrics_: dict[str, Any]) -> dict[str, Any]:
        keys = ("challenge_f1", "challenge_f1_ci95", "challenge_classes", "accuracy", "macro_f1", "n", "best_epoch")
        keep = {"task": SINGLE, **{k: metrics_[k] for k in keys if k in metrics_}}
        keep["f1"] = {c: _rounded(m["f1"]) for c, m in metrics_.get("per_class", {}).items()}
        return keep

    def chance(self, task: Task, y_val: np.ndarray, probs: np.ndarray, y_train: np.ndarray,
               scored: Sequence[str] | None) -> dict[str, Any]:
        return chance.single_label(y_val, task.decide(probs), y_train, list(task.classes), scored)


class MultiLabelScoring(TaskScoring):
    headline_name = "macro AUROC"

    def metrics(self, task: Task, y: np.ndarray, probs: np.ndarray, thresholds: Any = None,
                scored: Sequence[str] | None = None, interval: bool = False) -> dict[str, Any]:
        score = metrics.multilabel_metrics_with_interval if interval else metrics.multilabel_metrics
        return score(y, probs, task.classes, task.thresholds(thresholds), dict(task.names))

    def choose_thresholds(self, task: Task, y: np.ndarray, probs: np.ndarray) -> list[float] | None:
        return [float(t) for t in metrics.choose_thresholds(y, probs)]

    def validation_note(self) -> dict[str, Any]:
        return {"thresholds_chosen_on": "this validation split (F1 optimistic here; AUROC does not depend on thresholds)"}

    def test_note(self) -> dict[str, Any]:
        return {"thresholds_chosen_on": "the validation split"}

    def headline(self, metrics_: dict[str, Any]) -> str:
        return metrics.multilabel_headline(metrics_)

    def test_intro(self, test: dict[str, Any]) -> str:
        return "test split (never used for training, selection or thresholds)"

    def shipped(self, metrics_: dict[str, Any]) -> dict[str, Any]:
        keys = ("macro_auroc", "macro_auroc_ci95", "bootstrap_resamples", "f_max", "f_max_threshold", "macro_f1", "n", "best_epoch")
        keep = {"task": MULTI, **{k: metrics_[k] for k in keys if k in metrics_}}
        keep["per_class"] = {c: {"name": m["name"], "auroc": _rounded(m["auroc"]), "f1": _rounded(m["f1"]),
                                 "threshold": _rounded(m["threshold"]), "support": m["support"]}
                             for c, m in metrics_.get("per_class", {}).items()}
        return keep

    def chance(self, task: Task, y_val: np.ndarray, probs: np.ndarray, y_train: np.ndarray,
               scored: Sequence[str] | None) -> dict[str, Any]:
        return chance.multi_label(y_val, probs)


_SCORING: dict[str, TaskScoring] = {SINGLE: SingleLabelScoring(), MULTI: MultiLabelScoring()}


def scoring(task: Task) -> TaskScoring:
    """The scoring of `task`'s kind."""
    return _SCORING[task.kind]


def chance_check(prepared: Any, splits: Sequence[np.ndarray], probs: np.ndarray, scored: Sequence[str] | None) -> dict[str, Any]:
    """The chance-level check of a run: `prepared` records, (train, val, ...) positions, validation probabilities."""
    labels = np.asarray(prepared.labels)
    train_idx, val_idx = splits[0], splits[1]
    return scoring(prepared.task).chance(prepared.task, labels[val_idx], probs, labels[train_idx], scored)
