"""Multi-label metrics against hand computations; the CinC 2021 score (the cinc2021 plugin's, through the
`ecgzoo_task_scores` hook) in the metrics of a task over its codes."""

from __future__ import annotations

import numpy as np
import pytest

from ecgzoo.evaluation.multilabel_metrics import (
    auroc_per_class,
    choose_thresholds,
    f1_per_class,
    f_max,
    macro_auroc,
    multilabel_metrics,
)

AF, AFL, NSR = "164889003", "164890007", "426783006"


def test_auroc_hand_computed_with_ties_and_undefined_classes():
    y = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]])
    p = np.array([[0.1, 0.5, 0.3], [0.4, 0.5, 0.2], [0.35, 0.5, 0.1], [0.8, 0.2, 0.9]])
    auc = auroc_per_class(y, p)
    # class 0: positives 0.35, 0.8 vs negatives 0.1, 0.4 -> pairs won 1 + 2 = 3 of 4
    assert auc[0] == pytest.approx(0.75)
    # class 1: positives 0.5, 0.5 vs negatives 0.5, 0.2 -> (0.5 + 1) * 2 / 4
    assert auc[1] == pytest.approx(0.75)
    assert np.isnan(auc[2])  # no positives
    assert macro_auroc(y, p) == pytest.approx(0.75)


def test_auroc_equals_the_trapezoidal_roc_area():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (60, 1))
    p = np.round(rng.random((60, 1)), 1)  # many ties
    thresholds = np.r_[np.inf, np.unique(p)[::-1]]
    tpr = [((p[:, 0] >= t) & (y[:, 0] == 1)).sum() / y.sum() for t in thresholds]
    fpr = [((p[:, 0] >= t) & (y[:, 0] == 0)).sum() / (y == 0).sum() for t in thresholds]
    assert auroc_per_class(y, p)[0] == pytest.approx(np.trapezoid(tpr, fpr))


def test_f1_per_class_and_nan_when_neither_present_nor_predicted():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    d = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 0]])
    # class 0: TP 1, FN 1 -> 2/3; class 1: TP 2, FP 1 -> 4/5; class 2: nothing
    np.testing.assert_allclose(f1_per_class(y, d)[:2], [2 / 3, 4 / 5])
    assert np.isnan(f1_per_class(y, d)[2])


def test_f_max_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.3], [0.6, 0.7], [0.2, 0.8]])
    # t in (0.3, 0.6]: decisions [1,0],[1,1],[0,1]; precision (1 + 1/2 + 1)/3 = 5/6, recall (1 + 1 + 1/2)/3 = 5/6
    # t in (0.2, 0.3]: [1,1],[1,1],[0,1]: precision (1/2 + 1/2 + 1)/3, recall (1 + 1 + 1/2)/3 -> lower
    # t in (0.6, 0.7]: [1,0],[0,1],[0,1]: precision 1, recall (1 + 1 + 1/2)/3 = 5/6 -> F = 10/11
    best, t = f_max(y, p)
    assert best == pytest.approx(10 / 11) and 0.6 < t <= 0.7


def test_thresholds_chosen_on_validation_maximise_each_class_f1():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [1, 0]])
    p = np.array([[0.9, 0.1], [0.4, 0.2], [0.5, 0.3], [0.1, 0.4], [0.35, 0.5]])
    t = choose_thresholds(y, p)
    # class 0 sorted: 0.9+ 0.5- 0.4+ 0.35+ 0.1-: F1 at 0.9: 2/(1+3)=.5, 0.5: 2/5, 0.4: 4/6, 0.35: 6/7 -> 0.35
    assert t[0] == pytest.approx(0.35)
    assert t[1] == 0.5  # no positives: the default
    np.testing.assert_allclose(f1_per_class(y, p >= t)[0], 6 / 7)


def test_multilabel_metrics_report_uses_thresholds_and_reports_the_challenge_score():
    y = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]])
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.1, 0.9], [0.6, 0.3, 0.4], [0.1, 0.8, 0.3]])
    m = multilabel_metrics(y, p, [AF, AFL, NSR], thresholds=[0.5, 0.5, 0.35], names={AF: "atrial fibrillation"})
    assert m["macro_auroc"] == pytest.approx(1.0) and m["macro_f1"] == pytest.approx(1.0)
    assert m["challenge_score_2021"] == pytest.approx(1.0) and m["exact_match"] == 1.0
    assert m["per_class"][AF] == {"name": "atrial fibrillation", "auroc": 1.0, "f1": 1.0, "precision": 1.0,
                                  "recall": 1.0, "support": 2, "threshold": 0.5}
    assert "challenge_score_2021" not in multilabel_metrics(y, p, ["a", "b", "c"])
    with pytest.raises(ValueError, match="2 thresholds for 3 classes"):
        multilabel_metrics(y, p, ["a", "b", "c"], thresholds=[0.5, 0.5])


def test_bootstrap_macro_auroc_brackets_the_figure_and_is_reproducible():
    from ecgzoo.evaluation.multilabel_metrics import bootstrap_macro_auroc, macro_auroc

    rng = np.random.default_rng(3)
    y = (rng.random((400, 3)) < 0.3).astype(int)
    probs = np.clip(0.35 * y + 0.65 * rng.random((400, 3)), 0, 1)
    lo, hi = bootstrap_macro_auroc(y, probs, resamples=200)
    assert lo < macro_auroc(y, probs) < hi
    assert (lo, hi) == bootstrap_macro_auroc(y, probs, resamples=200)
    assert 0.02 < hi - lo < 0.15  # about 2 x 1.96 x 0.015 for 400 records


def test_bootstrap_macro_auroc_of_a_perfect_ranking_is_one():
    from ecgzoo.evaluation.multilabel_metrics import bootstrap_macro_auroc

    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 10)
    assert bootstrap_macro_auroc(y, y * 0.8 + 0.1, resamples=50) == (1.0, 1.0)
