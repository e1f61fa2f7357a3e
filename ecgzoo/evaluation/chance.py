"""Is a run's result better than a guess? The chance-level check of the validation headline figure.

Single-label: the headline is the challenge F1 (mean F1 of the scored classes). The guess is the
trivial rule "always the training split's majority class", scored on the same validation
records. Multi-label: the headline is the macro AUROC; a guess (any constant or random score)
has AUROC 0.5. The run is at chance level when the guess's figure lies within, or above, the
95% percentile bootstrap interval of the model's figure over the validation records (the
interval's lower end is no better than the guess): the model cannot be told apart from the guess
on this data. `ecgzoo run` then warns on stderr and at the top of report.md; metrics.json keeps
the check under `chance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MULTI_RESAMPLES = 200  # macro AUROC costs a ranking per class and resample: fewer draws than the F1's 1000


def single_label(y_true: np.ndarray, y_pred: np.ndarray, train_labels: np.ndarray, classes: Sequence[str],
                 scored: Sequence[str] | None = None) -> dict[str, Any]:
    """The challenge F1 of `y_pred`, its 95% bootstrap interval, and the F1 of always predicting the training majority."""
    from ecgzoo.evaluation.metrics import bootstrap_interval, classification_metrics

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    majority = int(np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=len(classes)).argmax())
    guess = classification_metrics(y_true, np.full_like(y_true, majority), classes, scored)["challenge_f1"]
    value = classification_metrics(y_true, y_pred, classes, scored)["challenge_f1"]
    lo, hi = bootstrap_interval(y_true, y_pred, classes, scored=scored)
    return {"figure": "challenge_f1", "figure_name": "challenge F1", "value": value, "ci95": [lo, hi],
            "guess": f"always {classes[majority]!r}, the "
            "training split's majority class", "guess_value": guess, "at_chance": bool(lo <= guess)}


def multi_label(y_true: np.ndarray, probs: np.ndarray, resamples: int = MULTI_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The macro AUROC of `probs`, its 95% bootstrap interval over records (fixed seed), against a guess's 0.5."""
    from ecgzoo.evaluation.metrics import macro_auroc

    y_true, probs = np.asarray(y_true), np.asarray(probs)
    rng = np.random.default_rng(seed)
    values = [macro_auroc(y_true[d], probs[d]) for d in rng.integers(0, len(y_true), size=(resamples, len(y_true)))]
    values = [v for v in values if np.isfinite(v)]
    lo, hi = (float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))) if values else (float("nan"),) * 2
    return {"figure": "macro_auroc", "figure_name": "macro AUROC", "value": macro_auroc(y_true, probs), "ci95": [lo, hi],
            "guess": "any constant or random score", "guess_value": 0.5, "at_chance": bool(not values or lo <= 0.5)}


def warning(check: dict[str, Any] | None) -> str | None:
    """One sentence for stderr and report.md when the run is at chance level (None otherwise)."""
    if not check or not check.get("at_chance"):
        return None
    lo, hi = check["ci95"]
    name = check.get("figure_name", check["figure"])  # the check names its figure; the core keeps no table of them
    return (f"this run is at chance level: validation {name} {check['value']:.3f} (95% bootstrap interval "
            f"{lo:.3f}-{hi:.3f}) is no better than guessing ({check['guess']}: {check['guess_value']:.3f}); "
            f"the model has not learnt to tell the classes apart on this data (train longer, on more records, "
            f"or check the labels and preprocessing)")

