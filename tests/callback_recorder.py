"""A third-party training callback, written against ecgzoo's public interface only: records the hooks it sees.

Given to the reference trainer by import path (`callback_recorder:HookRecorder`) or, registered
by `register()`, by its name `hook-recorder`. Its state (the hooks so far and the batches trained)
is in `state_dict()`, so it must survive a resume; at the end of fit it writes that state to `path`.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic

import ecgzoo


class HookRecorder(ecgzoo.Callback):
    def __init__(self, path: str, interrupt_at: list[int] | None = None) -> None:
        self.path, self.interrupt_at = path, interrupt_at
        self.calls: list[str] = []
        self.batches = 0

    def _note(self, hook: str, loop: ecgzoo.TrainingLoop | None = None) -> None:
        self.calls.append(hook if loop is None else f"{hook} {loop.epoch}.{loop.batch}")

    def on_fit_start(self, loop):
        self._note("on_fit_start", loop)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls, self.batches = list(state["calls"]) + self.calls, int(state["batches"])  # saved calls, then this run's
        self._note("load_state_dict")

    def state_dict(self) -> dict[str, Any]:
        return {"calls": list(self.calls), "batches": self.batches}

    def on_epoch_start(self, loop):
        self._note("on_epoch_start", loop)

    def on_batch_end(self, loop, batch):
        assert batch.x.shape[0] == batch.logits.shape[0] == len(batch.y) and batch.loss.ndim == 0
        self.batches += 1
        self._note("on_batch_end", loop)
        if self.interrupt_at is not None and [loop.epoch, loop.batch] == self.interrupt_at:
            loop.interrupt_requested = True  # as Ctrl-C would: the loop saves, then raises KeyboardInterrupt

    def on_validation_start(self, loop):
        self._note("on_validation_start", loop)

    def on_validation_end(self, loop, row):
        row["recorded_batches"] = self.batches  # a key of its own in the history row
        self._note("on_validation_end", loop)

    def on_epoch_end(self, loop):
        self._note("on_epoch_end", loop)

    def on_interrupt(self, loop):
        self._note("on_interrupt", loop)

    def on_fit_end(self, loop):
        self._note("on_fit_end", loop)
        with open(self.path, "w", encoding="utf-8") as fh:
            json.dump(self.state_dict(), fh)


class RecorderConfig(ecgzoo.PluginConfig):
    path: str = pydantic.Field("hooks.json", description="file the recorded hooks are written to at the end of fit")
    interrupt_at: list[int] | None = pydantic.Field(None, description="[epoch, batch] after which to ask the loop to stop")


@ecgzoo.hookimpl
def ecgzoo_callbacks():
    return [ecgzoo.PluginSpec("hook-recorder", lambda c: HookRecorder(c.path, c.interrupt_at), RecorderConfig,
                              summary="records the training hooks (test callback)")]
