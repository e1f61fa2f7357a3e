"""What the reference trainer optimises and measures: the weighted loss, the validation pass and each epoch's history row."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ecgzoo.plugin_api import bce_loss, class_weights, distributed, metrics_from_confusion, pos_weights, selection_score, validation_figures


def labels_of(dataset: torch.utils.data.Dataset) -> np.ndarray:
    """Class indices of all items: a `labels` attribute when the dataset has one, else by reading items."""
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    labels = getattr(dataset, "labels", None)
    if labels is not None and len(labels) == len(dataset):
        return np.asarray(labels, dtype=np.int64)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def loss_weights(cfg: Any, labels: np.ndarray, classes: list[str], multi: bool, device: torch.device) -> torch.Tensor | None:
    """Per-class weights of the loss from the training labels: cross-entropy class weights, or multi-label positive weights."""
    k = len(classes)
    if multi:
        weight = pos_weights(labels, cfg.pos_weight)
        return weight.to(device) if weight is not None else None
    if cfg.selection_metric in ("macro_auroc", "f_max"):
        raise ValueError(f"trainer option selection_metric={cfg.selection_metric!r} is for multi-label tasks; this task is single-label")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"training labels must be class indices 0..{k - 1} ({classes}), found {int(labels.max())}")
    weights = class_weights(labels, k) if cfg.class_weighting != "none" else np.ones(k, dtype=np.float32)
    if cfg.class_weighting == "sqrt-inverse-frequency":
        weights = np.sqrt(weights).astype(np.float32)
    return torch.tensor(weights, dtype=torch.float32, device=device)


def training_loss(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None, multi: bool, smoothing: float) -> torch.Tensor:
    """Multi-label: weighted binary cross-entropy; else each record's smoothed cross-entropy times its class weight, averaged."""
    if multi:
        return bce_loss(logits, y, weight)
    per_record = F.cross_entropy(logits.float(), y, reduction="none", label_smoothing=smoothing)
    return (per_record * weight[y]).mean()


def evaluate(loop: Any, model: torch.nn.Module, val: torch.utils.data.Dataset) -> tuple[float, Any]:
    """Weighted loss and confusion matrix of the whole validation split (each rank scores a shard);
    multi-label: loss and (targets, sigmoid probabilities) of every validation record, gathered from all ranks."""
    cfg, ctx, k, device, weight = loop.config, loop.ctx, len(loop.classes), loop.device, loop.weight
    shard = Subset(val, range(ctx.rank, len(val), ctx.world_size)) if ctx.enabled else val
    loader = DataLoader(shard, batch_size=cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers,
                        worker_init_fn=loop.worker_init_fn)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    cm = torch.zeros(k * k, dtype=torch.int64)
    outputs: list[tuple[np.ndarray, np.ndarray]] = []
    bar = tqdm(total=len(val), unit="rec", desc="validation", file=sys.stderr, dynamic_ncols=True, leave=False,
               disable=not (cfg.progress and ctx.is_main))
    with torch.no_grad():
        for x, y, vl in loader:
            bar.update(len(y) * ctx.world_size)
            x, y, vl = x.to(device), y.to(device), vl.to(device)
            with loop.autocast():
                logits = model(x, valid_length=vl)
            if loop.multi:
                loss_sum += bce_loss(logits, y, weight, reduction="sum").double().cpu()
                outputs.append((y.cpu().numpy(), torch.sigmoid(logits.float()).cpu().numpy()))
                continue
            loss_sum += (F.cross_entropy(logits.float(), y, reduction="none") * weight[y]).sum().double().cpu()
            cm += torch.bincount((y * k + logits.argmax(1)).cpu(), minlength=k * k)
    bar.close()
    model.train(was_training)
    totals = distributed.all_reduce_sum(torch.cat([loss_sum.reshape(1), torch.tensor([float(len(shard))], dtype=torch.float64)]))
    if loop.multi:
        parts = [part for rank in distributed.all_gather_objects(outputs) for part in rank]
        return float(totals[0] / totals[1]), (np.concatenate([t for t, _ in parts]), np.concatenate([p for _, p in parts]))
    cm = distributed.all_reduce_sum(cm)
    return float(totals[0] / totals[1]), cm.reshape(k, k).numpy()


def epoch_row(loop: Any, val: torch.utils.data.Dataset, lr: float, seconds: float, seen: int) -> dict[str, Any]:
    """Reduce the epoch's training figures, score the validation split, decide whether it is the best
    (then `loop.best_score`/`best_epoch` move to it); the history row, its validation metrics under "_val_metrics"."""
    running = loop.running
    train_tot = distributed.all_reduce_sum(torch.tensor([running["loss_sum"], float(running["count"])], dtype=torch.float64))
    train_cm = distributed.all_reduce_sum(torch.tensor(running["confusion"], dtype=torch.int64))
    val_loss, val_out = evaluate(loop, loop.model, val)
    train_loss = float(train_tot[0] / train_tot[1])
    if loop.multi:
        figures = validation_figures(*val_out)
        score = selection_score(figures, val_loss, loop.config.selection_metric)
        improved = loop.best_score is None or score > loop.best_score
        row = {"epoch": loop.epoch + 1, "lr": lr, "train_loss": train_loss, "val_loss": val_loss,
               **{f"val_{name}": value for name, value in figures.items()}, "best": improved, "_val_metrics": figures}
    else:
        row, score = _single_label_row(loop, lr, train_loss, train_cm.numpy(), val_loss, val_out)
        # an undefined figure (None: no scored class in the validation labels or predictions) beats nothing
        improved = loop.best_epoch is None or (score is not None and (loop.best_score is None or score > loop.best_score))
        row["best"] = improved
    if improved:
        loop.best_score, loop.best_epoch = score, loop.epoch + 1
    row["seconds"] = round(seconds, 3)
    row["records_per_s"] = round(seen * loop.ctx.world_size / seconds, 2) if seconds > 0 else None
    return row


def _single_label_row(loop: Any, lr: float, train_loss: float, train_cm: np.ndarray, val_loss: float,
                      val_cm: np.ndarray) -> tuple[dict[str, Any], float | None]:
    """A single-label epoch's row (without `best`) and its selection score."""
    classes = loop.classes
    train_m = metrics_from_confusion(train_cm, classes, loop.scored_classes)
    val_m = metrics_from_confusion(val_cm, classes, loop.scored_classes)
    metric = loop.config.selection_metric
    score = -val_loss if metric == "loss" else val_m[metric]
    return {
        "epoch": loop.epoch + 1, "lr": lr, "train_loss": train_loss, "train_accuracy": train_m["accuracy"],
        "train_challenge_f1": train_m["challenge_f1"], "val_loss": val_loss, "val_accuracy": val_m["accuracy"],
        "val_challenge_f1": val_m["challenge_f1"], "val_macro_f1": val_m["macro_f1"],
        "val_f1": {c: val_m["per_class"][c]["f1"] for c in classes}, "_val_metrics": val_m,
    }, score

