"""Data-parallel training with PyTorch's own engine (DistributedDataParallel + a distributed sampler).

Two ways to get several processes; the trainer (`ecgzoo_plugins.trainer`) needs no other change:

* `torchrun --nproc_per_node=N -m ecgzoo.cli run MODEL DATASET ...` (or any script that calls
  `Trainer.fit`): torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT and the
  trainer calls `setup()`, which joins the process group (nccl for CUDA, gloo for CPU); the job
  calls `shutdown()` once at its end.
  Several nodes: the same command on each node with `--nnodes=M --node_rank=i
  --rdzv_endpoint=HOST:PORT` (see docs/running.md, "Training on several GPUs / nodes").
* `launch(fn, nproc, *args)` from Python (what `ecgzoo run --nproc N` calls): spawns `nproc`
  local processes with torch.multiprocessing, joins them into one group on 127.0.0.1 (gloo on
  CPU, nccl on CUDA with one GPU per process) and returns rank 0's result. Every process runs
  the whole `fn`; code that writes files asks `is_main_process()` first. Each worker ends when
  the launching process dies (`end_with_parent`), so no orphan keeps training.

The trainer shards the training set with `torch.utils.data.DistributedSampler`, lets only rank 0
write checkpoints and metrics, and sums confusion matrices and loss totals over ranks
(`all_reduce_sum`) so validation metrics are those of the whole validation set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly one-process) group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from exc


def backend_for(device: str) -> str:
    """nccl for CUDA devices, gloo otherwise."""
    return "nccl" if str(device).startswith("cuda") else "gloo"


def setup(device: str = "cpu") -> DistContext:
    """Join the process group that torchrun / `launch` describe in the environment (no-op alone)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = _env_int("LOCAL_RANK", 0)
    if backend_for(device) == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend_for(device))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def context() -> DistContext:
    """The current rank / world size (one process when no group is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return DistContext()


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed): the one process that writes files."""
    return context().is_main


def barrier() -> None:
    if context().enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of `tensor` over ranks (itself when not distributed); moved to the backend's device."""
    if not context().enabled:
        return tensor
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    out = tensor.detach().clone().to(device)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(tensor.device)


def broadcast_bytes(data: bytes | None, src: int = 0) -> bytes | None:
    """Rank `src`'s bytes (or None) on every rank, sent as a uint8 tensor (no pickling)."""
    if not context().enabled:
        return data
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    size = torch.tensor([-1 if data is None else len(data)], dtype=torch.int64, device=device)
    dist.broadcast(size, src)
    n = int(size.item())
    if n < 0:
        return None
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device) if context().rank == src else torch.empty(
        n, dtype=torch.uint8, device=device
    )
    dist.broadcast(buf, src)
    return bytes(buf.cpu().numpy().tobytes())


def all_gather_objects(obj: Any) -> list[Any]:
    """One object per rank (between our own processes only; used for per-rank RNG states)."""
    if not context().enabled:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def shutdown() -> None:
    """Leave the process group cleanly (call once at the end of a torchrun job; `launch` does it itself)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()  # free DDP/gloo objects in reference cycles while the group is still alive
    dist.barrier()  # no rank tears the group down while another still talks to it
    dist.destroy_process_group()


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    """Portable fallback: a daemon thread that ends this process once its parent is no longer `parent`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="ecgzoo-parent-watch", daemon=True).start()


def end_with_parent(parent: int) -> None:
    """Make this process end when its parent `parent` (the launcher) dies, whatever its signal handlers.

    On Linux the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG; it cannot be
    ignored, unlike the SIGINT torch's spawn asks for, which a job started in the background by a
    non-interactive shell inherits as ignored). The parent may have died before the request: if
    the parent is then no longer `parent`, the process ends at once. Elsewhere (or if prctl
    fails) a watcher thread polls `os.getppid()`. (The kernel watches the thread that started
    the worker: `launch` blocks in that thread until every worker has ended.)
    """
    libc = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if libc is not None and ctypes.CDLL(libc, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return
    _watch_parent(parent)


def _worker(
    rank: int, fn: Callable[..., Any], nproc: int, port: int, device: str, queue: Any, args: tuple, parent: int
) -> None:
    end_with_parent(parent)
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(nproc),
        LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nproc),
    )
    if sys.platform.startswith("linux") and os.path.exists("/sys/class/net/lo"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # stay on loopback whatever the hostname resolves to
    setup(device)
    try:
        result = fn(*args)
        if rank == 0:
            queue.put(result)
    except BaseException:
        dist.destroy_process_group()  # no barrier: the other ranks may never get there
        raise
    shutdown()


def launch(fn: Callable[..., Any], nproc: int, *args: Any, device: str = "cpu") -> Any:
    """Run `fn(*args)` in `nproc` local processes joined into one group; return rank 0's result.

    `fn` and `args` must be picklable (a module-level function). `device="cuda"` uses nccl and
    one GPU per process (needs `nproc` <= number of GPUs). `nproc=1` calls `fn` directly.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    if nproc == 1:
        return fn(*args)
    if str(device).startswith("cuda") and torch.cuda.device_count() < nproc:
        raise ValueError(f"nproc={nproc} CUDA processes need {nproc} GPUs, found {torch.cuda.device_count()}")
    queue = mp.get_context("spawn").SimpleQueue()
    ctx = mp.start_processes(
        _worker, args=(fn, nproc, free_port(), str(device), queue, args, os.getpid()), nprocs=nproc, join=False,
        start_method="spawn",
    )
    result, interrupted = None, False
    while True:
        try:
            if ctx.join(timeout=0.2):
                break
            if not queue.empty():  # drain while waiting: a large result must not block rank 0
                result = queue.get()
        except KeyboardInterrupt:
            if interrupted:  # second Ctrl-C: leave now (torch terminates the processes)
                raise
            interrupted = True  # the processes got the same Ctrl-C: let them save and stop
        except mp.ProcessRaisedException as exc:
            if interrupted and "KeyboardInterrupt" in str(exc):
                raise KeyboardInterrupt from None
            raise
    if not queue.empty():
        result = queue.get()
    if interrupted:
        raise KeyboardInterrupt
    return result
