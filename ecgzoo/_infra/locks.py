"""One writer per folder: an exclusive `flock` that the kernel drops when its holder dies (even by SIGKILL).

`RunDir.create` holds one on `runs/.<name>.lock` while a run is built, `ecgzoo evaluate` one on its output folder;
a second process given the same name refuses at once (`InUseError`). Infrastructure, not public API.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


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
