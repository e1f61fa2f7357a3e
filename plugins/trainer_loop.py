"""The reference trainer's loop: set-up, then epochs of batches, validation and the best weights; every other lever is a callback.

`FitLoop` is the `ecgzoo.TrainingLoop` its callbacks see (`ecgzoo.core.callback` states when each hook
is called and what a callback may change); `ecgzoo_plugins.trainer_callbacks` lists which callbacks
a fit has, `ecgzoo_plugins.trainer_resume` what its resumable state holds.
"""

from __future__ import annotations

import gc
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

import ecgzoo
from ecgzoo.plugin_api import distributed, save_checkpoint, seed_everything
from ecgzoo_plugins import trainer_resume
from ecgzoo_plugins.augment import BatchAugment
from ecgzoo_plugins.trainer_callbacks import build_callbacks
from ecgzoo_plugins.trainer_config import TrainerConfig
from ecgzoo_plugins.trainer_scoring import epoch_row, labels_of, loss_weights
from ecgzoo_plugins.trainer_stopping import ignore_sigint


def device_for(cfg: TrainerConfig, ctx: distributed.DistContext) -> torch.device:
    """The device the options ask for, refusing what this machine cannot do."""
    want = cfg.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ValueError("trainer option device='cuda' but no CUDA device is available (use device='cpu' or 'auto')")
    use_cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    if cfg.precision == "fp16" and not use_cuda:
        raise ValueError("trainer option precision='fp16' needs a CUDA device; this run trains on cpu (use precision='bf16' or 'fp32')")
    return torch.device("cuda", ctx.local_rank if ctx.enabled else torch.cuda.current_device()) if use_cuda else torch.device("cpu")


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (same shuffling per epoch and rank) that can skip the batches already done."""

    def __init__(self, n: int, ctx: distributed.DistContext, seed: int) -> None:
        super().__init__(range(n), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
        self.start = 0

    def __iter__(self):  # type: ignore[override]
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class FitLoop:
    """One fit of the reference trainer: `FitLoop(...).run(train, val)` trains `model` in place and leaves
    `history` (one row per epoch) and `best_state` (the best epoch's weights, None before one)."""

    def __init__(self, cfg: TrainerConfig, model: ecgzoo.EcgModel, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
                 task: ecgzoo.Task, checkpoint_dir: Path, scored_classes: tuple[str, ...] | None = None) -> None:
        self.config, self.model, self.task, self.scored_classes = cfg, model, task, scored_classes
        self.classes = classes = list(task.classes)
        self.ctx = distributed.setup("cuda" if cfg.device == "cuda" else "cpu")
        self.device = device_for(cfg, self.ctx)
        if len(train) == 0 or len(val) == 0:
            raise ValueError(f"trainer needs records in both splits, got {len(train)} training and {len(val)} validation records")
        if getattr(model, "num_classes", len(classes)) != len(classes):
            raise ValueError(f"model has {model.num_classes} outputs but there are {len(classes)} classes {classes}")
        self.weight = loss_weights(cfg, labels_of(train), task, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        seed_everything(cfg.seed + self.ctx.rank)
        model.to(self.device)
        optimizer_class = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer_class(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        self.augment = BatchAugment(cfg.crop_samples, cfg.augment_scale, cfg.augment_flip, cfg.augment_noise)
        per_rank = math.ceil(len(train) / self.ctx.world_size)
        self.batches_per_epoch, self.records_per_epoch = math.ceil(per_rank / cfg.batch_size), per_rank * self.ctx.world_size
        self.fingerprint = trainer_resume.fingerprint(cfg, model, classes, len(train), len(val), self.ctx.world_size)
        self.checkpoint_dir, self.epochs = Path(checkpoint_dir), cfg.epochs
        self.worker_init_fn = ignore_sigint if cfg.num_workers else None
        self.epoch, self.batch, self.history, self.running = 0, 0, [], self._fresh_running()
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.should_stop = self.interrupt_requested = self.finished = False
        self.callbacks = build_callbacks(cfg, task)

    # the ecgzoo.TrainingLoop attributes that come from the process group
    is_main = property(lambda self: self.ctx.is_main)
    rank = property(lambda self: self.ctx.rank)
    world_size = property(lambda self: self.ctx.world_size)

    def _fresh_running(self) -> dict[str, Any]:
        k = len(self.classes)
        return {"loss_sum": 0.0, "count": 0, "confusion": [[0] * k for _ in range(k)]}

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks.values():
            getattr(callback, hook)(self, *args)

    def save_state(self) -> None:
        """`ecgzoo.TrainingLoop.save_state`: last.safetensors now (all ranks call it)."""
        trainer_resume.save_state(self)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)

    def run(self, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset) -> None:
        """Callbacks start, a saved state is loaded (when there is one), epochs run until done; callbacks end."""
        started: list[ecgzoo.Callback] = []
        net: torch.nn.Module | None = None
        try:
            for callback in self.callbacks.values():
                callback.on_fit_start(self)
                started.append(callback)
            trainer_resume.resume(self)
            net = self.model
            if self.ctx.enabled:
                net = torch.nn.parallel.DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            sampler = _ResumableSampler(len(train), self.ctx, self.config.seed)
            self.finished = self.should_stop or self.epoch >= self.epochs
            while not self.finished:
                self._epoch(net, train, val, sampler)
        finally:
            for callback in started:
                callback.on_fit_end(self)
            if self.ctx.enabled:
                # the DDP wrapper sits in reference cycles; collect it while the process group is alive,
                # else gloo may abort the process at interpreter exit
                del net
                gc.collect()

    def _epoch(self, net: torch.nn.Module, train: torch.utils.data.Dataset, val: torch.utils.data.Dataset,
               sampler: _ResumableSampler) -> None:
        """One epoch, from the saved position inside it, then its validation and bookkeeping."""
        cfg = self.config
        sampler.set_epoch(self.epoch)
        sampler.start = self.batch * cfg.batch_size
        loader = DataLoader(train, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                            generator=torch.Generator().manual_seed(cfg.seed + self.epoch), worker_init_fn=self.worker_init_fn,
                            pin_memory=self.device.type == "cuda")
        self._call("on_epoch_start")
        t0 = time.perf_counter()
        seen = self._train_batches(net, loader)
        self._close_epoch(val, time.perf_counter() - t0, seen)

    def _train_batches(self, net: torch.nn.Module, loader: DataLoader) -> int:
        """The epoch's remaining batches: step, running figures, callbacks, Ctrl-C; returns the records seen."""
        k, seen = len(self.classes), 0
        net.train()
        confusion = torch.tensor(self.running["confusion"], dtype=torch.int64)
        for x, y, vl in loader:
            x, y, vl = x.to(self.device, non_blocking=True), y.to(self.device), vl.to(self.device)
            if self.augment.active:
                x, vl = self.augment(x, vl)
            logits, loss = self._step(net, x, y, vl)
            self.running["loss_sum"] += float(loss.detach()) * len(y)
            self.running["count"] += len(y)
            counts = self.task.confusion(y, logits)
            if counts is not None:  # a task deciding one class per record
                confusion += counts.reshape(k, k)
            self.running["confusion"] = confusion.tolist()
            self.batch += 1
            seen += len(y)
            self._call("on_batch_end", ecgzoo.TrainBatch(x, y, vl, logits, loss))
            if self._interrupt_agreed():
                self._interrupt()
        return seen

    def _step(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, vl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step: autocast, the weighted loss, gradient scaling and clipping."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = net(x, valid_length=vl)
        loss = self.task.training_loss(logits, y, self.weight, self.config.label_smoothing)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return logits, loss

    def _close_epoch(self, val: torch.utils.data.Dataset, seconds: float, seen: int) -> None:
        """Validate, keep the best weights, record the epoch (history, epochs.jsonl), then the epoch's callbacks."""
        lr = self.optimizer.param_groups[0]["lr"]
        self._call("on_validation_start")
        row = epoch_row(self, val, lr, seconds, seen)
        val_metrics = row.pop("_val_metrics")
        if row["best"]:
            self._keep_best(val_metrics)
        self._call("on_validation_end", row)
        self.history.append(row)
        self.epoch, self.batch, self.running = self.epoch + 1, 0, self._fresh_running()
        self.finished = self.should_stop or self.epoch >= self.epochs
        if self.is_main:
            trainer_resume.append_metrics(self.checkpoint_dir, row)
        self._call("on_epoch_end")
        if self._interrupt_agreed() and not self.finished:
            self._interrupt()

    def _keep_best(self, val_metrics: dict[str, Any]) -> None:
        """The model's weights now (the validated ones) become the best: kept in memory, best_epoch.safetensors by rank 0."""
        self.best_state = {n: t.detach().clone() for n, t in self.model.state_dict().items()}
        if self.is_main:
            meta = {"kind": "best", "classes": self.classes, "epoch": self.epoch + 1, "metrics": val_metrics,
                    "trainer_config": self.config.model_dump(mode="json")}
            save_checkpoint(self.checkpoint_dir / trainer_resume.BEST, self.model, meta)

    def _interrupt_agreed(self) -> bool:
        """All ranks stop at the same batch when any of them was asked to (a collective: every rank calls it)."""
        return bool(distributed.all_reduce_sum(torch.tensor([int(self.interrupt_requested)])).item())

    def _interrupt(self) -> None:
        self._call("on_interrupt")
        distributed.barrier()  # rank 0 has written the state before any rank leaves
        raise KeyboardInterrupt
