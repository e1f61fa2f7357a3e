"""Metrics of both kinds of task against hand computations: single-label from a confusion matrix computed by
hand; multi-label (AUROC, F1, F-max, thresholds, bootstrap; the CinC 2021 score, the cinc2021 plugin's, through
the `ecgzoo_task_scores` hook in the metrics of a task over its codes); and the multi-label training
objective (loss against torch's reference, positive weights, validation figures, selection)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgzoo.core.tasks import bce_loss, pos_weights
from ecgzoo.evaluation.metrics import (
    auroc_per_class,
    bootstrap_interval,
    bootstrap_macro_auroc,
    choose_thresholds,
    classification_metrics,
    confusion_matrix,
    f1_per_class,
    f_max,
    figure_text,
    macro_auroc,
    metrics_from_confusion,
    multilabel_metrics,
    selection_score,
    validation_figures,
)

# rows true, columns predicted; classes N, A, O, ~
HAND = [[5, 1, 0, 0], [2, 3, 0, 0], [0, 1, 2, 1], [0, 0, 0, 1]]
CLASSES = ["N", "A", "O", "~"]
#: what PhysioNet 2017 declares (`scored_classes`): its F1 averages N, A, O; the core has no default
SCORED = ("N", "A", "O")


def _pairs(matrix):
    t, p = [], []
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            t += [i] * n
            p += [j] * n
    order = np.random.default_rng(0).permutation(len(t))
    return np.array(t)[order], np.array(p)[order]


def test_metrics_match_hand_computation():
    m = classification_metrics(*_pairs(HAND), CLASSES, SCORED)
    assert m["confusion"] == HAND
    assert m["n"] == 16
    assert m["accuracy"] == pytest.approx(11 / 16)
    n, a, o, noisy = (m["per_class"][c] for c in CLASSES)
    assert (n["precision"], n["recall"], n["f1"]) == pytest.approx((5 / 7, 5 / 6, 10 / 13))
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((3 / 5, 3 / 5, 3 / 5))
    assert (o["precision"], o["recall"], o["f1"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert (noisy["precision"], noisy["recall"], noisy["f1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert [m["per_class"][c]["support"] for c in CLASSES] == [6, 5, 4, 1]
    # the noisy class is classified but not averaged
    assert m["challenge_f1"] == pytest.approx((10 / 13 + 3 / 5 + 2 / 3) / 3)
    assert m["challenge_classes"] == ["N", "A", "O"]
    assert m["macro_f1"] == pytest.approx((10 / 13 + 3 / 5 + 2 / 3 + 2 / 3) / 4)
    assert m["macro_precision"] == pytest.approx((5 / 7 + 3 / 5 + 1 + 0.5) / 4)
    assert m["macro_recall"] == pytest.approx((5 / 6 + 3 / 5 + 0.5 + 1) / 4)


def test_without_declared_scored_classes_the_f1_averages_every_class_and_says_so():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["sinus", "afib"])
    # sinus: P 1, R 0.5, F1 2/3; afib: P 2/3, R 1, F1 0.8
    assert m["challenge_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["challenge_classes"] == ["sinus", "afib"]
    assert "over all classes" in m["challenge_f1_definition"] and "declares no scored classes" in m["challenge_f1_definition"]
    # N, A, O get no special treatment from the core: undeclared, the noisy class is averaged too
    m = classification_metrics(*_pairs(HAND), CLASSES)
    assert m["challenge_classes"] == CLASSES and m["challenge_f1"] == pytest.approx(m["macro_f1"])


def test_never_predicted_class_scores_zero_not_nan():
    m = classification_metrics([0, 1, 2], [0, 0, 0], ["N", "A", "O"])
    assert m["per_class"]["A"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["challenge_f1"] == pytest.approx((2 * 1 / (1 + 3)) / 3)


def test_summed_confusions_give_the_metrics_of_all_predictions():
    t, p = _pairs(HAND)
    halves = confusion_matrix(t[:7], p[:7], 4) + confusion_matrix(t[7:], p[7:], 4)
    assert metrics_from_confusion(halves, CLASSES) == classification_metrics(t, p, CLASSES)


@pytest.mark.parametrize(
    ("t", "p", "message"),
    [([0, 1], [0], "equal length"), ([0, 4], [0, 1], "class index 4, expected 0..3"), ([0.5], [0], "integer"), ([], [], "empty")],
)
def test_bad_input_is_a_clear_error(t, p, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(np.array(t), np.array(p), CLASSES)


def test_a_scored_class_in_neither_labels_nor_predictions_is_undefined_not_zero():
    """The official 2017 scoring: F1o = 2*0 / (0 + 0), undefined (NaN there), never 0."""
    m = classification_metrics([0, 0, 1, 3], [0, 1, 1, 3], CLASSES, SCORED)  # no O in the labels, none predicted
    # by hand: N 2*1/(2+1), A 2*1/(1+2), ~ 2*1/(1+1); O 0/0
    assert m["per_class"]["O"]["f1"] is None
    assert m["per_class"]["A"]["f1"] == pytest.approx(2 / 3) and m["per_class"]["~"]["f1"] == pytest.approx(1.0)
    assert m["challenge_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)  # the mean over N and A, not (2/3 + 2/3 + 0) / 3
    assert m["challenge_classes"] == ["N", "A", "O"]
    assert "F1 undefined for O" in m["challenge_f1_definition"] and "0/0" in m["challenge_f1_definition"]
    assert "over the 2 class(es) whose F1 is defined" in m["challenge_f1_definition"]
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_no_scored_class_defined_gives_an_undefined_challenge_f1_and_interval():
    m = classification_metrics([3, 3], [3, 3], CLASSES, SCORED)  # only noisy records, all predicted noisy
    assert m["challenge_f1"] is None and m["macro_f1"] == pytest.approx(1.0)
    assert "F1 undefined for N, A, O" in m["challenge_f1_definition"]
    assert bootstrap_interval([3, 3], [3, 3], CLASSES, resamples=20, scored=SCORED) == (None, None)


def test_undefined_figures_read_undefined_in_text_and_null_in_json():
    from ecgzoo._infra.jsonio import dumps
    from ecgzoo.report.report import metrics_markdown
    from ecgzoo.serving.publish import _figures

    m = classification_metrics([0, 0, 1, 3], [0, 1, 1, 3], CLASSES, SCORED)
    assert figure_text(None) == "undefined" and figure_text(0.5) == "0.500"
    assert "| O | 0.000 | 0.000 | undefined | 0 |" in metrics_markdown(m)
    assert '"f1": null' in dumps(m["per_class"]["O"])
    assert _figures(m)["f1"]["O"] is None


# --- multi-label ---

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
    rng = np.random.default_rng(3)
    y = (rng.random((400, 3)) < 0.3).astype(int)
    probs = np.clip(0.35 * y + 0.65 * rng.random((400, 3)), 0, 1)
    lo, hi = bootstrap_macro_auroc(y, probs, resamples=200)
    assert lo < macro_auroc(y, probs) < hi
    assert (lo, hi) == bootstrap_macro_auroc(y, probs, resamples=200)
    assert 0.02 < hi - lo < 0.15  # about 2 x 1.96 x 0.015 for 400 records


def test_bootstrap_macro_auroc_of_a_perfect_ranking_is_one():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 10)
    assert bootstrap_macro_auroc(y, y * 0.8 + 0.1, resamples=50) == (1.0, 1.0)


# --- the multi-label training objective ---

def test_balanced_positive_weights_are_negatives_over_positives():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    torch.testing.assert_close(pos_weights(y, "balanced"), torch.tensor([1 / 3, 3.0, 1.0]))
    assert pos_weights(y, "none") is None


def test_loss_is_bce_with_logits_with_and_without_positive_weights():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 0.2, 1.5]])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    pw = torch.tensor([1.0, 3.0, 0.5])
    torch.testing.assert_close(bce_loss(logits, y), torch.nn.BCEWithLogitsLoss()(logits, y))
    torch.testing.assert_close(bce_loss(logits, y, pw), torch.nn.BCEWithLogitsLoss(pos_weight=pw)(logits, y))
    torch.testing.assert_close(bce_loss(logits, y, reduction="sum"), bce_loss(logits, y) * 2)


def test_validation_figures_and_selection():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.1, 0.3]])
    fig = validation_figures(y, p)
    assert fig["macro_auroc"] == pytest.approx(1.0) and fig["macro_f1"] == pytest.approx(1.0)
    assert selection_score(fig, 0.3, "macro_auroc") == pytest.approx(1.0)
    assert selection_score(fig, 0.3, "challenge_f1") == pytest.approx(1.0)  # single-label name -> macro AUROC
    assert selection_score(fig, 0.3, "loss") == pytest.approx(-0.3)
    assert selection_score({"macro_auroc": None}, 0.3, "macro_auroc") == float("-inf")
