"""The reference trainer's resumable state, `last.safetensors`: what it holds, how it is written and read back.

One file (rank 0 writes it) holds the loop's own state (epoch, batch, running figures, history, the
best score so far, whether a callback stopped training), the weights, the optimizer and gradient
scaler, the random generators of every rank, and each callback's `state_dict()` under its key.
It also holds a fingerprint of the training (model, its options, classes, split sizes, processes,
the trainer's options except `RESUME_FREE`): a state from another training is refused, naming
what differs. `STATE_FORMAT` numbers the layout; a state written in another layout (before the
trainer's callbacks, 0.1's format 1) is refused with a message saying so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import ecgzoo
from ecgzoo.plugin_api import (
    CheckpointError,
    distributed,
    dumps,
    load_checkpoint_bytes,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_bytes_atomic,
)
from ecgzoo_plugins.trainer_config import MODEL_RESUME_FREE, RESUME_FREE

BEST, LAST, METRICS = "best.safetensors", "last.safetensors", "metrics.jsonl"
STATE_FORMAT = 2  #: 2: callbacks' states under "callbacks" (1: scheduler, average and early-stopping count inline)
#: the loop's own attributes a state holds
LOOP_STATE = ("epoch", "batch", "history", "best_score", "best_epoch", "running", "should_stop")


def fingerprint(config: Any, model: ecgzoo.EcgModel, classes: list[str], n_train: int, n_val: int, world: int) -> dict[str, Any]:
    """What must be the same for a saved state to continue this training."""
    trainer = {k: v for k, v in config.model_dump(mode="json").items() if k not in RESUME_FREE}
    if config.lr_schedule in ("cosine", "warmup-cosine"):
        trainer["epochs"] = config.epochs
    model_config = getattr(model, "config", None)
    return {
        "model": getattr(model, "plugin_name", type(model).__name__),
        "model_config": {k: v for k, v in model_config.model_dump(mode="json").items() if k not in MODEL_RESUME_FREE}
        if model_config is not None else {},
        "classes": list(classes), "n_train": n_train, "n_val": n_val, "world_size": world, "trainer": trainer,
    }


def check_resumable(meta: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    """Refuse a file that is no training state, or the state of another training (naming each difference)."""
    saved = meta.get("fingerprint")
    if meta.get("kind") != "training-state" or saved is None:
        raise CheckpointError(f"{path}: not a training state written by the trainer (remove it or set resume=false)")
    if isinstance(saved.get("model_config"), dict):  # states written while init_weights was part of the fingerprint
        saved = {**saved, "model_config": {k: v for k, v in saved["model_config"].items() if k not in MODEL_RESUME_FREE}}
    if saved != expected:
        diffs = [f"{key}: {saved.get(key)!r} -> {expected[key]!r}" for key in expected if saved.get(key) != expected[key]]
        raise CheckpointError(f"{path} belongs to another training ({'; '.join(diffs)}); remove it or set resume=false to start over")


def check_format(meta: dict[str, Any], path: Path) -> None:
    """Refuse a training state in another layout than this trainer writes."""
    found = meta.get("state_format", 1)
    if meta.get("kind") == "training-state" and found != STATE_FORMAT:
        raise CheckpointError(
            f"{path}: a training state in layout {found}, written by another version of the trainer; this version "
            f"continues layout {STATE_FORMAT} only (remove the file or set resume=false to start the training over)"
        )


def save_state(loop: Any) -> None:
    """The whole training state to last.safetensors, by rank 0 (every rank's RNG gathered: all ranks call this)."""
    rngs = distributed.all_gather_objects(rng_state())
    if not loop.is_main:
        return
    meta = {
        **{key: getattr(loop, key) for key in LOOP_STATE}, "kind": "training-state", "state_format": STATE_FORMAT,
        "classes": loop.classes, "finished": loop.finished, "fingerprint": loop.fingerprint,
        "trainer_config": loop.config.model_dump(mode="json"), "optimizer": loop.optimizer.state_dict(),
        "scaler": loop.scaler.state_dict() if loop.scaler is not None else None, "rng": rngs,
        "callbacks": {key: cb.state_dict() for key, cb in loop.callbacks.items()},
    }
    save_checkpoint(loop.checkpoint_dir / LAST, loop.model, meta)


def resume(loop: Any) -> None:
    """Continue from last.safetensors (rank 0 reads, every rank receives) or start metrics.jsonl afresh."""
    folder = loop.checkpoint_dir
    if loop.is_main:
        folder.mkdir(parents=True, exist_ok=True)
    last, best, metrics = folder / LAST, folder / BEST, folder / METRICS
    data = distributed.broadcast_bytes(last.read_bytes() if loop.config.resume and loop.is_main and last.is_file() else None)
    if data is None:
        if loop.is_main:
            write_bytes_atomic(metrics, b"")
        return
    state, meta = load_checkpoint_bytes(data, str(last))
    check_format(meta, last)
    check_resumable(meta, loop.fingerprint, last)
    loop.model.load_state_dict(state)
    loop.optimizer.load_state_dict(meta["optimizer"])
    if loop.scaler is not None:
        loop.scaler.load_state_dict(meta["scaler"])
    _load_callbacks(loop, meta["callbacks"], last)
    for key in LOOP_STATE:
        setattr(loop, key, meta[key])
    best_data = distributed.broadcast_bytes(best.read_bytes() if loop.is_main and best.is_file() else None)
    if best_data is not None:
        loop.best_state = {n: t.to(loop.device) for n, t in load_checkpoint_bytes(best_data, str(best))[0].items()}
    set_rng_state(meta["rng"][loop.rank])
    if loop.is_main:
        write_bytes_atomic(metrics, "".join(dumps(h) + "\n" for h in loop.history).encode())
        if loop.config.progress:
            print(f"ecgzoo: resuming from {last} (epoch {loop.epoch + 1}, batch {loop.batch})", file=sys.stderr)


def append_metrics(folder: Path, row: dict[str, Any]) -> None:
    """One finished epoch's row as a line of metrics.jsonl, flushed and fsynced (rank 0)."""
    with open(folder / METRICS, "a", encoding="utf-8") as fh:
        fh.write(dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _load_callbacks(loop: Any, saved: dict[str, Any], path: Path) -> None:
    """Each callback takes back its saved state; the saved and the present callbacks must be the same ones."""
    if sorted(saved) != sorted(loop.callbacks):
        raise CheckpointError(
            f"{path} holds the state of the callbacks {sorted(saved)}, this training has {sorted(loop.callbacks)}; "
            "remove it or set resume=false to start over"
        )
    for key, callback in loop.callbacks.items():
        callback.load_state_dict(saved[key])
