"""The multi-label training objective: loss against torch's reference, positive weights, selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgzoo.training.multilabel_training import loss, pos_weights, selection_score, validation_figures


def test_balanced_positive_weights_are_negatives_over_positives():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    torch.testing.assert_close(pos_weights(y, "balanced"), torch.tensor([1 / 3, 3.0, 1.0]))
    assert pos_weights(y, "none") is None


def test_loss_is_bce_with_logits_with_and_without_positive_weights():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 0.2, 1.5]])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    pw = torch.tensor([1.0, 3.0, 0.5])
    torch.testing.assert_close(loss(logits, y), torch.nn.BCEWithLogitsLoss()(logits, y))
    torch.testing.assert_close(loss(logits, y, pw), torch.nn.BCEWithLogitsLoss(pos_weight=pw)(logits, y))
    torch.testing.assert_close(loss(logits, y, reduction="sum"), loss(logits, y) * 2)


def test_validation_figures_and_selection():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.1, 0.3]])
    fig = validation_figures(y, p)
    assert fig["macro_auroc"] == pytest.approx(1.0) and fig["macro_f1"] == pytest.approx(1.0)
    assert selection_score(fig, 0.3, "macro_auroc") == pytest.approx(1.0)
    assert selection_score(fig, 0.3, "challenge_f1") == pytest.approx(1.0)  # single-label name -> macro AUROC
    assert selection_score(fig, 0.3, "loss") == pytest.approx(-0.3)
    assert selection_score({"macro_auroc": None}, 0.3, "macro_auroc") == float("-inf")
