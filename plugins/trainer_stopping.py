"""Ending training before its last epoch, as callbacks: early stopping on the validation score, and Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import ecgzoo
from ecgzoo.plugin_api import distributed


class EarlyStopping(ecgzoo.Callback):
    """Counts the epochs since the best one; with `patience`, stops training once `patience` epochs in a row
    were not the best (None: counts, never stops; the count is saved, so a resumed run may set a patience)."""

    def __init__(self, patience: int | None, verbose: bool = True) -> None:
        self.patience, self.verbose = patience, verbose
        self.bad_epochs, self.stopped = 0, False

    def on_validation_end(self, loop: ecgzoo.TrainingLoop, row: dict[str, Any]) -> None:
        self.bad_epochs = 0 if row["best"] else self.bad_epochs + 1
        self.stopped = self.patience is not None and self.bad_epochs >= self.patience
        if self.stopped:
            loop.should_stop = True

    def on_fit_end(self, loop: ecgzoo.TrainingLoop) -> None:
        if self.stopped and loop.finished and loop.is_main and self.verbose:
            print(f"ecgzoo: early stop after epoch {loop.epoch} (best epoch {loop.best_epoch})", file=sys.stderr)

    def state_dict(self) -> dict[str, Any]:
        return {"bad_epochs": self.bad_epochs, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bad_epochs, self.stopped = int(state["bad_epochs"]), bool(state["stopped"])


class StopOnCtrlC(ecgzoo.Callback):
    """The first Ctrl-C (SIGINT) asks the loop to stop after the running batch (it saves, then raises
    KeyboardInterrupt); a second one interrupts at once. The previous handler is put back at the end of fit.
    Only the main thread can take signals: elsewhere Ctrl-C keeps its usual meaning."""

    def __init__(self) -> None:
        self._loop: ecgzoo.TrainingLoop | None = None
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self._loop.interrupt_requested:
            raise KeyboardInterrupt
        self._loop.interrupt_requested = True
        if distributed.is_main_process():
            print("\necgzoo: stopping after this batch and saving (Ctrl-C again to abort now)", file=sys.stderr, flush=True)

    def on_fit_start(self, loop: ecgzoo.TrainingLoop) -> None:
        self._loop = loop
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def on_fit_end(self, loop: ecgzoo.TrainingLoop) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def ignore_sigint(_: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
