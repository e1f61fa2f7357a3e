"""The run directory: built under a temporary name, every file written atomically.

A run writes into `runs/<name>.incomplete/` and renames it to `runs/<name>/` only when the
report is written, so a folder without the suffix is always a finished run. A run that
fails leaves `runs/<name>.incomplete/` with `FAILED.txt` saying why and the exact command that
continues it (the same command with `--name <name>`; the trainer resumes from its checkpoint).
Each file is written to a temporary name in its folder and moved into place with
`os.replace`, so a crash never leaves half a file under its real name. JSON files are strict
JSON (`ecgzoo._infra.jsonio`: no NaN / Infinity).

One run name, one writer: `RunDir.create` takes an exclusive `flock` on `runs/.<name>.lock`
for as long as the run is being built, so a second process given the same name refuses at
once (`InUseError`) instead of writing into the same folder. The kernel drops the lock when
its holder dies, even by SIGKILL, so a crashed run never blocks the next one.

`ecgzoo.serving.loaded_run.load_run(path)` loads a finished run to predict with; the folder's file names
are defined there.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from pathlib import Path
from typing import Any

from ecgzoo._infra.files import DiskFullError, save_figure, write_atomic, write_json
from ecgzoo._infra.locks import hold_lock, release_lock
from ecgzoo.serving.loaded_run import FAILED_FILE, INCOMPLETE

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def default_run_name(model: str, dataset: str) -> str:
    return f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """A run directory being built: `work` is where files go until `finish()` renames it."""

    def __init__(self, output_dir: str | Path, name: str, writes: bool = True) -> None:
        if not _NAME.match(name) or name.endswith(INCOMPLETE):
            raise ValueError(f"run name {name!r}: use letters, digits, '.', '_', '+' or '-' (not ending in {INCOMPLETE})")
        self.root = Path(output_dir)
        self.name = name
        self.final = self.root / name
        self.work = self.root / f"{name}{INCOMPLETE}"
        #: False on the non-zero ranks of a distributed run: they compute, rank 0 writes
        self.writes = writes
        self.lock_path = self.root / f".{name}.lock"
        self._lock: int | None = None

    @classmethod
    def create(cls, output_dir: str | Path, name: str) -> RunDir:
        """Start (or continue, when its incomplete folder exists) the run called `name`; holds its lock."""
        run = cls(output_dir, name)
        run._lock = hold_lock(run.lock_path, f"run {name!r} in {run.root}")
        if run.final.exists():
            release_lock(run._lock)
            raise FileExistsError(f"run directory {run.final} already exists; choose another name (--name NAME)")
        run.work.mkdir(parents=True, exist_ok=True)
        failed = run.work / FAILED_FILE
        if failed.exists():
            failed.unlink()
        return run

    @property
    def resumed(self) -> bool:
        return (self.work / "checkpoints").is_dir()

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    def write(self, rel: str, data: bytes | str) -> Path:
        return write_atomic(self.path(rel), data) if self.writes else self.path(rel)

    def write_json(self, rel: str, obj: Any) -> Path:
        return write_json(self.path(rel), obj) if self.writes else self.path(rel)

    def save_figure(self, rel: str, fig: Any) -> Path:
        return save_figure(self.path(rel), fig)

    def fail(self, exc: BaseException, resume: str | None = None) -> None:
        """Leave the folder marked incomplete, with what stopped it and `resume`, the exact command that
        continues it (default: the same command with `--name NAME`). An error keeps its traceback (for a
        bug report); a Ctrl-C (KeyboardInterrupt) is no error and gets none."""
        if not self.writes:
            return
        resume = resume or f"the same command with --name {self.name}"
        if isinstance(exc, KeyboardInterrupt):
            text = f"This run was interrupted (Ctrl-C) before it finished.\nTo continue it, run:\n\n    {resume}\n"
        else:
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            text = f"This run did not finish: {type(exc).__name__}: {exc}\nTo continue it, run:\n\n    {resume}\n\n{trace}"
        try:
            write_atomic(self.work / FAILED_FILE, text)
        except DiskFullError:
            pass  # the folder keeps its .incomplete name, which says the same; the error itself is raised
        finally:
            release_lock(self._lock)
            self._lock = None

    def finish(self) -> Path:
        """Rename the finished folder to its real name and drop the run's lock; returns it."""
        os.replace(self.work, self.final)
        release_lock(self._lock, self.lock_path)  # the final folder now refuses the name by itself
        self._lock = None
        return self.final


