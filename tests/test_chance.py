"""A run that ends at chance level says so: on stderr, in report.md and in metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from run_helpers import cli, register_toy, tiny_run_args

from ecgzoo.evaluation import chance

CLASSES = ["N", "A", "O"]


def test_always_the_majority_class_is_the_guess_and_is_at_chance():
    y = np.array([0, 0, 0, 1, 1, 2])
    check = chance.single_label(y, np.zeros(6, dtype=int), train_labels=np.array([0, 0, 1, 2]), classes=CLASSES)
    # always N: F1(N) = 2 * 0.5 * 1 / 1.5 = 2/3, F1(A) = F1(O) = 0 -> challenge F1 2/9, the model's own figure too
    assert check["guess_value"] == pytest.approx(2 / 9) and check["value"] == pytest.approx(2 / 9)
    assert check["guess"] == "always 'N', the training split's majority class" and check["at_chance"]
    text = chance.warning(check)
    assert text.startswith("this run is at chance level: validation challenge F1 0.222 (95% bootstrap interval ")
    assert "no better than guessing (always 'N', the training split's majority class: 0.222)" in text


def test_a_model_that_tells_the_classes_apart_gets_no_warning():
    y = np.tile([0, 1, 2], 20)
    check = chance.single_label(y, y, train_labels=y, classes=CLASSES)
    assert check["value"] == 1.0 and check["ci95"] == [1.0, 1.0] and not check["at_chance"]
    assert chance.warning(check) is None and chance.warning(None) is None


def test_multi_label_random_scores_are_at_chance_and_good_ones_are_not():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 3)) < 0.3).astype(np.uint8)
    noise = chance.multi_label(y, rng.random((200, 3)))
    assert noise["guess_value"] == 0.5 and noise["ci95"][0] <= 0.5 <= noise["ci95"][1] and noise["at_chance"]
    good = chance.multi_label(y, y * 0.6 + rng.random((200, 3)) * 0.5)
    assert good["ci95"][0] > 0.8 and not good["at_chance"] and chance.warning(good) is None
    assert "macro AUROC" in chance.warning(noise)


def test_a_run_at_chance_level_warns_on_stderr_and_in_the_report(tmp_path):
    register_toy()
    code, _, err = cli(*tiny_run_args(tmp_path, "chance", "trainer.lr=1e-12", "trainer.epochs=1", "report.examples_per_class=0"))
    assert code == 0, err
    assert "ecgzoo: warning: this run is at chance level: validation challenge F1 " in err
    report = (tmp_path / "chance" / "report.md").read_text()
    assert "> **Warning:** This run is at chance level: validation challenge F1 " in report
    check = json.loads((tmp_path / "chance" / "metrics.json").read_text())["chance"]
    assert check["at_chance"] and check["figure"] == "challenge_f1" and check["ci95"][0] <= check["guess_value"]
