"""Metrics of multi-label diagnosis: AUROC per class and macro, F-max, F1 at stored thresholds,
per-class thresholds chosen on validation; scores a dataset plugin adds (the CinC 2021 challenge
score, `ecgzoo_plugins.cinc2021_score`) come through `extra_scores`.

Inputs are `y` (N, K) 0/1 labels, `probs` (N, K) probabilities and, where decisions are needed,
`thresholds` (K,): record i is called class k when probs[i, k] >= thresholds[k].

Definitions (each checked against a hand computation in tests/test_multilabel_metrics.py):
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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from ecgzoo.core.tasks import Task
from ecgzoo.evaluation.extra_scores import EXTRA_NAMES, extra_scores
from ecgzoo.evaluation.metrics import BOOTSTRAP_RESAMPLES


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


def headline(metrics: dict[str, Any]) -> str:
    """One line of the scores a reader compares first."""
    auroc = f"macro AUROC **{figure_or_na(metrics['macro_auroc'])}**"
    if metrics.get("macro_auroc_ci95"):
        lo, hi = metrics["macro_auroc_ci95"]
        auroc += f" (95% bootstrap interval {lo:.3f}-{hi:.3f}, {metrics.get('bootstrap_resamples', 1000)} resamples of the records)"
    parts = [auroc, f"F-max {figure_or_na(metrics['f_max'])}",
             f"macro F1 at the stored thresholds {figure_or_na(metrics['macro_f1'])}"]
    parts += [f"{name} {figure_or_na(metrics[key])}" for key, name in metrics.get(EXTRA_NAMES, {}).items() if key in metrics]
    return ", ".join(parts) + f", n = {metrics['n']} records"
