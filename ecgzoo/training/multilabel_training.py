"""What a trainer needs to train on a multi-label task: the loss, the validation figures, the best epoch.

A trainer asks the task (`ecgzoo.core.tasks`) and `training_for(task)` (`ecgzoo.training.task_training`);
for a multi-label task those use this:

- loss: binary cross-entropy on the logits (a sigmoid per class), optionally with per-class
  positive weights `pos_weight[k] = negatives_k / positives_k` of the training split ("balanced";
  classes without positives get 1), as `torch.nn.BCEWithLogitsLoss(pos_weight=...)`;
- validation figures from the sigmoid probabilities of the whole split (ranks of a distributed
  run gather theirs first): macro AUROC (the default selection figure), F-max, macro F1 at 0.5;
  the decision thresholds themselves are chosen once, after training, on the best epoch's
  validation predictions (`ecgzoo.evaluation.multilabel_metrics.choose_thresholds`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from ecgzoo.core.tasks import binary_cross_entropy
from ecgzoo.evaluation.multilabel_metrics import f1_per_class, f_max, macro_auroc

PosWeight = Literal["none", "balanced"]
#: validation figures a multi-label task can select the best epoch by (loss: lowest wins)
SELECTION = ("macro_auroc", "f_max", "macro_f1", "loss")


def pos_weights(targets: np.ndarray, mode: PosWeight) -> torch.Tensor | None:
    """Per-class positive weights of BCE from the training targets (N, K); None for mode "none"."""
    if mode == "none":
        return None
    targets = np.asarray(targets, dtype=np.float64)
    pos = targets.sum(axis=0)
    neg = targets.shape[0] - pos
    weights = np.ones(targets.shape[1])
    np.divide(neg, pos, out=weights, where=pos > 0)
    return torch.tensor(weights, dtype=torch.float32)


#: binary cross-entropy with logits: mean over classes per record, then mean (or sum) over records
loss = binary_cross_entropy


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
