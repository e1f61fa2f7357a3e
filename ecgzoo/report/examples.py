"""The example maps of a run's report: validation records explained with the run's explainer.

Single-label (`examples_single`): one record per true class, the map for the predicted class,
with an interactive view. Multi-label (`examples_multi`): the most confident true positives of
the most frequent classes, the map for that class, per lead on ECG paper. Which one a run uses is
the task's (`ecgzoo.report.task_report.report_for(task).examples`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgzoo._infra.files import safe_filename, save_figure
from ecgzoo.core.create import create_explainer
from ecgzoo.core.model import EcgModel
from ecgzoo.core.tasks import Task
from ecgzoo.report.viewer import write_viewer

Figure = tuple[str, ...]  # (caption, path relative to the report[, interactive view relative to the report])
#: explanation pictures of a multi-label run are drawn for at most this many classes (the most frequent in validation)
MAX_EXAMPLE_CLASSES = 6


def pick_examples_single(labels: np.ndarray, probs: np.ndarray, per_class: int) -> list[int]:
    """Positions of up to `per_class` records per true class: confident correct ones first, then the rest."""
    chosen: list[int] = []
    pred = probs.argmax(1)
    for c in range(probs.shape[1]):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        order = sorted(idx, key=lambda i: (pred[i] != c, -probs[i, c]))
        chosen.extend(int(i) for i in order[:per_class])
    return chosen


def examples_single(
    folder: Path, model: EcgModel, prepared: Any, positions: np.ndarray, probs: np.ndarray,
    task: Task, explainer_name: str, explainer_options: dict[str, Any], per_class: int, device: str,
) -> list[Figure]:
    """One attribution picture per class (explainer target: the predicted class) under folder/figures."""
    classes = list(task.classes)
    from ecgzoo.report.figures import plot_attribution
    from ecgzoo.report.map_units import sums_to

    if per_class <= 0:
        return []
    explainer = create_explainer(explainer_name, **explainer_options)
    positions = np.asarray(positions)
    labels = np.asarray(prepared.labels)[positions]
    figures: list[Figure] = []
    units = getattr(prepared, "units", None) or "a.u."
    for k in pick_examples_single(labels, probs, per_class):
        i = int(positions[k])
        signal = np.array(prepared.signals[i], dtype=np.float32)  # a writable copy of one memory-mapped record
        vl = int(prepared.valid_lengths[i])
        x = torch.from_numpy(signal)[None].to(device)
        attribution = explainer.explain(model, x, None, torch.tensor([vl], device=device), fs=float(prepared.fs))
        attribution = attribution.detach().float().cpu().numpy()[0]
        true, pred = classes[int(labels[k])], classes[int(probs[k].argmax())]
        rid = str(prepared.record_ids[i])
        fig = plot_attribution(signal, float(prepared.fs), attribution, valid_length=vl, title=rid, units=units,
                               true_label=true, predicted_label=pred, explainer=explainer_name, sums_to=sums_to(explainer, model),
                               probabilities={c: float(p) for c, p in zip(classes, probs[k], strict=True)})
        rel = f"figures/explain_{explainer_name}_{safe_filename(true)}_{safe_filename(rid)}.png"
        save_figure(folder / rel, fig)
        view = f"views/{safe_filename(rid)}.html"
        write_viewer(folder / view, title=f"{rid}: {pred} explained", signal=signal[:, :vl], fs=float(prepared.fs),
                     units=units, maps={explainer_name: attribution[:vl]}, classes=classes,
                     windows=[(0.0, vl / float(prepared.fs), probs[k])],
                     facts={"record": rid, "true class": true, "predicted (explained) class": pred,
                            "rate": f"{float(prepared.fs):g} Hz", "leads": signal.shape[0], "units": units,
                            "model": f"{type(model).__name__} ({sum(q.numel() for q in model.parameters()):,} parameters)",
                            "preprocessing": "the run's pipeline (report.md, Settings)",
                            "explainer": f"{explainer_name} {explainer_options or ''}"})
        figures.append((f"{explainer_name} map of {rid} (true {true}, predicted {pred})", rel, view))
    return figures


def pick_examples_multi(targets: np.ndarray, probs: np.ndarray, per_class: int) -> list[tuple[int, int]]:
    """(position, class) pairs: for each class with positives, its most confident true positives first."""
    targets = np.asarray(targets).astype(bool)
    chosen: list[tuple[int, int]] = []
    for c in range(targets.shape[1]):
        idx = np.flatnonzero(targets[:, c])
        for i in sorted(idx, key=lambda i: -probs[i, c])[:per_class]:
            chosen.append((int(i), c))
    return chosen


def examples_multi(folder: Path, model: EcgModel, prepared: Any, positions: np.ndarray, probs: np.ndarray,
                   task: Task, explainer_name: str, explainer_options: dict[str, Any], per_class: int,
                   device: str) -> list[tuple[str, str]]:
    """Per-lead pictures of confident true positives of the most frequent classes (target: that class)."""
    from ecgzoo.report.figures import plot_attribution
    from ecgzoo.report.figures_leads import plot_leads
    from ecgzoo.report.map_units import sums_to

    if per_class <= 0:
        return []
    explainer = create_explainer(explainer_name, **explainer_options)
    positions = np.asarray(positions)
    targets = np.asarray(prepared.labels)[positions]
    frequent = set(np.argsort(-targets.sum(axis=0), kind="stable")[:MAX_EXAMPLE_CLASSES].tolist())
    figures = []
    for k, c in pick_examples_multi(targets, probs, per_class):
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
                             explainer=explainer_name, per_lead=explainer.per_lead, sums_to=sums_to(explainer, model))
        else:
            attr = explainer.explain(model, x, target, lengths, fs=float(prepared.fs))[0].detach().float().cpu().numpy()
            fig = plot_attribution(signal, float(prepared.fs), attr, valid_length=vl, title=title, explainer=explainer_name,
                                   sums_to=sums_to(explainer, model))
        rel = f"figures/explain_{explainer_name}_{_safe(cls)}_{_safe(rid)}.png"
        save_figure(folder / rel, fig)
        figures.append((f"{explainer_name} map of {rid} for {cls} ({task.name(cls)})", rel))
    return figures


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
