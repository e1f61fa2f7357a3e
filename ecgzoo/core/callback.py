"""Training-loop callbacks: the hooks a trainer calls, the loop they see, and what they may change.

A callback is one lever of training (a learning-rate schedule, a weight average, early stopping,
saving the resumable state, a progress bar, a logger) with its own state, added to the reference
trainer without a new trainer option or a new branch in its loop. The reference trainer builds its
own levers as callbacks from its options and adds those listed in its `callbacks` option, by the
name a plugin registered (hook `ecgzoo_callbacks`, kind "callback") or by import path
`package.module:Class`; see `ecgzoo_plugins.trainer_config.TrainerConfig.callbacks`.

Who calls what, when (the reference trainer `trainer`; every process of a data-parallel run calls
the same hooks at the same points, in the order the callbacks are listed):

    on_fit_start(loop)             once per fit, after set-up (model on its device, optimizer built,
                                   `loop.epoch == loop.batch == 0`) and before a saved state is loaded:
                                   build what depends on the model or the optimizer here
    load_state_dict(state)         continuing a saved training only, right after on_fit_start: what
                                   this callback's `state_dict()` returned when that state was saved
    per epoch left (`loop.epoch` epochs are done, 0-based index of this one):
      on_epoch_start(loop)         before its first batch (`loop.batch > 0` when resumed mid-epoch)
      on_batch_end(loop, batch)    after each optimizer step and the running figures; `loop.batch`
                                   counts this batch; `batch` is the `TrainBatch` just trained on
      on_validation_start(loop)    before the epoch's validation; may swap the weights to validate
      on_validation_end(loop, row) after validation; when the epoch is the best so far (`row["best"]`)
                                   the model's current weights are already kept as the best ones
      on_epoch_end(loop)           after the epoch is recorded: `loop.epoch` counts it, `loop.history`
                                   ends with its row, `loop.finished` says whether it was the last
    on_interrupt(loop)             when the processes agreed to stop early (`loop.interrupt_requested`),
                                   after the batch (or epoch) that was running; KeyboardInterrupt follows
    on_fit_end(loop)               once, when fit leaves, normally (`loop.finished`) or by an exception,
                                   for every callback whose on_fit_start was called
    state_dict()                   whenever the resumable state is written (`loop.save_state`)

What a callback may change: `loop.should_stop = True` (in on_validation_end at the latest: training
ends after this epoch; the flag is saved, so a continued run stays stopped);
`loop.interrupt_requested = True` (at any time, also from a signal handler: the loop stops after
the running batch, every callback's on_interrupt is called, then KeyboardInterrupt is raised);
the model's weights between on_validation_start and on_validation_end, provided they are restored
by on_validation_end; the optimizer's learning rates (a schedule); new JSON-able keys of `row` in
on_validation_end (they join the history and `metrics.jsonl`). Nothing else of the loop.

What the loop guarantees: hooks are called in the order above, each callback in list order; a
callback's `state_dict()` is taken at the same point of the run as the rest of the state (weights,
optimizer, random generators), and a continued run calls `load_state_dict` with it before any
batch, so a callback whose state is all in `state_dict()` continues bit-for-bit; on_fit_end is
called even when a hook or training raised (so a callback can undo what its on_fit_start did).
A callback must not consume the global random generators outside `on_fit_start` if the run is to
stay identical to one without it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import torch


@dataclasses.dataclass(frozen=True)
class TrainBatch:
    """The training batch a step just used: inputs (B, leads, T), targets, valid lengths, the step's logits and loss."""

    x: torch.Tensor
    y: torch.Tensor
    valid_length: torch.Tensor
    logits: torch.Tensor
    loss: torch.Tensor


class TrainingLoop(Protocol):
    """What a callback sees of the loop that calls it (read-only unless `Callback`'s contract says otherwise)."""

    config: Any  #: the trainer's validated options (a pydantic model)
    model: torch.nn.Module  #: the model being trained (not a data-parallel wrapper)
    optimizer: torch.optim.Optimizer
    device: torch.device
    is_main: bool  #: rank 0 (the process that writes files and prints)
    world_size: int  #: processes training together (1: not distributed)
    epochs: int  #: epochs planned
    epoch: int  #: epochs finished
    batch: int  #: batches finished in the running epoch
    batches_per_epoch: int  #: training batches of one epoch in this process
    records_per_epoch: int  #: training records of one epoch, all processes together
    history: list[dict[str, Any]]  #: one row per finished epoch (JSON-able)
    running: dict[str, Any]  #: the running epoch's training figures so far: loss_sum (loss times records), count
    best_epoch: int | None  #: the best epoch so far (1-based; None before the first validation)
    checkpoint_dir: Any  #: folder of the trainer's files (pathlib.Path)
    should_stop: bool  #: set to end training after the running epoch
    interrupt_requested: bool  #: set to stop after the running batch, save and raise KeyboardInterrupt
    finished: bool  #: True once the last epoch is recorded

    def save_state(self) -> None:
        """Write the resumable state now (every process must call it at the same point: it gathers their RNGs)."""


class Callback:
    """Base class of a training-loop callback: override the hooks you need (the others do nothing).

    See the module docstring for who calls each hook, when, and what it may change. A callback
    keeps its own state as attributes; what must survive a restart goes in `state_dict()`, a dict
    of JSON values, tensors and arrays, given back to `load_state_dict` when the run continues.
    A callback from a plugin is created from its validated config (the `PluginSpec` factory);
    one given by import path is called with its options as keyword arguments.
    """

    def on_fit_start(self, loop: TrainingLoop) -> None:
        """Once, after set-up and before a saved state is loaded."""

    def on_epoch_start(self, loop: TrainingLoop) -> None:
        """Before the epoch's first remaining batch."""

    def on_batch_end(self, loop: TrainingLoop, batch: TrainBatch) -> None:
        """After each optimizer step; `loop.batch` counts this batch."""

    def on_validation_start(self, loop: TrainingLoop) -> None:
        """Before the epoch's validation."""

    def on_validation_end(self, loop: TrainingLoop, row: dict[str, Any]) -> None:
        """After the epoch's validation (and after keeping the best weights when `row["best"]`)."""

    def on_epoch_end(self, loop: TrainingLoop) -> None:
        """After the epoch is recorded in `loop.history`."""

    def on_interrupt(self, loop: TrainingLoop) -> None:
        """When every process agreed to stop before the end; KeyboardInterrupt follows."""

    def on_fit_end(self, loop: TrainingLoop) -> None:
        """Once, when fit leaves (normally or by an exception); must not raise."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart (JSON values, tensors, arrays); `{}` when nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict()` returned when the state was saved."""

