"""Multi-label report pieces: predictions.csv, the metrics table, example picking."""

from __future__ import annotations

import csv
import io

import numpy as np

from ecgzoo.core.tasks import Task
from ecgzoo.evaluation.metrics import multilabel_metrics
from ecgzoo.evaluation.task_scoring import scoring
from ecgzoo.report.examples import pick_examples_multi as pick_examples
from ecgzoo.report.report import metrics_markdown

TASK = Task.multi_label(["164889003", "426783006", "X"], {"164889003": "AF (atrial fibrillation)"})


def predictions_csv(ids, y, p, task, thresholds):
    return scoring(task).predictions_csv(task, ids, y, p, thresholds)


def test_predictions_csv_lists_true_and_thresholded_labels():
    y = np.array([[1, 0, 0], [0, 1, 1]])
    p = np.array([[0.9, 0.4, 0.1], [0.2, 0.7, 0.3]])
    text = predictions_csv(["a", "b"], y, p, TASK, [0.5, 0.35, 0.5])
    assert text.splitlines() == [
        "record,true,predicted,p_164889003,p_426783006,p_X",
        "a,164889003,164889003|426783006,0.90000,0.40000,0.10000",
        "b,426783006|X,426783006,0.20000,0.70000,0.30000",
    ]


def test_predictions_csv_quotes_record_ids_with_commas_quotes_and_line_breaks():
    """Lines were joined by hand: the id 'patient 3, visit 2' split into two cells and shifted every column."""
    ids = ["patient 3, visit 2", 'say "hi"', "two\nlines"]
    y = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]])
    p = np.array([[0.9, 0.4, 0.1], [0.2, 0.7, 0.3], [0.1, 0.1, 0.1]])
    rows = list(csv.reader(io.StringIO(predictions_csv(ids, y, p, TASK, [0.5, 0.35, 0.5]))))
    assert [r[0] for r in rows[1:]] == ids and {len(r) for r in rows} == {6}
    assert rows[1][1:] == ["164889003", "164889003|426783006", "0.90000", "0.40000", "0.10000"]
    assert rows[3][1:3] == ["", ""]  # no label, none predicted


def test_metrics_markdown_has_a_row_per_class_with_names_and_undefined_values_marked():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    p = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.2], [0.6, 0.7, 0.1]])
    text = metrics_markdown(multilabel_metrics(y, p, TASK.classes, names=TASK.names))
    assert "macro AUROC **1.000**" in text and "CinC 2021 challenge score" in text
    assert "| 164889003 | AF (atrial fibrillation) | 1.000 |" in text
    assert "| X | X | n/a | n/a | n/a | n/a | 0.500 | 0 |" in text


def test_examples_are_confident_true_positives_per_class_and_counts_per_label():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    p = np.array([[0.6, 0.1, 0.0], [0.9, 0.2, 0.0], [0.1, 0.8, 0.0]])
    assert pick_examples(y, p, 1) == [(1, 0), (2, 1)]
    assert TASK.class_counts(y) == {"164889003": 2, "426783006": 2, "X": 0}
