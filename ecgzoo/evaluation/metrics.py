"""Metrics of both kinds of task: single-label from one confusion matrix, multi-label from labels and probabilities.

Single-label: every figure (per-class precision/recall/F1, accuracy, the challenge F1) is derived
from the confusion matrix, so ranks of a distributed run can sum their matrices and get exact metrics.
The challenge F1 is the mean one-vs-rest F1 of the classes the dataset scores (`scored`, its
`scored_classes`: PhysioNet 2017 declares N, A and O, its noisy class `~` classified but not
averaged, REFERENCE.md section 4); a dataset that declares none has the mean F1 over all its
classes. The core knows no class names: the scored classes come from the dataset (through its
task). The F1 of a class that is in neither the labels nor the predictions is 0/0: undefined
(None), as in the official 2017 scoring (NaN there, which makes its whole mean NaN); here the
means are over the classes whose F1 is defined, and `challenge_f1_definition` names the undefined ones.

Multi-label: AUROC per class and macro, F-max, F1 at stored thresholds,
per-class thresholds chosen on validation; scores a dataset plugin adds (the CinC 2021 challenge
score, `ecgzoo_plugins.cinc2021_score`) come through `extra_scores`.

Inputs are `y` (N, K) 0/1 labels, `probs` (N, K) probabilities and, where decisions are needed,
`thresholds` (K,): record i is called class k when probs[i, k] >= thresholds[k].

Definitions (each checked against a hand computation in tests/test_metrics.py):
- AUROC of a class: probability that a random positive scores above a random negative, ties
  counting one half (= area under the trapezoidal ROC curve); undefined (NaN) for a class
  without positives or without negatives in `y`. Macro AUROC: mean over classes where defined,
  as in Strodthoff et al. (2021) and the challenge's evaluation code.
- F1 of a class: 2TP / (2TP + FP + FN); NaN when the class is neither present nor predicted.
  Macro F1: mean over classes where defined (the challenge's F-measure).
- F-max (Strodthoff et al., after CAFA): for each threshold t of 0.00, 0.01, ..., 1.00 applied
  to every class, precision averaged over records with at least one predicted label, recall
  averaged over records with at least one true label; F-max is the best harmonic mean.
- Thresholds chosen on validation: per class, the predicted probability that maximises that
  class's F1 when used as threshold (the highest such value on ties); 0.5 for a class without
  positives in the validation split.
- Figures of a validation pass during training (`validation_figures`: macro AUROC, F-max, macro F1
  at 0.5) and the one that picks the best epoch (`selection_score`); the decision thresholds
  themselves are chosen once, after training, on the best epoch's validation predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ecgzoo.core.tasks import Task
from ecgzoo.evaluation.extra_scores import EXTRA_NAMES, extra_scores

# --- single-label ---

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


# --- multi-label ---

def _check(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, probs = np.asarray(y), np.asarray(probs, dtype=np.float64)
    if y.ndim != 2 or y.shape != probs.shape:
        raise ValueError(f"labels and probabilities must both be (records, classes), got {y.shape} and {probs.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("multi-label targets must be 0/1")
    return y.astype(bool), probs


def auroc_per_class(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(K,) AUROC of each class (Mann-Whitney U / (n_pos * n_neg), ties 1/2); NaN where undefined."""
    y, probs = _check(y, probs)
    out = np.full(y.shape[1], np.nan)
    for k in range(y.shape[1]):
        pos = int(y[:, k].sum())
        neg = y.shape[0] - pos
        if pos and neg:
            ranks = rankdata(probs[:, k])  # average ranks on ties
            out[k] = (ranks[y[:, k]].sum() - pos * (pos + 1) / 2) / (pos * neg)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def macro_auroc(y: np.ndarray, probs: np.ndarray) -> float:
    return _nanmean(auroc_per_class(y, probs))


