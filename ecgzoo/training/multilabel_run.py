"""The multi-label steps of `ecgzoo run` after training: thresholds, metrics, predictions, examples.

Called by the runner when the dataset's task is multi-label, on the best checkpoint's
probabilities for the validation split:

1. per-class thresholds are chosen on the validation split (`choose_thresholds`) and written
   into the best checkpoint's metadata (`thresholds`), where `ecgzoo predict` and
   `ecgzoo evaluate` read them back: the same decisions everywhere;
2. metrics (`multilabel_metrics`) at those thresholds. F1 on the split the thresholds were
   chosen on is optimistic; AUROC does not depend on thresholds. Score a held-out split
   (PTB-XL's fold 10: `ecgzoo evaluate RUN ptbxl --split test`) for an unbiased F1;
3. predictions.csv and explanation pictures for the most frequent classes (target: the class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgzoo._infra.files import save_figure
from ecgzoo.core.create import create_explainer
from ecgzoo.core.model import EcgModel
from ecgzoo.core.tasks import Task
from ecgzoo.evaluation.multilabel_metrics import choose_thresholds, multilabel_metrics, multilabel_metrics_with_interval
from ecgzoo.models.checkpoint import load_checkpoint, save_checkpoint
from ecgzoo.report.report_multilabel import pick_examples

#: explanation pictures are drawn for at most this many classes (the most frequent in validation)
MAX_EXAMPLE_CLASSES = 6


def store_thresholds(checkpoint: Path, model: EcgModel, task: Task, thresholds: np.ndarray) -> None:
    """Rewrite the best checkpoint (atomically) with the task and the chosen thresholds in its metadata."""
    _, meta = load_checkpoint(checkpoint)
    save_checkpoint(checkpoint, model, {**meta, "task": task.to_json(), "thresholds": [float(t) for t in thresholds]})


def validation_metrics(targets: np.ndarray, probs: np.ndarray, task: Task, checkpoint: Path,
                       model: EcgModel) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, thresholds): thresholds chosen on this split and stored with the checkpoint, metrics at them."""
    thresholds = choose_thresholds(targets, probs)
    store_thresholds(checkpoint, model, task, thresholds)
    metrics = multilabel_metrics(targets, probs, task.classes, thresholds, dict(task.names))
    metrics["thresholds_chosen_on"] = "this validation split (F1 optimistic here; AUROC does not depend on thresholds)"
    return metrics, thresholds


def results(run_dir: Any, model: EcgModel, prepared: Any, val_idx: np.ndarray, test_idx: np.ndarray,
            probs: np.ndarray, device: str, batch_size: int) -> dict[str, Any]:
    """Validation metrics at thresholds chosen there (stored with the best checkpoint), predictions.csv,
    and the test split scored at the same thresholds (predictions_test.csv) when the run kept one."""
    from ecgzoo.evaluation.scoring import predict_dataset
    from ecgzoo.report.report_multilabel import predictions_csv

    task = prepared.task
    targets = np.asarray(prepared.labels)
    metrics, thresholds = validation_metrics(targets[val_idx], probs, task, run_dir.path("checkpoints", "best.safetensors"), model)
    ids = [str(r) for r in prepared.record_ids]
    run_dir.write("predictions.csv", predictions_csv([ids[i] for i in val_idx], targets[val_idx], probs, task, thresholds))
    if len(test_idx):
        test_probs = predict_dataset(model, prepared.torch_dataset(test_idx), device, batch_size, task=task)
        test = multilabel_metrics_with_interval(targets[test_idx], test_probs, task.classes, thresholds, dict(task.names))
        metrics["test"] = {**test, "split": "test", "thresholds_chosen_on": "the validation split"}
        run_dir.write("predictions_test.csv",
                      predictions_csv([ids[i] for i in test_idx], targets[test_idx], test_probs, task, thresholds))
    return metrics


def explanation_examples(folder: Path, model: EcgModel, prepared: Any, positions: np.ndarray, probs: np.ndarray,
                         task: Task, explainer_name: str, explainer_options: dict[str, Any], per_class: int,
                         device: str) -> list[tuple[str, str]]:
    """Per-lead pictures of confident true positives of the most frequent classes (target: that class)."""
    from ecgzoo.report.figures import plot_attribution
    from ecgzoo.report.figures_leads import plot_leads

    if per_class <= 0:
        return []
    explainer = create_explainer(explainer_name, **explainer_options)
    positions = np.asarray(positions)
    targets = np.asarray(prepared.labels)[positions]
    frequent = set(np.argsort(-targets.sum(axis=0), kind="stable")[:MAX_EXAMPLE_CLASSES].tolist())
    figures = []
    for k, c in pick_examples(targets, probs, per_class):
        if c not in frequent:
            continue
        i = int(positions[k])
        signal = np.array(prepared.signals[i], dtype=np.float32)
        vl = int(prepared.valid_lengths[i])
        x = torch.from_numpy(signal)[None].to(device)
        target, lengths = torch.tensor([c], device=device), torch.tensor([vl], device=device)
        rid, cls = str(prepared.record_ids[i]), task.classes[c]
        title = f"{rid}: true {'|'.join(task.decode(targets[k]))}; map for {cls} ({task.name(cls)}) p = {probs[k, c]:.2f}"
        if signal.shape[0] > 1:
            attr = explainer.explain_leads(model, x, target, lengths, fs=float(prepared.fs))[0].detach().float().cpu().numpy()
            fig = plot_leads(signal, float(prepared.fs), attr, prepared.lead_names, valid_length=vl, title=title, units=prepared.units,
                             explainer=explainer_name, per_lead=explainer.per_lead)
        else:
            attr = explainer.explain(model, x, target, lengths, fs=float(prepared.fs))[0].detach().float().cpu().numpy()
            fig = plot_attribution(signal, float(prepared.fs), attr, valid_length=vl, title=title, explainer=explainer_name)
        rel = f"figures/explain_{explainer_name}_{_safe(cls)}_{_safe(rid)}.png"
        save_figure(folder / rel, fig)
        figures.append((f"{explainer_name} map of {rid} for {cls} ({task.name(cls)})", rel))
    return figures


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
