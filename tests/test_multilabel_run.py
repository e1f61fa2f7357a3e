"""Thresholds chosen on validation are stored in the checkpoint; examples are drawn per lead."""

from __future__ import annotations

import numpy as np

import ecgzoo
from ecgzoo.core.tasks import Task
from ecgzoo.data.prepared import Prepared
from ecgzoo.evaluation.metrics import choose_thresholds
from ecgzoo.evaluation.task_scoring import scoring
from ecgzoo.models.checkpoint import load_checkpoint, model_from_checkpoint
from ecgzoo.report.examples import examples_multi as explanation_examples
from ecgzoo.serving.run_dir import RunDir
from ecgzoo.training.runner import save_best

TASK = Task.multi_label(["A", "B", "C"], {"A": "class a"})


def test_thresholds_are_chosen_on_validation_and_stored_with_the_checkpoint(tmp_path):
    model = ecgzoo.create_model("inception1d", num_classes=3, in_leads=2, depth=3, filters=2, bottleneck=2)
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    p = np.array([[0.8, 0.3, 0.1], [0.4, 0.6, 0.2], [0.55, 0.7, 0.1], [0.2, 0.1, 0.3]])
    score = scoring(TASK)
    thresholds = score.choose_thresholds(TASK, y, p)
    metrics = score.metrics(TASK, y, p, thresholds)
    np.testing.assert_array_equal(thresholds, choose_thresholds(y, p))
    result = ecgzoo.FitResult(epochs=[ecgzoo.EpochRecord(3, 0.5, 0.6, {"macro_auroc": 0.7}, best=True)],
                              best_state=model.state_dict(), best_epoch=3)
    path = save_best(RunDir.create(tmp_path, "run"), model, result, TASK, thresholds)
    _, meta = load_checkpoint(path)
    assert meta["thresholds"] == list(thresholds) and meta["epoch"] == 3 and Task.from_json(meta["task"]) == TASK
    assert [metrics["per_class"][c]["threshold"] for c in TASK.classes] == list(thresholds)
    model_from_checkpoint(path)  # still loads


def test_examples_are_per_lead_pictures_of_true_positives(tmp_path):
    model = ecgzoo.create_model("inception1d", num_classes=3, in_leads=12, depth=3, filters=2, bottleneck=2).eval()
    rng = np.random.default_rng(0)
    prepared = Prepared(signals=rng.normal(size=(3, 12, 200)).astype(np.float32),
                        labels=np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], np.uint8), valid_lengths=np.full(3, 200),
                        record_ids=["r1", "r2", "r3"], classes=list(TASK.classes), fs=100.0, task=TASK,
                        lead_names=("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"))
    probs = np.array([[0.9, 0.1, 0.1], [0.2, 0.8, 0.1], [0.1, 0.1, 0.2]])
    figures = explanation_examples(tmp_path, model, prepared, np.arange(3), probs, TASK, "saliency", {}, 1, "cpu")
    assert [rel for _, rel in figures] == ["figures/explain_saliency_A_r1.png", "figures/explain_saliency_B_r2.png"]
    assert all((tmp_path / rel).stat().st_size > 10_000 for _, rel in figures)
    assert "for A (class a)" in figures[0][0]
