"""The run directory: built under a temporary name, every file written atomically.

A run writes into `runs/<name>.incomplete/` and renames it to `runs/<name>/` only when the
report is written, so a folder without the suffix is always a finished run. A run that
fails leaves `runs/<name>.incomplete/` with `FAILED.txt` saying why; running the same
command with `--set name=<name>` continues it (the trainer resumes from its checkpoint).
Each file is written to a temporary name in its folder and moved into place with
`os.replace`, so a crash never leaves half a file under its real name.

`load_run(path)` gives back what prediction and evaluation need: the model (weights loaded
from safetensors, never unpickled, eval mode), the preprocessing pipeline, classes and rates.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ecgzoo.checkpoint import write_bytes_atomic
from ecgzoo.model import EcgModel

INCOMPLETE = ".incomplete"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
FAILED_FILE = "FAILED.txt"
BEST_CHECKPOINT = Path("checkpoints") / "best.safetensors"


class RunDirError(FileNotFoundError):
    """A folder that is not a complete ecgzoo run (missing, incomplete or lacking a file)."""


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write text or bytes to `path` via a temporary file and `os.replace` (all or nothing)."""
    path = Path(path)
    write_bytes_atomic(path, data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """`obj` as indented JSON, atomically."""
    return write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def save_figure(path: str | Path, fig: Any, dpi: int = 110) -> Path:
    """A matplotlib figure as PNG, atomically; a pyplot-managed figure is closed afterwards."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt = sys.modules.get("matplotlib.pyplot")  # never import pyplot here: that would pick a backend
    if plt is not None:
        plt.close(fig)
    return write_atomic(path, buf.getvalue())


def safe_filename(text: str) -> str:
    """`text` as one file-name component: letters, digits, `-`, `_` and `.` kept, any other character
    written as `_xx` (its code point in hex), so distinct labels and ids stay distinct files
    (`~` -> `_7e`, `a/b` -> `a_2fb`); a name that would be hidden or `..` gets a leading `_`."""
    out = "".join(ch if ch.isalnum() or ch in "-_." else f"_{ord(ch):02x}" for ch in str(text))
    return "_" + out if not out or out.startswith(".") else out


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

    @classmethod
    def create(cls, output_dir: str | Path, name: str) -> RunDir:
        """Start (or continue, when its incomplete folder exists) the run called `name`."""
        run = cls(output_dir, name)
        if run.final.exists():
            raise FileExistsError(f"run directory {run.final} already exists; choose another name (--set name=...)")
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

    def fail(self, exc: BaseException) -> None:
        """Leave the folder marked incomplete, with the error that stopped it."""
        if not self.writes:
            return
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        write_atomic(
            self.work / FAILED_FILE,
            f"This run did not finish: {type(exc).__name__}: {exc}\n"
            f"Run the same command with --set name={self.name} to continue it.\n\n{text}",
        )

    def finish(self) -> Path:
        """Rename the finished folder to its real name; returns it."""
        os.replace(self.work, self.final)
        return self.final


@dataclasses.dataclass
class LoadedRun:
    """A finished run, ready to predict with."""

    path: Path
    model: EcgModel
    pipeline: Any
    classes: list[str]
    config: dict[str, Any]
    fs: float
    input_fs: float
    input_samples: int
    in_leads: int
    info: dict[str, Any]
    #: what to call it in messages: the run folder, or MODEL:TAG for pretrained weights
    label: str = ""
    #: where evaluate/explain write by default (the run folder; ./MODEL-TAG for pretrained weights)
    output_dir: Path | None = None
    #: record lists by split name (train/val/test), from split.json or the weights' manifest
    splits: dict[str, Any] = dataclasses.field(default_factory=dict)


def load_run(run_dir: str | Path, device: str = "cpu") -> LoadedRun:
    """The model (eval mode, safetensors weights), pipeline and facts of a finished run, or of
    pretrained weights named `MODEL:TAG` (see `ecgzoo list --pretrained`)."""
    path = Path(run_dir)
    if not path.exists() and ":" in str(run_dir):
        from ecgzoo.pretrained import load_pretrained_run

        return load_pretrained_run(str(run_dir), device=device)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} not found")
    if path.name.endswith(INCOMPLETE) or (path / FAILED_FILE).exists():
        raise RunDirError(f"{path} is an incomplete run (see {path / FAILED_FILE}); finish it or use another run")
    for rel in (CONFIG_FILE, RUN_FILE, BEST_CHECKPOINT):
        if not (path / rel).is_file():
            raise RunDirError(f"{path} is not an ecgzoo run directory: {rel} is missing")
    from ecgzoo.checkpoint import model_from_checkpoint
    from ecgzoo.pipeline import Pipeline

    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    info = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
    model = model_from_checkpoint(path / BEST_CHECKPOINT, device=device)
    model.eval()
    return LoadedRun(
        path=path,
        model=model,
        pipeline=Pipeline(info["pipeline"]),
        classes=list(info["classes"]),
        config=config,
        fs=float(info["fs"]),
        input_fs=float(info["input_fs"]),
        input_samples=int(info["input_samples"]),
        in_leads=int(info["in_leads"]),
        info=info,
        label=str(path),
        output_dir=path,
        splits=json.loads((path / "split.json").read_text(encoding="utf-8")) if (path / "split.json").is_file() else {},
    )
