"""Data-parallel training: 2 CPU processes, gloo on loopback, DistributedDataParallel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

import ecgzoo
from ecgzoo.models.checkpoint import load_checkpoint
from ecgzoo.training import distributed


def _train(base: str) -> dict:
    """Runs in every process: the same call a single-process run makes, each rank with its own folder."""
    import test_trainer as tt

    ctx = distributed.context()
    tt.register()
    torch.manual_seed(0)
    net = ecgzoo.create_model("toy", num_classes=3, width=4)
    trainer = ecgzoo.create_trainer("trainer", epochs=3, batch_size=5, lr=0.05, progress=False, device="cpu")
    history = trainer.train_and_checkpoint(net, tt.ToyData(30, seed=1), tt.ToyData(15, seed=2), tt.CLASSES, Path(base) / f"rank{ctx.rank}")
    weights = torch.cat([p.detach().flatten() for p in net.parameters()])
    gathered = distributed.all_gather_objects(weights)
    return {"history": history, "world": ctx.world_size, "same_weights": all(torch.equal(w, weights) for w in gathered)}


def test_two_cpu_processes_train_with_gloo_and_only_rank0_writes(tmp_path):
    result = distributed.launch(_train, 2, str(tmp_path), device="cpu")
    assert result["world"] == 2 and result["same_weights"], "ranks must hold identical weights"
    history = result["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == ["best.safetensors", "last.safetensors", "metrics.jsonl"]
    assert not (tmp_path / "rank1").exists() or not any((tmp_path / "rank1").iterdir()), "rank 1 wrote files"
    _, meta = load_checkpoint(tmp_path / "rank0" / "best.safetensors")
    # the 15 validation records are split 8 + 7 over the ranks and the confusion matrices summed: no record twice
    assert meta["metrics"]["n"] == 15
    _, last = load_checkpoint(tmp_path / "rank0" / "last.safetensors")
    assert last["fingerprint"]["world_size"] == 2 and len(last["rng"]) == 2


def test_single_process_context_and_launch_errors(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.setup("cpu") == distributed.DistContext(0, 1, 0)
    assert distributed.is_main_process() and distributed.all_gather_objects(3) == [3]
    assert distributed.launch(os.getpid, 1) == os.getpid()  # nproc=1 runs in this process
    with pytest.raises(ValueError, match="nproc must be at least 1"):
        distributed.launch(os.getpid, 0)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        distributed.setup("cpu")


TORCHRUN_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import test_distributed
from ecgzoo.training import distributed
epochs = test_distributed._train({out!r})["history"][-1]["epoch"]
Path({out!r}, f"done-rank{{distributed.context().rank}}").write_text(str(epochs))
distributed.shutdown()
"""


def test_torchrun_launch_uses_the_environment(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(TORCHRUN_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={distributed.free_port()}", str(script)]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(tmp_path / f"done-rank{r}").read_text() for r in (0, 1)] == ["3", "3"]  # both ranks did 3 epochs
    assert (tmp_path / "rank0" / "best.safetensors").is_file() and not (tmp_path / "rank1").exists()


def _sleep_forever(fifo: str) -> None:
    """Tell the test this worker's pid through the FIFO (one short write: atomic), then wait to be ended."""
    import time

    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    time.sleep(600)


LAUNCH_SCRIPT = """
import signal
import sys
sys.path.insert(0, {tests!r})
# as in a job started with `&` by a non-interactive shell (a CI script running suites side by side):
# SIGINT ignored, inherited by the workers, so torch's own SIGINT-on-parent-death does nothing
signal.signal(signal.SIGINT, signal.SIG_IGN)
from ecgzoo.training import distributed
import test_distributed
if __name__ == "__main__":
    distributed.launch(test_distributed._sleep_forever, 2, {out!r})
"""


def _read_pids(fifo: Path, count: int, timeout: float) -> list[int]:
    """Block (select, no polling) until `count` workers have written their pid to the FIFO."""
    import select

    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(fifo, os.O_WRONLY)  # no EOF between one worker's close and the next one's open
    data = b""
    try:
        while data.count(b"\n") < count:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, f"workers did not start within {timeout:.0f} s (pids so far: {data!r})"
            data += os.read(fd, 4096)
    finally:
        os.close(keep_open)
        os.close(fd)
    return [int(line) for line in data.split()]


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds to wait for unrelated processes")
def test_workers_end_when_the_launching_process_is_killed(tmp_path):
    """Each worker asks the kernel for SIGKILL when its launcher dies: no orphan keeps training,
    even where SIGINT is ignored (torch's own SIGINT-on-parent-death is then a no-op).

    Waits are on events, not on the clock: the pids arrive through a FIFO, and each worker's end
    is its pidfd becoming readable (opened before the kill, so a recycled pid cannot fool it;
    a zombie counts as ended). The timeouts only bound a failure, so a loaded machine is slow,
    never red.
    """
    import select
    import signal
    import subprocess
    import sys

    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    script = tmp_path / "launch.py"
    script.write_text(LAUNCH_SCRIPT.format(tests=str(Path(__file__).parent), out=str(fifo)))
    parent = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "GLOO_SOCKET_IFNAME": "lo"})
    try:
        pidfds = {pid: os.pidfd_open(pid) for pid in _read_pids(fifo, 2, timeout=300)}
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    try:
        alive = dict(pidfds)
        while alive:
            ready, _, _ = select.select(list(alive.values()), [], [], 120)
            if not ready:
                break
            alive = {pid: fd for pid, fd in alive.items() if fd not in ready}
        assert not alive, f"workers {sorted(alive)} outlived the killed launcher by 120 s"
    finally:
        for pid, fd in pidfds.items():
            if pid in alive:
                os.kill(pid, signal.SIGKILL)
            os.close(fd)


def _run_child(code: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl PR_SET_PDEATHSIG is Linux only")
def test_a_worker_whose_launcher_died_before_it_asked_ends_at_once():
    """The race: the launcher may die before the worker's prctl; the pid check after it closes the gap."""
    import signal

    # -1 is nobody's pid: as if the launcher had died and the worker had been re-parented
    done = _run_child("from ecgzoo.training import distributed; distributed.end_with_parent(-1); print('still running')")
    assert done.returncode == -signal.SIGKILL and "still running" not in done.stdout, (done.returncode, done.stderr)
    alive = _run_child("import os; from ecgzoo.training import distributed; distributed.end_with_parent(os.getppid()); print('ok')")
    assert alive.returncode == 0 and alive.stdout.strip() == "ok", alive.stderr


def test_the_portable_fallback_ends_a_worker_whose_parent_changed():
    """Where there is no prctl, a watcher thread ends the process once its parent is not the launcher."""
    done = _run_child("import time; from ecgzoo.training import distributed; distributed._watch_parent(-1, 0.01); time.sleep(110)")
    assert done.returncode == 1, (done.returncode, done.stderr)
