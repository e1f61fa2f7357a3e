"""When the reference trainer writes its resumable state (`last.safetensors`), as a callback."""

from __future__ import annotations

import sys

import ecgzoo


class LastState(ecgzoo.Callback):
    """Saves the whole training state (`loop.save_state`) after every epoch, every `every_batches` batches
    inside an epoch (0: never inside one), and when the loop is interrupted (then says where, on stderr;
    saved again, so that what callbacks did in on_interrupt is in it). It runs after every other
    state-changing callback, so what it saves is the state at that point."""

    def __init__(self, every_batches: int = 0) -> None:
        self.every_batches = every_batches

    def on_batch_end(self, loop: ecgzoo.TrainingLoop, batch: ecgzoo.TrainBatch) -> None:
        n = self.every_batches
        if n and loop.batch % n == 0 and loop.batch < loop.batches_per_epoch:
            loop.save_state()

    def on_epoch_end(self, loop: ecgzoo.TrainingLoop) -> None:
        loop.save_state()

    def on_interrupt(self, loop: ecgzoo.TrainingLoop) -> None:
        loop.save_state()
        if loop.is_main:
            print(f"ecgzoo: training state saved to {loop.checkpoint_dir / 'last.safetensors'}", file=sys.stderr)
