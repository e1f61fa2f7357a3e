"""What each kind of task puts in a report: the metrics table, the test section, the headline, the
example maps and the sentence that introduces them.

`report_for(task)` is the only place that maps a task to its report parts; `ecgzoo.report.report`
(a run's report.md) and `ecgzoo evaluate` ask it and never test the task's kind. The metrics
dictionaries read here are those of `ecgzoo.evaluation.task_scoring`.
"""

from __future__ import annotations

import abc
from typing import Any

from ecgzoo.core.tasks import MULTI, SINGLE, Task
from ecgzoo.evaluation.metrics import figure_or_na, figure_text, multilabel_headline
from ecgzoo.evaluation.task_scoring import scoring
from ecgzoo.report.examples import examples_multi, examples_single


class TaskReport(abc.ABC):
    """The report parts of one kind of task; `report_for(task)` picks it."""

    #: the report's sentence introducing the example maps ({explainer}: the explainer's name)
    examples_text = ""
    #: (history key of the selection figure, its axis label, the loss axis label) of the training curves
    curves = ("", "", "")
    #: draws the example maps: (folder, model, prepared, positions, probs, task, explainer, options, per class, device)
    examples = staticmethod(examples_single)

    @abc.abstractmethod
    def scores(self, metrics: dict[str, Any]) -> str:
        """The report's first line on validation scores."""

    @abc.abstractmethod
    def metrics_markdown(self, metrics: dict[str, Any]) -> str:
        """Headline, per-class table (and the confusion matrix of a single-label task) as Markdown."""

    @abc.abstractmethod
    def test_markdown(self, test: dict[str, Any]) -> str:
        """The test-split section of a report."""

    @abc.abstractmethod
    def card_figures(self, task: Task, test: dict[str, Any], val: dict[str, Any], training: dict[str, Any]) -> str:
        """The model card's section on how good published weights are, from the manifest's shipped figures
        (`TaskScoring.shipped` of the test and validation splits) and its `training` facts."""


