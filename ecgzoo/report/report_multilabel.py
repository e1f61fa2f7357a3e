"""The multi-label parts of a run's report: metrics table, per-record predictions, examples to explain.

Used by the runner and `ecgzoo evaluate` when the task is multi-label (`ecgzoo.core.tasks`); the
single-label report (`ecgzoo.report.report`) is unchanged. Figures follow `ecgzoo.evaluation.multilabel_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgzoo._infra.csv_files import csv_text
from ecgzoo.core.tasks import Task


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
    if "challenge_score_2021" in metrics:
        parts.append(f"CinC 2021 challenge score {figure_or_na(metrics['challenge_score_2021'])}")
    return ", ".join(parts) + f", n = {metrics['n']} records"


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """Headline and the per-class table (name, AUROC, F1, precision, recall at its threshold, support)."""
    lines = [headline(metrics) + ".", "",
             "n/a: undefined on this split (AUROC needs positives and negatives; F1 a present or predicted class).", "",
             "| class | name | AUROC | F1 | precision | recall | threshold | support |", "|---|---|---|---|---|---|---|---|"]
    for c in metrics["classes"]:
        m = metrics["per_class"][c]
        lines.append(f"| {c} | {m['name']} | {figure_or_na(m['auroc'])} | {figure_or_na(m['f1'])} | {figure_or_na(m['precision'])} | "
                     f"{figure_or_na(m['recall'])} | {m['threshold']:.3f} | {m['support']} |")
    return "\n".join(lines)


def predictions_csv(record_ids: Sequence[str], targets: np.ndarray, probs: np.ndarray, task: Task,
                    thresholds: Sequence[float] | np.ndarray) -> str:
    """One row per record: id, true labels, predicted labels (both '|'-joined) and every probability; quoted by the
    csv module where a cell needs it (a record id with a comma)."""
    decided = task.decide(probs, thresholds)
    rows = ([rid, "|".join(task.decode(y)), "|".join(task.decode(d)), *(f"{v:.5f}" for v in p)]
            for rid, y, d, p in zip(record_ids, np.asarray(targets), decided, probs, strict=True))
    return csv_text(["record", "true", "predicted", *(f"p_{c}" for c in task.classes)], rows)


def pick_examples(targets: np.ndarray, probs: np.ndarray, per_class: int) -> list[tuple[int, int]]:
    """(position, class) pairs: for each class with positives, its most confident true positives first."""
    targets = np.asarray(targets).astype(bool)
    chosen: list[tuple[int, int]] = []
    for c in range(targets.shape[1]):
        idx = np.flatnonzero(targets[:, c])
        for i in sorted(idx, key=lambda i: -probs[i, c])[:per_class]:
            chosen.append((int(i), c))
    return chosen


def class_counts(targets: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """Records carrying each class (a record counts once per label it has)."""
    return {c: int(n) for c, n in zip(classes, np.asarray(targets).sum(axis=0), strict=True)}
