"""The scores dataset plugins add to ecgzoo's metrics through the `ecgzoo_task_scores` hook.

Called by `metrics.multilabel_metrics` after ecgzoo's own figures; the core knows no plugin's scores
by name (the CinC 2021 challenge score is the cinc2021 dataset plugin's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgzoo.core.registry import get_registry
from ecgzoo.core.tasks import Task

#: metrics key of {score key: its name in prose}, for the headline line of the report and the CLI
EXTRA_NAMES = "extra_score_names"


def extra_scores(task: Task, targets: np.ndarray, probs: np.ndarray, decisions: np.ndarray,
                 taken: Any = ()) -> dict[str, Any]:
    """Every implementation's scores merged, plus `EXTRA_NAMES` (absent when no plugin scored); a key
    already in `taken` or given twice is an error naming it."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for scores in get_registry().hooks().ecgzoo_task_scores(task=task, targets=targets, probabilities=probs,
                                                            decisions=decisions):
        for key, (name, value) in (scores or {}).items():
            if key in out or key in taken:
                raise ValueError(f"two sources give the metric {key!r} (a plugin's ecgzoo_task_scores hook "
                                 f"may not replace another score)")
            out[key], names[key] = (None if value is None else float(value)), str(name)
    return {**out, EXTRA_NAMES: names} if names else out