class SingleLabelReport(TaskReport):
    examples_text = """One validation record per class (a correctly classified one where there is one), with the
`{explainer}` attribution for the predicted class drawn under the trace."""
    curves = ("challenge_f1", "challenge F1", "loss (weighted cross-entropy)")

    def scores(self, metrics: dict[str, Any]) -> str:
        return f"validation challenge F1\n**{figure_text(metrics['challenge_f1'])}**, accuracy **{metrics['accuracy']:.3f}**"

    def metrics_markdown(self, metrics: dict[str, Any]) -> str:
        classes = metrics["classes"]
        lines = [
            f"**Challenge F1 {figure_text(metrics['challenge_f1'])}** ({metrics['challenge_f1_definition']}), "
            f"accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f}, n = {metrics['n']} records.",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for c in classes:
            m = metrics["per_class"][c]
            lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {figure_text(m['f1'])} | {m['support']} |")
        lines += ["", "Confusion matrix (rows: true class, columns: predicted):", "",
                  "| true \\ predicted | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
        for c, row in zip(classes, metrics["confusion"], strict=True):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        return "\n".join(lines)

    def test_markdown(self, test: dict[str, Any]) -> str:
        lo, hi = test["challenge_f1_ci95"]
        return f"""
## Test metrics (held-out split, best checkpoint)

These {test['n']} records were set aside before training and never used for training or for
choosing the epoch; challenge F1 **{figure_text(test['challenge_f1'])}**, 95% bootstrap interval
{figure_text(lo)}-{figure_text(hi)} ({test['bootstrap_resamples']} resamples of the records). Per-record predictions:
`predictions_test.csv`.

{self.metrics_markdown(test)}
"""

    def card_figures(self, task: Task, test: dict[str, Any], val: dict[str, Any], training: dict[str, Any]) -> str:
        key, name = task.headline_metric, scoring(task).headline_name
        per_class = " | ".join(f"{c} {figure_or_na(f)}" for c, f in test.get("f1", {}).items())
        ci = test.get(f"{key}_ci95", [float("nan")] * 2)
        averaged = test.get("challenge_classes")  # manifests published before it was kept: the dataset's scored classes
        averaged = f"the F1 of {', '.join(averaged)}" if averaged else "the F1 of the classes the dataset scores"
        return f"""## How good, on what
- Test split: {training.get('test_records')} records never used for training or for choosing the epoch:
  {name} **{figure_text(test.get(key))}** (95% bootstrap interval {figure_text(ci[0])}-{figure_text(ci[1])}),
  accuracy {test.get('accuracy', float('nan')):.3f}; F1 per class: {per_class}.
- Validation split ({training.get('val_records')} records, used to choose the epoch): {name}
  {figure_text(val.get(key))}.
- {name[0].upper() + name[1:]} is the mean of {averaged} (other classes are classified but not averaged).
  These records come from the public training set of the challenge; the hidden test set of the
  challenge was not available, so figures there may differ.
"""


class MultiLabelReport(TaskReport):
    examples_text = """The most confident true positives of the most frequent classes in validation, each with the map
for that class; multi-lead records on calibrated ECG paper, one map per lead where the explainer tells
leads apart."""
    curves = ("macro_auroc", "macro AUROC", "loss (binary cross-entropy)")
    examples = staticmethod(examples_multi)

    def scores(self, metrics: dict[str, Any]) -> str:
        return f"multi-label validation {multilabel_headline(metrics)}"

    def metrics_markdown(self, metrics: dict[str, Any]) -> str:
        """Headline and the per-class table (name, AUROC, F1, precision, recall at its threshold, support)."""
        lines = [multilabel_headline(metrics) + ".", "",
                 "n/a: undefined on this split (AUROC needs positives and negatives; F1 a present or predicted class).", "",
                 "| class | name | AUROC | F1 | precision | recall | threshold | support |", "|---|---|---|---|---|---|---|---|"]
        for c in metrics["classes"]:
            m = metrics["per_class"][c]
            lines.append(f"| {c} | {m['name']} | {figure_or_na(m['auroc'])} | {figure_or_na(m['f1'])} | "
                         f"{figure_or_na(m['precision'])} | {figure_or_na(m['recall'])} | {m['threshold']:.3f} | {m['support']} |")
        return "\n".join(lines)

    def test_markdown(self, test: dict[str, Any]) -> str:
        return f"""
## Test metrics (held-out split, best checkpoint, thresholds from validation)

These {test['n']} records were set aside before training and never used for training, for choosing
the epoch or for choosing the thresholds. Per-record predictions: `predictions_test.csv`.

{self.metrics_markdown(test)}
"""

    def card_figures(self, task: Task, test: dict[str, Any], val: dict[str, Any], training: dict[str, Any]) -> str:
        key, name = task.headline_metric, scoring(task).headline_name
        lo, hi = test.get(f"{key}_ci95", [float("nan")] * 2)
        rows = "\n".join(f"| {c} | {r['name']} | {figure_or_na(r['auroc'])} | {figure_or_na(r['f1'])} | {r['threshold']:.3f} | "
                         f"{r['support']} |" for c, r in test.get("per_class", {}).items())
        return f"""## How good, on what
- Test split: {training.get('test_records')} records never used for training, for choosing the epoch or the thresholds:
  {name} **{figure_or_na(test.get(key))}** (95% bootstrap interval {lo:.3f}-{hi:.3f},
  {test.get('bootstrap_resamples', 1000)} resamples of the records), F-max {figure_or_na(test.get('f_max'))},
  macro F1 at the stored thresholds {figure_or_na(test.get('macro_f1'))}.
- Validation split ({training.get('val_records')} records, used to choose the epoch and the per-class decision
  thresholds, each maximising that class's F1): {name} {figure_or_na(val.get(key))}.
- Per class on the test split (AUROC does not depend on the thresholds; n/a: no positive record):

| class | name | AUROC | F1 | threshold | support |
|---|---|---|---|---|---|
{rows}
"""


_REPORTS: dict[str, TaskReport] = {SINGLE: SingleLabelReport(), MULTI: MultiLabelReport()}


def report_for(task: Task) -> TaskReport:
    """The report parts of `task`'s kind."""
    return _REPORTS[task.kind]


def task_of_metrics(metrics: dict[str, Any]) -> Task:
    """The task a metrics dictionary was computed for (multi-label metrics say so under `task`)."""
    return Task(metrics.get("task", SINGLE), tuple(metrics["classes"]))


def task_of_manifest(manifest: Any) -> Task:
    """The task of published weights (`PretrainedManifest`): its classes, and the kind its shipped test (or
    validation) figures name under `task`; manifests published before they named it are multi-label where
    the figures are per class (`per_class`) and single-label otherwise."""
    figures = manifest.metrics.get("test") or manifest.metrics.get("validation") or {}
    return Task(figures.get("task", MULTI if "per_class" in figures else SINGLE), tuple(manifest.classes))