def bootstrap_macro_auroc(y: np.ndarray, probs: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
                          seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the macro AUROC over records (fixed seed: the same interval
    for the same predictions). A resample in which a class has no positive (or no negative) record
    averages over the classes defined in it, as `macro_auroc` does on any split."""
    y_b, probs = _check(y, probs)
    if not len(y_b):
        raise ValueError("bootstrap_macro_auroc needs at least one record")
    draws = np.random.default_rng(seed).integers(0, len(y_b), size=(resamples, len(y_b)))
    values = np.array([macro_auroc(y_b[d], probs[d]) for d in draws])
    values = values[np.isfinite(values)]
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def f1_per_class(y: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """(K,) 2TP / (2TP + FP + FN) of boolean decisions; NaN for a class neither present nor predicted."""
    y, d = _check(y, decisions)
    d = d.astype(bool)
    tp = (y & d).sum(0).astype(np.float64)
    den = 2 * tp + (~y & d).sum(0) + (y & ~d).sum(0)
    out = np.full(y.shape[1], np.nan)
    np.divide(2 * tp, den, out=out, where=den > 0)
    return out


def f_max(y: np.ndarray, probs: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """(F-max, the threshold reaching it), sample-centric as in Strodthoff et al. (see module doc)."""
    y, probs = _check(y, probs)
    has_label = y.any(1)
    best, best_t = 0.0, 0.0
    for t in np.linspace(0.0, 1.0, steps + 1):
        d = probs >= t
        predicted = d.any(1)
        if not predicted.any() or not has_label.any():
            continue
        tp = (d & y).sum(1)
        precision = (tp[predicted] / d[predicted].sum(1)).mean()
        recall = (tp[has_label] / y[has_label].sum(1)).mean()
        if precision + recall > 0:
            f = 2 * precision * recall / (precision + recall)
            if f > best:
                best, best_t = float(f), float(t)
    return best, best_t


def choose_thresholds(y: np.ndarray, probs: np.ndarray, default: float = 0.5) -> np.ndarray:
    """(K,) per-class thresholds maximising each class's validation F1 (see module doc)."""
    y, probs = _check(y, probs)
    out = np.full(y.shape[1], default, dtype=np.float64)
    for k in range(y.shape[1]):
        pos = int(y[:, k].sum())
        if not pos:
            continue
        order = np.argsort(-probs[:, k], kind="stable")
        p, hits = probs[order, k], y[order, k]
        tp = np.cumsum(hits)
        predicted = np.arange(1, p.size + 1)
        last_of_value = np.r_[p[1:] != p[:-1], True]  # calling every record with p >= value
        f1 = 2 * tp / (predicted + pos)
        f1 = np.where(last_of_value, f1, -1.0)
        best = np.flatnonzero(f1 == f1.max())[0]  # first = highest threshold among the best
        out[k] = p[best]
    return out


def multilabel_metrics(y: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                       thresholds: Sequence[float] | np.ndarray | None = None,
                       names: dict[str, str] | None = None) -> dict[str, Any]:
    """Every figure of a multi-label evaluation, JSON-able; decisions at `thresholds` (0.5 if None)."""
    y_b, probs = _check(y, probs)
    k = len(classes)
    t = np.full(k, 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if y_b.shape[1] != k or t.shape != (k,):
        raise ValueError(f"{y_b.shape[1]} label columns and {t.size} thresholds for {k} classes {list(classes)[:6]}")
    d = probs >= t
    auc, f1 = auroc_per_class(y_b, probs), f1_per_class(y_b, d)
    tp, fp = (y_b & d).sum(0), (~y_b & d).sum(0)
    fmax, fmax_t = f_max(y_b, probs)
    out: dict[str, Any] = {
        "task": "multi-label", "classes": list(classes), "n": int(y_b.shape[0]),
        "macro_auroc": _nanmean(auc), "macro_f1": _nanmean(f1), "f_max": fmax, "f_max_threshold": fmax_t,
        "exact_match": float((y_b == d).all(1).mean()) if y_b.shape[0] else float("nan"),
        "per_class": {
            c: {"name": (names or {}).get(c, c), "auroc": _json(auc[i]), "f1": _json(f1[i]),
                "precision": _json(tp[i] / (tp[i] + fp[i]) if tp[i] + fp[i] else float("nan")),
                "recall": _json(tp[i] / y_b[:, i].sum() if y_b[:, i].any() else float("nan")),
                "support": int(y_b[:, i].sum()), "threshold": float(t[i])}
            for i, c in enumerate(classes)
        },
    }
    out.update(extra_scores(Task.multi_label(classes, names), y_b, probs, d, taken=out))
    return {key: _json(v) if isinstance(v, float) else v for key, v in out.items()}


def multilabel_metrics_with_interval(y: np.ndarray, probs: np.ndarray, classes: Sequence[str],
                                     thresholds: Sequence[float] | np.ndarray | None = None,
                                     names: dict[str, str] | None = None) -> dict[str, Any]:
    """`multilabel_metrics` plus the 95% bootstrap interval of the macro AUROC (`macro_auroc_ci95`,
    `bootstrap_resamples`): what a run reports for its test split and `ecgzoo evaluate` for its records."""
    metrics = multilabel_metrics(y, probs, classes, thresholds, names)
    metrics.update(macro_auroc_ci95=list(bootstrap_macro_auroc(y, probs)), bootstrap_resamples=BOOTSTRAP_RESAMPLES)
    return metrics


def _json(value: float) -> float | None:
    """NaN (undefined) as None so metrics.json stays valid JSON."""
    value = float(value)
    return None if np.isnan(value) else value


def figure_or_na(value: float | None) -> str:
    """A multi-label figure with three decimals; 'n/a' where it is undefined on the split (None)."""
    return "n/a" if value is None else f"{value:.3f}"


def multilabel_headline(metrics: dict[str, Any]) -> str:
    """One line of the multi-label scores a reader compares first."""
    auroc = f"macro AUROC **{figure_or_na(metrics['macro_auroc'])}**"
    if metrics.get("macro_auroc_ci95"):
        lo, hi = metrics["macro_auroc_ci95"]
        auroc += f" (95% bootstrap interval {lo:.3f}-{hi:.3f}, {metrics.get('bootstrap_resamples', 1000)} resamples of the records)"
    parts = [auroc, f"F-max {figure_or_na(metrics['f_max'])}",
             f"macro F1 at the stored thresholds {figure_or_na(metrics['macro_f1'])}"]
    parts += [f"{name} {figure_or_na(metrics[key])}" for key, name in metrics.get(EXTRA_NAMES, {}).items() if key in metrics]
    return ", ".join(parts) + f", n = {metrics['n']} records"


#: validation figures a multi-label task can select the best epoch by (loss: lowest wins)
SELECTION = ("macro_auroc", "f_max", "macro_f1", "loss")


def validation_figures(targets: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """macro AUROC, F-max and macro F1 at 0.5 of one validation pass (NaN-free: undefined -> None)."""
    auroc = macro_auroc(targets, probs)
    f1 = f1_per_class(targets, probs >= 0.5)
    finite = f1[np.isfinite(f1)]
    return {"macro_auroc": None if np.isnan(auroc) else auroc, "f_max": f_max(targets, probs)[0],
            "macro_f1": float(finite.mean()) if finite.size else None}


def selection_score(figures: dict[str, Any], val_loss: float, metric: str) -> float:
    """The figure that picks the best epoch, higher is better; a single-label metric name means macro AUROC."""
    if metric == "loss":
        return -val_loss
    value = figures.get(metric if metric in SELECTION else "macro_auroc")
    return float("-inf") if value is None else float(value)
