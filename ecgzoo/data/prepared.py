"""Run a dataset through a pipeline once, into one (records, leads, samples) array, cached on disk.

Preprocessing all records (R-peak detection above all) costs minutes; training reads the
result many times. `prepare` writes the signals into a memory-mapped `.npy` under a key made of
the dataset (plugin and options), the record list, the pipeline config and the package version,
so a second run with the same inputs skips preprocessing, and a change of any of them makes a
new entry. The entry is built in a private temporary folder and renamed into place in one step:
an interrupted run leaves no half-written entry under the key, and of two runs building the same
entry at once the first rename wins and the other uses it. Records are written one at a time
into the memory map, so the full array is never held in memory twice.

Integrity: `meta.json` holds the SHA-256 of `signals.npy`, checked each time the entry is
used. An entry whose signals, metadata or digest do not agree (a damaged disk, a file edited
or truncated by hand) is never used: it is moved aside and deleted, and the records are
prepared again, with a note on stderr and in `Prepared.notes` saying why. An entry killed
while being built (SIGKILL) is a `.partial-*` folder that is never read and is removed by the
next build of the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ecgzoo._infra.csv_files import skipped_csv
from ecgzoo._infra.download import sha256_of
from ecgzoo._infra.jsonio import dumps
from ecgzoo._infra.version import __version__
from ecgzoo.core.dataset import Dataset
from ecgzoo.core.record import Record, RecordError
from ecgzoo.core.tasks import Task, task_of
from ecgzoo.data.pipeline import Pipeline

CACHE_FORMAT = 1


@dataclass
class Prepared:
    """Preprocessed records ready for a model.

    Single-label: `labels` is (N,) int64 and `signals[i]` has class `classes[labels[i]]`.
    Multi-label (`task.multi`): `labels` is (N, classes) uint8, 1 where the record has the class.
    """

    signals: np.ndarray  # (N, leads, T) float32, ndarray or read-only memmap
    labels: np.ndarray  # (N,) int64 indices into classes
    valid_lengths: np.ndarray  # (N,) int64
    record_ids: list[str]
    classes: list[str]
    fs: float
    skipped: list[tuple[str, str]] = field(default_factory=list)
    units: str = "mV"
    cache_path: Path | None = None  # folder of the cache entry, when cached
    from_cache: bool = False  # True when this call preprocessed nothing
    task: Task | None = None  # None: single-label over `classes` (entries written before tasks existed)
    lead_names: tuple[str, ...] | None = None  # names of the signal rows, shared by every record
    notes: list[str] = field(default_factory=list)  # e.g. a damaged cache entry that was rebuilt

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = Task.single_label(self.classes)

    def __len__(self) -> int:
        return len(self.record_ids)

    def torch_dataset(self, indices: Sequence[int] | np.ndarray | None = None) -> Any:
        """A torch Dataset of `(signal (leads, T) float32 tensor, target, valid_length int)`; the target is
        the class index (single-label) or a float32 0/1 tensor over the classes (multi-label)."""
        return PreparedTorchDataset(self, indices)


class PreparedTorchDataset(torch.utils.data.Dataset):
    """Items of a `Prepared` by position; pickles without the signals when they are cached on disk."""

    def __init__(self, prepared: Prepared, indices: Sequence[int] | np.ndarray | None = None):
        n = len(prepared)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"indices out of range for {n} prepared records")
        self.labels = np.asarray(prepared.labels)[self.indices]
        self.valid_lengths = np.asarray(prepared.valid_lengths)[self.indices]
        self._path = prepared.cache_path / "signals.npy" if prepared.cache_path is not None else None
        self._signals: np.ndarray | None = prepared.signals

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self._path is not None:  # workers / other ranks re-open the memory map instead of copying it
            state["_signals"] = None
        return state

    def _array(self) -> np.ndarray:
        if self._signals is None:
            self._signals = np.load(self._path, mmap_mode="r")
        return self._signals

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        j = int(self.indices[i])
        signal = torch.from_numpy(np.array(self._array()[j], dtype=np.float32))
        label = self.labels[i]
        target = int(label) if np.ndim(label) == 0 else torch.from_numpy(np.asarray(label, dtype=np.float32))
        return signal, target, int(self.valid_lengths[i])


def _dataset_identity(dataset: Dataset) -> dict[str, Any]:
    config = getattr(dataset, "config", None)
    identity = {
        "plugin": getattr(dataset, "plugin_name", type(dataset).__qualname__),
        "config": config.model_dump(mode="json") if config is not None else None,
        "classes": list(dataset.classes),
    }
    task = task_of(dataset)
    if task.multi:  # single-label entries keep the key they had before tasks existed
        identity["task"] = task.to_json()
    return identity


def cache_key(dataset: Dataset, pipeline: Pipeline, record_ids: Sequence[str]) -> str:
    """Hex digest naming the cache entry of these records of this dataset through this pipeline."""
    blob = json.dumps(
        {"format": CACHE_FORMAT, "version": __version__, "dataset": _dataset_identity(dataset),
         "records": list(record_ids), "pipeline": pipeline.config},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def default_cache_dir() -> Path:
    """`ECGZOO_CACHE` if set, else the per-user cache folder (`$XDG_CACHE_HOME/ecgzoo/prepared`)."""
    if os.environ.get("ECGZOO_CACHE"):
        return Path(os.environ["ECGZOO_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ecgzoo" / "prepared"


# -- processing one record (also in worker processes) ------------------------------------------

_WORK: tuple[Dataset, Pipeline, Task] | None = None


def _process(dataset: Dataset, pipeline: Pipeline, task: Task, rid: str) -> tuple[str, Record | None, str | None]:
    try:
        record = pipeline(dataset.load(rid))
        task.encode(record.label, rid)  # a label outside the classes is this record's error
        if not np.isfinite(record.signal).all():
            raise RecordError(rid, "preprocessing produced non-finite samples (NaN or inf)")
        return rid, record, None
    except RecordError as exc:
        return rid, None, exc.problem


def _process_in_worker(rid: str) -> tuple[str, Record | None, str | None]:
    assert _WORK is not None
    return _process(*_WORK, rid)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the pool: one message, no traceback per worker."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _results(dataset: Dataset, pipeline: Pipeline, task: Task, ids: list[str],
             workers: int) -> Iterator[tuple[str, Record | None, str | None]]:
    global _WORK
    if workers <= 1 or len(ids) < 2 * workers:
        for rid in ids:
            yield _process(dataset, pipeline, task, rid)
        return
    _WORK = (dataset, pipeline, task)  # inherited by forked workers: nothing to pickle
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_ignore_sigint) as pool:
            yield from pool.imap(_process_in_worker, ids, chunksize=8)
    finally:
        _WORK = None


# -- building ------------------------------------------------------------------------------------

def _build(dataset: Dataset, pipeline: Pipeline, ids: list[str], on_error: str, progress: bool,
           workers: int, folder: Path | None) -> dict[str, Any]:
    """Preprocess every record into an array (a memmap in `folder` when given); returns the parts."""
    from tqdm import tqdm

    task = task_of(dataset)
    signals: np.ndarray | None = None
    labels, valid, kept, skipped = [], [], [], []
    fs, units, shape, leads, first = None, "mV", None, None, None
    with tqdm(total=len(ids), desc="preparing records", unit="rec", disable=not progress) as bar:
        for rid, record, problem in _results(dataset, pipeline, task, ids, workers):
            bar.update(1)
            if record is not None:
                if shape is None:
                    shape, fs, units, leads, first = record.signal.shape, float(record.fs), record.units, record.lead_names, rid
                    full = (len(ids), *shape)
                    if folder is not None:
                        signals = np.lib.format.open_memmap(folder / "signals.npy", mode="w+", dtype=np.float32, shape=full)
                    else:
                        signals = np.empty(full, dtype=np.float32)
                elif record.signal.shape != shape:
                    problem = (f"preprocessed to shape {record.signal.shape}, earlier records (first {first!r}) to {shape}; "
                               f"add a 'pad-crop' step so every record has one length")
                elif abs(record.fs - fs) > 1e-6:
                    problem = (f"preprocessed to {record.fs:g} Hz, earlier records (first {first!r}) to {fs:g} Hz; "
                               f"add a 'resample' step")
                elif record.lead_names != leads:
                    problem = (f"has leads {_names(record.lead_names)}, earlier records (first {first!r}) {_names(leads)}; "
                               f"add a 'select-leads' step so every record has the same leads in one order")
            if problem is not None:
                if on_error == "raise":
                    raise RecordError(rid, problem)
                skipped.append((rid, problem))
                continue
            assert signals is not None and record is not None
            signals[len(kept)] = record.signal
            labels.append(task.encode(record.label, rid))
            valid.append(int(record.valid_length))
            kept.append(rid)
    if not kept:
        first = "; ".join(f"{r}: {p}" for r, p in skipped[:3])
        raise ValueError(f"no record of {len(ids)} could be prepared (first problems: {first})")
    if isinstance(signals, np.memmap):
        signals.flush()
    return {"signals": signals[: len(kept)], "labels": np.asarray(labels, dtype=np.uint8 if task.multi else np.int64),
            "valid_lengths": np.asarray(valid, dtype=np.int64), "record_ids": kept, "classes": list(task.classes),
            "fs": fs, "skipped": skipped, "units": units, "task": task, "lead_names": leads}


def _names(leads: tuple[str, ...] | None) -> str:
    return str(list(leads)) if leads is not None else "unnamed"


class CacheDamaged(ValueError):
    """A cache entry whose files do not agree with each other or with their digest."""


#: SHA-256 of a file, read in blocks (memory stays small whatever its size): the download helper's
file_sha256 = sha256_of


def _write_meta(folder: Path, parts: dict[str, Any], key: str, identity: dict[str, Any], pipeline: Pipeline) -> None:
    meta = {k: parts[k] for k in ("record_ids", "classes", "fs", "units")}
    meta.update(labels=parts["labels"].tolist(), valid_lengths=parts["valid_lengths"].tolist(), task=parts["task"].to_json(),
                lead_names=list(parts["lead_names"]) if parts["lead_names"] is not None else None,
                skipped=[list(s) for s in parts["skipped"]], count=len(parts["record_ids"]), key=key,
                version=__version__, format=CACHE_FORMAT, dataset=identity, pipeline=pipeline.config,
                signals_sha256=file_sha256(folder / "signals.npy"))
    (folder / "meta.json").write_text(dumps(meta, indent=1), encoding="utf-8")
    (folder / "skipped.csv").write_text(skipped_csv(parts["skipped"]), encoding="utf-8")


def load_cached(folder: Path, verify: bool = True) -> Prepared:
    """A finished cache entry, signals memory-mapped read-only; CacheDamaged when its files do not agree.

    verify: check `signals.npy` against the digest in `meta.json` (entries written before the
    digest existed have none and are treated as damaged, i.e. rebuilt once).
    """
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if verify and meta.get("signals_sha256") != file_sha256(folder / "signals.npy"):
            raise CacheDamaged("signals.npy does not match the SHA-256 digest in meta.json"
                               if meta.get("signals_sha256") else "meta.json has no digest of signals.npy")
        n = int(meta["count"])
        signals = np.load(folder / "signals.npy", mmap_mode="r")[:n]
        task = Task.from_json(meta.get("task"), meta["classes"])
        leads = tuple(meta["lead_names"]) if meta.get("lead_names") is not None else None
        labels = np.asarray(meta["labels"], dtype=np.uint8 if task.multi else np.int64).reshape((n, -1) if task.multi else (n,))
        prepared = Prepared(
            signals=signals, labels=labels, task=task, lead_names=leads,
            valid_lengths=np.asarray(meta["valid_lengths"], dtype=np.int64), record_ids=list(meta["record_ids"]),
            classes=list(meta["classes"]), fs=float(meta["fs"]), skipped=[tuple(s) for s in meta["skipped"]],
            units=meta["units"], cache_path=folder, from_cache=True)
    except CacheDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise CacheDamaged(f"unreadable ({type(exc).__name__}: {exc})") from None
    if not (len(prepared.record_ids) == len(prepared.labels) == len(prepared.valid_lengths) == signals.shape[0] == n):
        raise CacheDamaged(f"meta.json lists {len(prepared.record_ids)} records, signals.npy holds {signals.shape[0]}")
    return prepared


def _discard(cache_dir: Path, final: Path, key: str) -> None:
    """Move a damaged entry out of its key's place in one step, then delete it."""
    aside = cache_dir / f".damaged-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(FileNotFoundError):
        os.rename(final, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _remove_stale_partials(cache_dir: Path, key: str) -> None:
    """Delete temp folders of this key left by runs that died (their pid is gone)."""
    for partial in cache_dir.glob(f".partial-{key}-*"):
        try:
            pid = int(partial.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def _cached_entry(cache_dir: Path, final: Path, key: str, on_error: str, notes: list[str]) -> Prepared | None:
    """The cache entry `final` when it exists and is sound; a damaged one is deleted (with a note) and None returned."""
    if not final.exists():
        return None
    try:
        cached = load_cached(final)
    except CacheDamaged as exc:
        notes.append(f"cache entry {final} is damaged ({exc}); it was deleted and the records are prepared again")
        print(f"ecgzoo: {notes[-1]}", file=sys.stderr, flush=True)
        _discard(cache_dir, final, key)
        return None
    if cached.skipped and on_error == "raise":
        rid, problem = cached.skipped[0]
        raise RecordError(rid, problem)
    return cached


def prepare(
    dataset: Dataset,
    pipeline: Pipeline,
    record_ids: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    progress: bool = True,
    workers: int = 1,
) -> Prepared:
    """Load and preprocess records (all by default) into one array, reusing a cache entry when present.

    cache_dir: folder of cache entries; None uses the dataset's `cache_dir` attribute when it has
               one (the PhysioNet plugin does), else keeps everything in memory.
    on_error:  "raise" stops at the first bad record (RecordError naming it); "skip" leaves it out
               and lists `(record_id, problem)` in `skipped` (and `skipped.csv` of the cache entry).
    workers:   processes for preprocessing (fork); 1 processes in this one.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    ids = list(dataset.record_ids() if record_ids is None else record_ids)
    if not ids:
        raise ValueError("no records to prepare")
    if cache_dir is None:
        cache_dir = getattr(dataset, "cache_dir", None)
    if cache_dir is None:
        return Prepared(**_build(dataset, pipeline, ids, on_error, progress, workers, None))

    cache_dir = Path(cache_dir)
    key = cache_key(dataset, pipeline, ids)
    final = cache_dir / key
    notes: list[str] = []
    cached = _cached_entry(cache_dir, final, key, on_error, notes)
    if cached is not None:
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(cache_dir, key)
    partial = cache_dir / f".partial-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        parts = _build(dataset, pipeline, ids, on_error, progress, workers, partial)
        identity = _dataset_identity(dataset)
        del parts["signals"]  # close our memmap before the folder moves
        _write_meta(partial, parts, key, identity, pipeline)
        try:
            os.rename(partial, final)  # atomic; fails if another run got there first
        except OSError:
            if not (final / "meta.json").is_file():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(partial)
    result = load_cached(final)
    result.from_cache, result.notes = False, notes
    return result
