"""Checkpoints that never execute code when loaded: safetensors tensors + JSON metadata.

One file holds everything: the model's weights as `model.<name>` tensors and a JSON
document in the safetensors header (key `ecgzoo`) with the model plugin name and config,
the classes and whatever else the caller passes in `meta`. Tensors and arrays anywhere
inside `meta` (optimizer moments, RNG states) are stored as safetensors tensors and
referenced from the JSON, so a full training state round-trips exactly. Files are written
to a temporary name and moved into place with `os.replace`, so a crash leaves either the
old or the new checkpoint, never half of one; a full disk is a `DiskFullError` saying so,
with the old file kept and no temporary file left.

Integrity: the JSON header carries `tensors_sha256`, the SHA-256 of the file's whole tensor
data region, and `meta_sha256`, that of the metadata in canonical form. `load_checkpoint*`
recompute both and refuse a file whose bytes changed since it was written (a flipped bit on
disk, a bad copy) with an error naming the file and saying it is damaged: a damaged file never
becomes a model that answers with NaN or with someone else's weights. Files written before
the digests existed (no such keys) still load; whenever a digest is present it is checked.
The header is strict JSON: non-finite floats in `meta` are stored as `{"__float__": "inf"}`.

This module also captures/restores the random number generators (`rng_state`,
`set_rng_state`, `seed_everything`) that a bit-exact resume needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from ecgzoo._infra.files import write_bytes_atomic
from ecgzoo._infra.jsonio import dumps
from ecgzoo.core.model import EcgModel

FORMAT = "ecgzoo-checkpoint"
VERSION = 1
_META_KEY = "ecgzoo"
_MODEL = "model."
_EXTRA = "meta."


class CheckpointError(ValueError):
    """A checkpoint file that is missing, malformed, damaged or does not match what it is used for."""


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """JSON-able copy of `obj`; tensors/arrays go to `tensors` and are replaced by references."""
    if isinstance(obj, torch.Tensor):
        key = f"{_EXTRA}{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"{_EXTRA}{len(tensors)}"
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        if all(isinstance(k, (str, int)) for k in obj):  # optimizer state is keyed by parameter index
            return {"__items__": [[k, _encode(v, tensors, f"{where}.{k}")] for k, v in obj.items()]}
        raise TypeError(f"checkpoint metadata {where}: dict keys must be str or int")
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}  # 'inf', '-inf', 'nan': strict JSON, exact round trip
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"checkpoint metadata {where}: cannot store a {type(obj).__name__} (use JSON values, tensors or arrays)")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(obj, dict):
        for tag in ("__tensor__", "__ndarray__"):
            if tag in obj:
                key = obj[tag]
                if key not in tensors:
                    raise CheckpointError(f"{path}: metadata refers to tensor {key!r}, which the file does not hold")
                return tensors[key] if tag == "__tensor__" else tensors[key].numpy()
        if "__items__" in obj:
            return {k: _decode(v, tensors, path) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors, path) for v in obj["__tuple__"])
        if "__float__" in obj and obj["__float__"] in ("inf", "-inf", "nan"):
            return float(obj["__float__"])
        return {k: _decode(v, tensors, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    return obj


def _meta_digest(meta_json: Any) -> str:
    return hashlib.sha256(dumps(meta_json, sort_keys=True).encode("utf-8")).hexdigest()


def _data_region(blob: bytes | memoryview) -> memoryview:
    """The tensor bytes of a serialized safetensors file (everything after its JSON header)."""
    (n,) = struct.unpack("<Q", blob[:8])
    return memoryview(blob)[8 + n:]


def save_checkpoint(path: str | Path, model: EcgModel, meta: dict[str, Any] | None = None) -> Path:
    """Save `model`'s weights and `meta` to one safetensors file, atomically, with integrity digests.

    `meta["model"]` / `meta["model_config"]` default to the model's plugin name and config
    dump (set by `ecgzoo.create_model`), so `model_from_checkpoint` can rebuild it.
    """
    path = Path(path)
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    meta = dict(meta or {})
    if "model" not in meta:
        name = getattr(module, "plugin_name", None)
        if not name:
            raise CheckpointError(f"{path}: model has no plugin_name (create it with ecgzoo.create_model) and meta has no 'model'")
        meta["model"] = name
    if "model_config" not in meta:
        config = getattr(module, "config", None)
        meta["model_config"] = config.model_dump(mode="json") if config is not None else {}
    # clone: safetensors refuses tensors that share memory (tied weights, views)
    tensors = {f"{_MODEL}{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    encoded = _encode(meta, tensors, "meta")
    # the data region does not depend on the metadata (offsets are relative to it): serialize once
    # to digest it, then again with the digest in the header
    digest = hashlib.sha256(_data_region(safetensors.torch.save(tensors))).hexdigest()
    header = {"format": FORMAT, "version": VERSION, "meta": encoded,
              "tensors_sha256": digest, "meta_sha256": _meta_digest(encoded)}
    data = safetensors.torch.save(tensors, metadata={_META_KEY: dumps(header)})
    write_bytes_atomic(path, data)
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model state_dict, meta) of a checkpoint written by `save_checkpoint`; never unpickles, checks digests."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    return load_checkpoint_bytes(path.read_bytes(), str(path))


def _read_header(data: bytes, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the ecgzoo header of a safetensors file's bytes (format checked, digests not yet)."""
    try:
        tensors = safetensors.torch.load(data)
        (n,) = struct.unpack("<Q", data[:8])
        header_meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise CheckpointError(
            f"{source}: not a readable ecgzoo checkpoint (safetensors file expected; {type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(header_meta, dict) or _META_KEY not in header_meta:
        raise CheckpointError(f"{source}: safetensors file without ecgzoo metadata (header key {_META_KEY!r} missing)")
    try:
        header = json.loads(header_meta[_META_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{source}: ecgzoo metadata is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(header.get("meta"), dict):
        raise CheckpointError(f"{source}: metadata is not in the {FORMAT} format")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{source}: checkpoint format version {header.get('version')!r}, this ecgzoo reads {VERSION}")
    return tensors, header


def verify_digests(data: bytes, header: dict[str, Any], source: str) -> bool:
    """Check the header's digests against the file's bytes; False for an old file without them.

    Raises CheckpointError naming `source` when a digest is present and does not match.
    """
    def damaged(part: str) -> CheckpointError:
        return CheckpointError(f"{source}: checkpoint is damaged: its {part} does not match the SHA-256 digest stored when "
                               "it was written (changed on disk or in a copy); restore it from a good copy or train again")

    expected = header.get("tensors_sha256")
    if expected is not None and hashlib.sha256(_data_region(data)).hexdigest() != expected:
        raise damaged("tensor data")
    if header.get("meta_sha256") is not None and _meta_digest(header["meta"]) != header["meta_sha256"]:
        raise damaged("metadata")
    return expected is not None


def load_checkpoint_bytes(data: bytes, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`load_checkpoint` of a file's bytes (read once, e.g. on rank 0 and broadcast); `source` names it in errors."""
    tensors, header = _read_header(data, source)
    verify_digests(data, header, source)
    meta = _decode(header["meta"], tensors, source)
    for key in ("model", "model_config"):
        if key not in meta:
            raise CheckpointError(f"{source}: metadata lacks {key!r}")
    if not isinstance(meta["model"], str) or not isinstance(meta["model_config"], dict):
        raise CheckpointError(f"{source}: metadata 'model' must be a plugin name and 'model_config' a table")
    state = {k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)}
    return state, meta


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> EcgModel:
    """Rebuild the model through its plugin (`ecgzoo.create_model`) and load the weights; eval mode."""
    from ecgzoo.core.registry import PluginError, get_registry

    state, meta = load_checkpoint(path)
    try:
        model = get_registry().create("model", meta["model"], **meta["model_config"])
    except (PluginError, ValueError, TypeError, RuntimeError, MemoryError, OverflowError) as exc:
        # metadata with wrong types or absurd sizes (a file written by something else): one clear line
        raise CheckpointError(f"{path}: cannot rebuild model {meta['model']!r}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # torch lists each mismatch on its own line: one line here
        raise CheckpointError(f"{path}: weights do not fit model {meta['model']!r}: {detail}") from exc
    return model.to(device).eval()


def rng_state() -> dict[str, Any]:
    """States of the python, numpy and torch (CPU and CUDA) generators."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].astype(np.int64), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generators captured by `rng_state` (after a checkpoint round trip)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys).astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so a run with the same seed repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def cudnn_flags_restored():
    """Put cuDNN's process-wide `benchmark` and `deterministic` flags back when the block (or call) ends.

    A trainer sets them for reproducible CUDA runs; the process that called it (a notebook, a
    benchmark) keeps its own settings. Usable as `with cudnn_flags_restored():` or as a decorator.
    """
    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.deterministic)
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.deterministic = saved
