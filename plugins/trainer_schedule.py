"""The learning-rate schedule of the reference trainer, as a callback: cosine and step per epoch, warm-up cosine per batch."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

import ecgzoo


def warmup_cosine(step: int, warm: int, total: int) -> float:
    """Learning-rate factor at batch `step`: linear from 1/(warm+1) to 1 over `warm` batches, then cosine to 0 at `total`."""
    if step < warm:
        return (step + 1) / (warm + 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total - warm) / max(total - warm, 1)))


class LrSchedule(ecgzoo.Callback):
    """Steps a torch scheduler of the loop's optimizer: once per epoch (cosine to zero over `epochs`, or step:
    times `gamma` every `step_size` epochs) or once per batch (warmup-cosine: linear warm-up over
    `warmup_epochs`, then cosine to zero at the last batch). `constant` does nothing."""

    def __init__(self, kind: str, epochs: int, warmup_epochs: float = 0.5, step_size: int = 30, gamma: float = 0.1) -> None:
        self.kind, self.epochs, self.warmup_epochs, self.step_size, self.gamma = kind, epochs, warmup_epochs, step_size, gamma
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None

    def on_fit_start(self, loop: ecgzoo.TrainingLoop) -> None:
        optimizer = loop.optimizer
        if self.kind == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        elif self.kind == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)
        elif self.kind == "warmup-cosine":
            total = max(self.epochs * loop.batches_per_epoch, 1)
            warm = min(round(self.warmup_epochs * loop.batches_per_epoch), total - 1)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(warmup_cosine, warm=warm, total=total))

    def on_batch_end(self, loop: ecgzoo.TrainingLoop, batch: ecgzoo.TrainBatch) -> None:
        if self.scheduler is not None and self.kind == "warmup-cosine":
            self.scheduler.step()

    def on_epoch_end(self, loop: ecgzoo.TrainingLoop) -> None:
        if self.scheduler is not None and self.kind != "warmup-cosine":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)
