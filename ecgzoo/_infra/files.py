"""Files ecgzoo writes: all or nothing (a temporary file and `os.replace`), under safe names.

A crash never leaves half a file under its real name; a full disk is a `DiskFullError` saying so, with
the previous content kept and no temporary file left. JSON files are strict JSON (`ecgzoo._infra.jsonio`).
Infrastructure, not public API (plugins use `write_atomic`, `write_json`, `safe_filename` from `ecgzoo.plugin_api`).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path
from typing import Any

from ecgzoo._infra.jsonio import dumps


class DiskFullError(OSError):
    """No space left while writing a file: the file keeps its previous content, no partial file is left."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`.

    Either the whole new content is in place, or `path` still holds what it held before (or
    does not exist); the temporary file is removed on any failure. A full disk (ENOSPC, EDQUOT)
    raises `DiskFullError` with a message saying so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = "its previous content is kept" if path.exists() else "nothing was written"
            raise DiskFullError(exc.errno, f"{path}: the disk is full (no space left writing {len(data):,} bytes); "
                                           f"{kept}, no partial file left. Free space and run again") from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


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
