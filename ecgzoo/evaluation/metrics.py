"""Classification metrics of a single-label task, from one confusion matrix.

Every figure (per-class precision/recall/F1, accuracy, the challenge F1) is derived from the
confusion matrix, so ranks of a distributed run can sum their matrices and get exact metrics.
The challenge F1 is the mean one-vs-rest F1 of the classes the dataset scores (`scored`, its
`scored_classes`: PhysioNet 2017 declares N, A and O, its noisy class `~` classified but not
averaged, REFERENCE.md section 4); a dataset that declares none has the mean F1 over all its
classes. The core knows no class names: the scored classes come from the dataset (through its
task). The F1 of a class that is in neither
the labels nor the predictions is 0/0: undefined (None), as in the official 2017 scoring
(NaN there, which makes its whole mean NaN); here the means are over the classes whose F1 is
defined, and `challenge_f1_definition` names the undefined ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; rows are true classes, columns predictions."""
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got shapes {t.shape} and {p.shape}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            bad = arr[(arr < 0) | (arr >= num_classes)][0]
            raise ValueError(f"{name} holds class index {int(bad)}, expected 0..{num_classes - 1}")
    return np.bincount(t.astype(np.int64) * num_classes + p.astype(np.int64), minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den is 0 (a class never predicted has precision 0, as in scikit-learn)."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _averaged_classes(classes: Sequence[str], scored: Sequence[str] | None) -> tuple[list[str], str]:
    """The classes the challenge F1 averages and a note saying which and why."""
    if scored is None:
        return list(classes), f"mean F1 over all classes {', '.join(classes)} (the dataset declares no scored classes)"
    present = [c for c in scored if c in classes]
    if not present:
        raise ValueError(f"none of the scored classes {list(scored)} is among the classes {list(classes)}")
    return present, f"mean F1 of {', '.join(present)} (the dataset's scored classes; others classified but not averaged)"


def metrics_from_confusion(confusion: np.ndarray | Sequence[Sequence[int]], classes: Sequence[str],
                           scored: Sequence[str] | None = None) -> dict[str, Any]:
    """All metrics of `classification_metrics` from a confusion matrix (rows true, columns predicted).

    `scored`: the classes `challenge_f1` averages, as the dataset declares them (`scored_classes`;
    PhysioNet 2017: N, A, O); None (none declared): the mean F1 over all classes. A class in neither the labels nor
    the predictions has F1 None (undefined) and is left out of `challenge_f1` and `macro_f1`
    (the note says so); `challenge_f1` is None when no scored class is defined.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix has shape {cm.shape}, expected ({k}, {k}) for classes {list(classes)}")
    total = int(cm.sum())
    if total == 0:
        raise ValueError("no predictions to score (empty confusion matrix)")
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (row sum + column sum): the challenge's own formula;
    # 0/0 (a class in neither the labels nor the predictions) is undefined, not 0
    defined = (support + predicted) > 0
    f1 = _ratio(2 * tp, (support + predicted).astype(np.float64))

    averaged, note = _averaged_classes(classes, scored)
    idx = [i for i in (list(classes).index(c) for c in averaged) if defined[i]]
    undefined = [c for c in averaged if not defined[list(classes).index(c)]]
    if undefined:
        note += (f"; F1 undefined for {', '.join(undefined)} (in neither the labels nor the predictions: 0/0, as in the "
                 f"official 2017 scoring), so the mean is over the {len(idx)} class(es) whose F1 is defined")
    return {
        "classes": list(classes),
        "n": total,
        "accuracy": float(tp.sum() / total),
        "challenge_f1": float(f1[idx].mean()) if idx else None,
        "challenge_classes": averaged,
        "challenge_f1_definition": note,
        "challenge_precision": float(precision[idx].mean()) if idx else None,
        "challenge_recall": float(recall[idx].mean()) if idx else None,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1[defined].mean()),  # total > 0: at least one class is defined
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]) if defined[i] else None,
                "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion": cm.tolist(),
    }


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, classes: Sequence[str],
    scored: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-class precision/recall/F1 (one-vs-rest), accuracy, macro means, challenge F1 (over `scored`; all classes if None)
    and the confusion matrix (nested lists, rows true, columns predicted) of integer class predictions."""
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(classes)), classes, scored)


def bootstrap_interval(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, classes: Sequence[str],
    metric: str = "challenge_f1", resamples: int = 1000, level: float = 0.95, seed: int = 0,
    scored: Sequence[str] | None = None,
) -> tuple[float, float] | tuple[None, None]:
    """Percentile bootstrap interval of `metric` (a key of `metrics_from_confusion`) over records.

    Records are drawn with replacement `resamples` times (fixed seed: the same interval every
    time for the same predictions); the interval says how much the figure could move with another
    sample of records of the same kind, not how the model would do on another population.
    Resamples in which the figure is undefined (None) are left out; (None, None) if it is
    undefined in all of them.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if len(t) == 0:
        raise ValueError("bootstrap_interval needs at least one record")
    k = len(classes)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(t), size=(resamples, len(t)))
    codes = t[draws] * k + p[draws]
    values = [metrics_from_confusion(np.bincount(row, minlength=k * k).reshape(k, k), classes, scored)[metric] for row in codes]
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


#: resamples of the bootstrap interval given with the headline figure of a test split or an evaluation
BOOTSTRAP_RESAMPLES = 1000


def metrics_with_interval(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, classes: Sequence[str],
    scored: Sequence[str] | None = None,
) -> dict[str, Any]:
    """`classification_metrics` plus the 95% bootstrap interval of `challenge_f1` (`challenge_f1_ci95`,
    `bootstrap_resamples`): what a run reports for its test split and `ecgzoo evaluate` for its records."""
    metrics = classification_metrics(y_true, y_pred, classes, scored)
    lo, hi = bootstrap_interval(y_true, y_pred, classes, resamples=BOOTSTRAP_RESAMPLES, scored=scored)
    metrics.update(challenge_f1_ci95=[lo, hi], bootstrap_resamples=BOOTSTRAP_RESAMPLES)
    return metrics


def figure_text(value: float | None) -> str:
    """A figure with three decimals; 'undefined' for None (0/0, see the module docstring)."""
    return "undefined" if value is None else f"{value:.3f}"


def headline_text(metrics: dict[str, Any]) -> str:
    """'challenge F1 X (95% bootstrap interval LO-HI), accuracy Y' of `metrics_with_interval`'s result."""
    lo, hi = metrics["challenge_f1_ci95"]
    return (f"challenge F1 {figure_text(metrics['challenge_f1'])} (95% bootstrap interval {figure_text(lo)}-{figure_text(hi)}), "
            f"accuracy {metrics['accuracy']:.3f}")
