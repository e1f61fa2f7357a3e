"""Strict JSON: the one encoder behind every JSON document ecgzoo writes.

Python's `json.dumps` writes `NaN`, `Infinity` and `-Infinity` for non-finite floats by default.
Those are not JSON (RFC 8259): a strict parser downstream (JavaScript's `JSON.parse`, Go,
`jq`, Python with `parse_constant` raising) fails on them, far from the cause. Every writer in
ecgzoo (run directory files, evaluation metrics, `predict --json`, the trainer's
`metrics.jsonl`, cache metadata, checkpoint headers) goes through `dumps` here, which
guarantees standard JSON:

  * a non-finite float becomes `null` (a value that could not be computed); callers that need
    to round-trip infinities (checkpoint metadata) encode them themselves before calling;
  * numpy scalars and arrays become plain numbers and lists; paths and other objects their `str`;
  * the result is produced with `allow_nan=False`, so anything left over is an error here,
    never an invalid file.

`loads_strict` is the matching reader: it refuses `NaN` / `Infinity`, so files that ecgzoo reads
back (and tests) see exactly what a strict consumer sees.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np


def to_strict(obj: Any) -> Any:
    """A copy of `obj` holding only JSON types, with non-finite floats replaced by None."""
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: to_strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_strict(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    return str(obj)


def dumps(obj: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """Standard JSON text of `obj` (see the module doc); never writes NaN or Infinity."""
    return json.dumps(to_strict(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not standard JSON: {name}")


def loads_strict(text: str | bytes) -> Any:
    """`json.loads` that raises ValueError on NaN / Infinity / -Infinity."""
    return json.loads(text, parse_constant=_refuse_constant)
