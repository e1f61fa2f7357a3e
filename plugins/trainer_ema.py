"""An exponential moving average of the weights, as a callback: updated every batch, validated and kept as the best weights."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

import ecgzoo


class WeightAverage:
    """Exponential moving average of a model's weights (floating-point entries; others copied).

    The decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates, so the first batches'
    weights do not dominate the average of a short run.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.state = {n: t.detach().clone() for n, t in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            avg = self.state[name]
            if avg.is_floating_point():
                avg.lerp_(value.detach(), 1.0 - d)
            else:
                avg.copy_(value)

    def swap_in(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Load the average into `model`; returns the trained weights, for `model.load_state_dict` afterwards."""
        current = {n: t.detach().clone() for n, t in model.state_dict().items()}
        model.load_state_dict(self.state)
        return current

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        """Load the average into `model` for the block, then restore the trained weights."""
        trained = self.swap_in(model)
        try:
            yield model
        finally:
            model.load_state_dict(trained)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "weights": dict(self.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, value in state["weights"].items():
            self.state[name].copy_(value)


class WeightAveraging(ecgzoo.Callback):
    """Keeps a `WeightAverage` of the loop's model (decay `decay` per batch); validation, and so the best
    checkpoint, sees the average; training continues from the trained weights."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.average: WeightAverage | None = None
        self._trained: dict[str, torch.Tensor] | None = None  # the trained weights while the average is swapped in

    def on_fit_start(self, loop: ecgzoo.TrainingLoop) -> None:
        self.average = WeightAverage(loop.model, self.decay)

    def on_batch_end(self, loop: ecgzoo.TrainingLoop, batch: ecgzoo.TrainBatch) -> None:
        self.average.update(loop.model)

    def on_validation_start(self, loop: ecgzoo.TrainingLoop) -> None:
        self._trained = self.average.swap_in(loop.model)

    def on_validation_end(self, loop: ecgzoo.TrainingLoop, row: dict[str, Any]) -> None:
        self._swap_out(loop)

    def on_fit_end(self, loop: ecgzoo.TrainingLoop) -> None:
        self._swap_out(loop)  # validation raised: the model keeps the trained weights all the same

    def _swap_out(self, loop: ecgzoo.TrainingLoop) -> None:
        if self._trained is not None:
            loop.model.load_state_dict(self._trained)
            self._trained = None

    def state_dict(self) -> dict[str, Any]:
        return self.average.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.load_state_dict(state)
