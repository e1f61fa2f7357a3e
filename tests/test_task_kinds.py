"""Single- and multi-label are two task classes that own their differences; nobody else tests the kind.

The scan reads every module of ecgzoo/ and plugins/ with `ast` and flags what branches on the kind of a
task: the attribute `multi`, `isinstance(..., <a task class>)`, and comparisons with the kind names
('single-label', 'multi-label', SINGLE, MULTI). Only the task module and its three companions (the
scoring, the report and the training parts of each kind) may do that.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import ecgzoo
from ecgzoo.core.registry import get_registry
from ecgzoo.core.tasks import MultiLabelTask, SingleLabelTask, Task
from ecgzoo.evaluation.metrics import multilabel_metrics
from ecgzoo.evaluation.task_scoring import scoring

REPO = Path(__file__).resolve().parent.parent
#: the modules that may branch on the kind: the task classes and the tables from a kind to its scoring,
#: report and training parts
TASK_MODULES = {"ecgzoo/core/tasks.py", "ecgzoo/evaluation/task_scoring.py", "ecgzoo/report/task_report.py",
                "ecgzoo/training/task_training.py"}
TASK_CLASSES = {"Task", "SingleLabelTask", "MultiLabelTask"}
KIND_NAMES = {"single-label", "multi-label"}


def kind_branches(tree: ast.AST) -> list[str]:
    """'line N: what' for every branch on a task's kind in one module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "multi":
            found.append(f"line {node.lineno}: .multi")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance" \
                and len(node.args) == 2:
            names = {n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in ast.walk(node.args[1])}
            if names & TASK_CLASSES:
                found.append(f"line {node.lineno}: isinstance on a task class")
        elif isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                if (isinstance(side, ast.Constant) and side.value in KIND_NAMES) or \
                        (isinstance(side, ast.Name) and side.id in ("SINGLE", "MULTI")):
                    found.append(f"line {node.lineno}: compares with the kind name")
    return found


def test_no_module_outside_the_task_module_branches_on_the_kind():
    offenders = {}
    for path in sorted([*(REPO / "ecgzoo").rglob("*.py"), *(REPO / "plugins").rglob("*.py")]):
        rel = path.relative_to(REPO).as_posix()
        if rel in TASK_MODULES:
            continue
        found = kind_branches(ast.parse(path.read_text(encoding="utf-8"), rel))
        if found:
            offenders[rel] = found
    assert offenders == {}, "ask the task (ecgzoo.core.tasks) or its scoring/report parts instead"


def test_the_scan_sees_each_way_of_branching():
    code = ("if task.multi: pass\nif isinstance(t, tasks.MultiLabelTask): pass\n"
            "if m.get('task') == 'multi-label': pass\nif k is MULTI: pass\nx = task.loss\n")
    assert kind_branches(ast.parse(code)) == ["line 1: .multi", "line 2: isinstance on a task class",
                                              "line 3: compares with the kind name", "line 4: compares with the kind name"]


def test_a_task_is_the_class_of_its_kind_and_round_trips():
    single, multi = Task("single-label", ("N", "A")), Task.from_json({"kind": "multi-label", "classes": ["x", "y"]})
    assert type(single) is SingleLabelTask and type(multi) is MultiLabelTask and Task.single_label(["N", "A"]) == single
    assert Task.from_json(multi.to_json()) == multi and type(Task.from_json(None, ["N"])) is SingleLabelTask
    assert (single.headline_metric, multi.headline_metric) == ("challenge_f1", "macro_auroc")
    with pytest.raises(ValueError, match="task kind must be"):
        Task("regression", ("a",))


def test_each_task_decides_counts_and_relabels_its_own_way():
    probs = np.array([[0.2, 0.7, 0.6], [0.5, 0.1, 0.4]])
    single, multi = Task.single_label(["a", "b", "c"]), Task.multi_label(["a", "b", "c"])
    assert single.chosen(probs[0]) == [1] and multi.chosen(probs[0]) == [1, 2] and multi.chosen(probs[1], [0.6] * 3) == []
    assert single.class_counts(np.array([0, 2, 2])) == {"a": 1, "b": 0, "c": 2}
    assert multi.class_counts(np.array([[1, 0, 1], [1, 0, 0]])) == {"a": 2, "b": 0, "c": 1}
    assert single.has_records(np.array([0, 2])).tolist() == [True, False, True]
    np.testing.assert_array_equal(multi.relabel(np.array([[1, 1]]), np.array([2, 0])), [[1, 0, 1]])
    np.testing.assert_array_equal(single.relabel(np.array([0, 1]), np.array([2, 0])), [2, 0])
    assert multi.thresholds(None) == [0.5] * 3 and single.thresholds(None) is None


class _ThirdPartyScore:
    """A dataset plugin of someone else's, bringing its challenge's score through the hook."""

    @ecgzoo.hookimpl
    def ecgzoo_task_scores(self, task, targets, probabilities, decisions):
        if task.classes != ("p", "q"):
            return None
        return {"exact_rows": ("rows all right", float((targets == decisions).all(1).mean()))}


def test_a_dataset_plugin_adds_its_own_score_through_the_hook():
    reg = get_registry()
    reg.register(_ThirdPartyScore(), "third-party-score")
    try:
        y, p = np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.8, 0.3]])
        metrics = scoring(Task.multi_label(["p", "q"])).metrics(Task.multi_label(["p", "q"]), y, p)
        assert metrics["exact_rows"] == 0.5 and metrics["extra_score_names"] == {"exact_rows": "rows all right"}
        assert "rows all right 0.500" in scoring(Task.multi_label(["p", "q"])).headline(metrics)
        assert "exact_rows" not in multilabel_metrics(y, p, ["r", "s"])  # another task: the plugin adds nothing
    finally:
        reg.unregister("third-party-score")


class _Clash:
    @ecgzoo.hookimpl
    def ecgzoo_task_scores(self, task, targets, probabilities, decisions):
        return {"macro_auroc": ("mine", 1.0)}


def test_a_plugin_score_may_not_replace_one_of_ecgzoos():
    reg = get_registry()
    reg.register(_Clash(), "clash-score")
    try:
        with pytest.raises(ValueError, match="'macro_auroc'"):
            multilabel_metrics(np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.1, 0.7]]), ["p", "q"])
    finally:
        reg.unregister("clash-score")


def test_published_weights_are_read_through_their_task_old_manifests_included():
    """`ecgzoo list --pretrained` and the model card take the headline key from the task (`headline_metric`);
    manifests published before the shipped figures named their task are told apart by their per-class figures."""
    from types import SimpleNamespace

    from ecgzoo.cli.cmd_list import _test_figure
    from ecgzoo.report.task_report import task_of_manifest

    single = {"challenge_f1": 0.8, "challenge_f1_ci95": [0.7, 0.9], "n": 10, "f1": {"N": 0.9}}
    multi = {"macro_auroc": 0.9, "macro_auroc_ci95": [0.85, 0.95], "n": 20, "per_class": {}}
    for figures, kind, line in ((single, "single-label", "challenge F1 0.800 [0.700, 0.900] on 10 records"),
                                (multi, "multi-label", "macro AUROC 0.900 [0.850, 0.950] on 20 records")):
        for named in (figures, {**figures, "task": kind}):  # 0.1 manifests, and those naming their task
            m = SimpleNamespace(classes=["N", "A"], metrics={"test": named, "validation": {}})
            assert task_of_manifest(m).kind == kind and _test_figure(m) == line
    assert _test_figure(SimpleNamespace(classes=["N", "A"], metrics={})) == "-"
