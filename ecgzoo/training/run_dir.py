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

`load_run(path)` gives back what prediction and evaluation need: the model (weights loaded
from safetensors, never unpickled, eval mode), the preprocessing pipeline, classes and rates.
"""

from __future__ import annotations

import contextlib
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

from ecgzoo._infra.jsonio import dumps
from ecgzoo.core.model import EcgModel
from ecgzoo.core.tasks import Task
from ecgzoo.models.checkpoint import DiskFullError, write_bytes_atomic

INCOMPLETE = ".incomplete"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
FAILED_FILE = "FAILED.txt"
BEST_CHECKPOINT = Path("checkpoints") / "best.safetensors"


class RunDirError(FileNotFoundError):
    """A folder that is not a complete ecgzoo run (missing, incomplete, lacking or with an unreadable file)."""


class InUseError(FileExistsError):
    """Another live process is writing the same run (or evaluation) folder."""


def hold_lock(lock_path: Path, what: str) -> int | None:
    """An exclusive, non-blocking `flock` on `lock_path` (created if needed); its file descriptor.

    Raises InUseError naming `what` and the holder's pid when another process holds it. The
    lock lives until `release_lock` or the process's death. None where flock does not exist.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        return None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 80, 0).decode("utf-8", "replace").strip() or "pid unknown"
        os.close(fd)
        raise InUseError(f"{what} is being written by another ecgzoo process ({holder}); wait for it to finish "
                         f"or use another name") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
    return fd


def release_lock(fd: int | None, lock_path: Path | None = None) -> None:
    """Drop a lock taken by `hold_lock`; remove its file when `lock_path` is given."""
    if fd is None:
        return
    if lock_path is not None:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
    os.close(fd)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write text or bytes to `path` via a temporary file and `os.replace` (all or nothing)."""
    path = Path(path)
    write_bytes_atomic(path, data.encode("utf-8") if isinstance(data, str) else data)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """`obj` as indented strict JSON (non-finite floats as null), atomically."""
    return write_atomic(path, dumps(obj, indent=2) + "\n")


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
    task: Task | None = None  # None only for runs written before tasks existed: single-label over classes
    lead_names: tuple[str, ...] | None = None  # the leads the model was trained on, in input order
    thresholds: list[float] | None = None  # multi-label: per-class decision thresholds chosen on validation

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = Task.single_label(self.classes)


def load_run(run_dir: str | Path, device: str = "cpu") -> LoadedRun:
    """The model (eval mode, safetensors weights), pipeline and facts of a finished run, or of
    pretrained weights named `MODEL:TAG` (see `ecgzoo list --pretrained`)."""
    path = Path(run_dir)
    from ecgzoo.models.pretrained import is_pretrained_name, load_pretrained_run

    if is_pretrained_name(str(run_dir)):
        return load_pretrained_run(str(run_dir), device=device)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} not found")
    if path.name.endswith(INCOMPLETE) or (path / FAILED_FILE).exists():
        raise RunDirError(f"{path} is an incomplete run (see {path / FAILED_FILE}); finish it or use another run")
    for rel in (CONFIG_FILE, RUN_FILE, BEST_CHECKPOINT):
        if not (path / rel).is_file():
            raise RunDirError(f"{path} is not an ecgzoo run directory: {rel} is missing")
    from ecgzoo.data.pipeline import Pipeline
    from ecgzoo.models.checkpoint import load_checkpoint, model_from_checkpoint

    config = read_json(path / CONFIG_FILE)
    info = read_json(path / RUN_FILE)
    numbers = ("fs", "input_fs", "input_samples", "in_leads")
    if any(isinstance(info.get(k), bool) or not isinstance(info.get(k), (int, float)) for k in numbers):
        raise RunDirError(f"{path / RUN_FILE}: damaged: {', '.join(numbers)} must be numbers")
    try:
        facts = {"pipeline": Pipeline(info["pipeline"]), "classes": [str(c) for c in info["classes"]],
                 "fs": float(info["fs"]), "input_fs": float(info["input_fs"]),
                 "input_samples": int(info["input_samples"]), "in_leads": int(info["in_leads"])}
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RunDirError(f"{path / RUN_FILE}: not a valid run description ({type(exc).__name__}: {exc})") from None
    from ecgzoo.data.inputs import MAX_FS, MIN_FS

    plausible = (all(MIN_FS <= facts[k] <= MAX_FS for k in ("fs", "input_fs")) and 16 <= facts["input_samples"] <= 10**9
                 and 0 < facts["in_leads"] <= 10**4 and len(facts["classes"]) >= 2)
    if not plausible:
        raise RunDirError(f"{path / RUN_FILE}: damaged: rates must lie in {MIN_FS:g}-{MAX_FS:g} Hz, the input must be at least "
                          f"16 samples, leads positive and there must be at least 2 classes")
    model = model_from_checkpoint(path / BEST_CHECKPOINT, device=device)
    model.eval()
    outputs, leads = getattr(model, "num_classes", len(facts["classes"])), getattr(model, "in_leads", facts["in_leads"])
    if (outputs, leads) != (len(facts["classes"]), facts["in_leads"]):
        raise RunDirError(f"{path / RUN_FILE}: damaged: it lists {len(facts['classes'])} classes and {facts['in_leads']} "
                          f"lead(s), the model in {BEST_CHECKPOINT} has {outputs} outputs and {leads} lead(s)")
    split_file = path / "split.json"
    thresholds = load_checkpoint(path / BEST_CHECKPOINT)[1].get("thresholds")
    return LoadedRun(path=path, model=model, config=config, info=info, label=str(path), output_dir=path,
                     splits=read_json(split_file) if split_file.is_file() else {},
                     task=Task.from_json(info.get("task"), facts["classes"]),
                     lead_names=tuple(info["lead_names"]) if info.get("lead_names") else None,
                     thresholds=[float(t) for t in thresholds] if thresholds is not None else None, **facts)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a run folder; a damaged file is a RunDirError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: damaged, not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: damaged, expected a JSON object, found {type(value).__name__}")
    return value
