"""What the reference trainer optimises and measures, asked of the task and its training (`training_for`): the loss
weights, the validation pass and each epoch's history row."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from ecgzoo.plugin_api import distributed, training_for


def labels_of(dataset: torch.utils.data.Dataset) -> np.ndarray:
    """Class indices of all items: a `labels` attribute when the dataset has one, else by reading items."""
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    labels = getattr(dataset, "labels", None)
    if labels is not None and len(labels) == len(dataset):
        return np.asarray(labels, dtype=np.int64)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def loss_weights(cfg: Any, labels: np.ndarray, task: Any, device: torch.device) -> torch.Tensor | None:
    """Per-class weights of the task's loss from the training labels (`training_for(task).loss_weights`)."""
    weight = training_for(task).loss_weights(task, labels, cfg.class_weighting, cfg.pos_weight, cfg.selection_metric)
    return weight.to(device) if weight is not None else None


def evaluate(loop: Any, model: torch.nn.Module, val: torch.utils.data.Dataset) -> tuple[float, Any]:
    """Weighted loss of the whole validation split (each rank scores a shard) and what the task's training keeps
    of it, combined over all ranks (`training_for(task)`: a confusion matrix, or targets and probabilities)."""
    cfg, ctx, device, weight, task = loop.config, loop.ctx, loop.device, loop.weight, loop.task
    shard = Subset(val, range(ctx.rank, len(val), ctx.world_size)) if ctx.enabled else val
    loader = DataLoader(shard, batch_size=cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers,
                        worker_init_fn=loop.worker_init_fn)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    outputs: list[Any] = []
    bar = tqdm(total=len(val), unit="rec", desc="validation", file=sys.stderr, dynamic_ncols=True, leave=False,
               disable=not (cfg.progress and ctx.is_main))
    with torch.no_grad():
        for x, y, vl in loader:
            bar.update(len(y) * ctx.world_size)
            x, y, vl = x.to(device), y.to(device), vl.to(device)
            with loop.autocast():
                logits = model(x, valid_length=vl)
            loss_sum += task.training_loss(logits, y, weight, reduction="sum").double().cpu()
            outputs.append(training_for(task).batch_outputs(task, y, logits))
    bar.close()
    model.train(was_training)
    totals = distributed.all_reduce_sum(torch.cat([loss_sum.reshape(1), torch.tensor([float(len(shard))], dtype=torch.float64)]))
    return float(totals[0] / totals[1]), training_for(task).gathered(task, outputs)


def epoch_row(loop: Any, val: torch.utils.data.Dataset, lr: float, seconds: float, seen: int) -> dict[str, Any]:
    """Reduce the epoch's training figures, score the validation split, decide whether it is the best
    (then `loop.best_score`/`best_epoch` move to it); the history row, its validation metrics under "_val_metrics"."""
    running = loop.running
    train_tot = distributed.all_reduce_sum(torch.tensor([running["loss_sum"], float(running["count"])], dtype=torch.float64))
    train_cm = distributed.all_reduce_sum(torch.tensor(running["confusion"], dtype=torch.int64))
    val_loss, val_out = evaluate(loop, loop.model, val)
    train_part, val_part, val_metrics, score = training_for(loop.task).epoch_figures(
        loop.task, train_cm.numpy(), val_loss, val_out, loop.config.selection_metric, loop.scored_classes)
    # an undefined figure (None: no scored class in the validation labels or predictions) beats nothing
    improved = loop.best_epoch is None or (score is not None and (loop.best_score is None or score > loop.best_score))
    row = {"epoch": loop.epoch + 1, "lr": lr, "train_loss": float(train_tot[0] / train_tot[1]), **train_part,
           "val_loss": val_loss, **val_part, "best": improved, "_val_metrics": val_metrics}
    if improved:
        loop.best_score, loop.best_epoch = score, loop.epoch + 1
    row["seconds"] = round(seconds, 3)
    row["records_per_s"] = round(seen * loop.ctx.world_size / seconds, 2) if seconds > 0 else None
    return row
