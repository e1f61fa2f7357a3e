"""What the reference trainer shows while it trains, as a callback: a bar per epoch and the whole run's line."""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm

import ecgzoo
from ecgzoo.plugin_api import run_progress


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class Progress(ecgzoo.Callback):
    """On stderr of the main process, when `enabled`: a bar per epoch (records, running loss; at its end the
    epoch's losses and headline validation figure `headline`), then "epoch k of n done, elapsed, left"."""

    def __init__(self, enabled: bool, headline: str, early_stopping: bool) -> None:
        self.enabled, self.headline, self.early_stopping = enabled, headline, early_stopping
        self.bar: Any = None
        self._t_fit, self._t_epoch, self._walls = 0.0, 0.0, []

    def on_fit_start(self, loop: ecgzoo.TrainingLoop) -> None:
        self._t_fit = time.perf_counter()

    def on_epoch_start(self, loop: ecgzoo.TrainingLoop) -> None:
        done = min(loop.batch * loop.config.batch_size * loop.world_size, loop.records_per_epoch)
        self.bar = tqdm(total=loop.records_per_epoch, initial=done, unit="rec", desc=f"epoch {loop.epoch + 1}/{loop.epochs}",
                        file=sys.stderr, dynamic_ncols=True, disable=not (self.enabled and loop.is_main), leave=True)
        self._t_epoch = time.perf_counter()

    def on_batch_end(self, loop: ecgzoo.TrainingLoop, batch: ecgzoo.TrainBatch) -> None:
        self.bar.update(len(batch.y) * loop.world_size)
        self.bar.set_postfix(loss=f"{loop.running['loss_sum'] / loop.running['count']:.4f}", refresh=False)

    def on_epoch_end(self, loop: ecgzoo.TrainingLoop) -> None:
        row = loop.history[-1]
        self.bar.set_postfix(loss=f"{row['train_loss']:.4f}", val_loss=f"{row['val_loss']:.4f}",
                             val=_figure(row.get(self.headline)), refresh=True)
        self._close()
        self._walls.append(time.perf_counter() - self._t_epoch)  # this epoch with its validation: the whole run's clock
        if loop.is_main and self.enabled:
            line = run_progress(loop.epoch, loop.epochs, time.perf_counter() - self._t_fit, self._walls, self.early_stopping)
            print(f"ecgzoo: {line}", file=sys.stderr, flush=True)

    def on_interrupt(self, loop: ecgzoo.TrainingLoop) -> None:
        self._close()

    def on_fit_end(self, loop: ecgzoo.TrainingLoop) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
