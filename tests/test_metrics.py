"""Challenge metrics against a confusion matrix computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ecgzoo.evaluation.metrics import bootstrap_interval, classification_metrics, confusion_matrix, figure_text, metrics_from_confusion

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
