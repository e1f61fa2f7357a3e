"""State under faults: a damaged cache, two processes on one run name, a full disk, SIGKILL."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from run_helpers import cli, register_toy, shared_run, tiny_run_args

import ecgzoo
from ecgzoo._infra.jsonio import loads_strict
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare
from ecgzoo.models.checkpoint import load_checkpoint
from ecgzoo.serving.loaded_run import INCOMPLETE
from ecgzoo.training.run_dir import RunDir

TESTS = Path(__file__).resolve().parent
STEPS = [{"name": "zscore"}, {"name": "pad-crop", "seconds": 5.0}]


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    """A child python with the toy plugins importable (as in the tests), running `code`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, limit_s: float = 120.0) -> None:
    """Poll until `path` exists (the child reached a known point); fail if the child exits first."""
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited ({proc.returncode}) before {path.name}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"child did not reach {path.name}")
        time.sleep(0.05)


# -- damaged prepared-signal cache -------------------------------------------------------------

def _entry(tmp_path):
    data = ecgzoo.get_dataset("synthetic", records=6, seconds=4.0)
    first = prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    return data, first, np.array(first.signals), first.cache_path


def _flip_signals(entry: Path) -> None:
    path = entry / "signals.npy"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "meta-not-json", "meta-missing", "no-digest"])
def test_damaged_cache_entry_is_rebuilt_with_a_note_never_used(tmp_path, damage, capsys):
    data, first, good, entry = _entry(tmp_path)
    if damage == "flipped-byte":
        _flip_signals(entry)
    elif damage == "truncated":
        with open(entry / "signals.npy", "r+b") as f:
            f.truncate(os.path.getsize(entry / "signals.npy") - 100)
    elif damage == "meta-not-json":
        (entry / "meta.json").write_text('{"count": 6, ')
    elif damage == "meta-missing":
        (entry / "meta.json").unlink()
    else:  # an entry written before digests existed: rebuilt once, then used
        meta = json.loads((entry / "meta.json").read_text())
        del meta["signals_sha256"]
        (entry / "meta.json").write_text(json.dumps(meta))
    capsys.readouterr()
    again = prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert not again.from_cache, "a damaged entry was used"
    assert again.cache_path == entry and len(again.notes) == 1 and "damaged" in again.notes[0]
    assert f"cache entry {entry} is damaged" in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(again.signals), good)
    third = prepare(data, Pipeline(STEPS), cache_dir=tmp_path, progress=False)
    assert third.from_cache and third.notes == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [entry.name]  # nothing set aside is left


def test_cache_metadata_is_strict_json(tmp_path):
    _, _, _, entry = _entry(tmp_path)
    meta = loads_strict((entry / "meta.json").read_text())
    assert len(meta["signals_sha256"]) == 64


# -- one run name, one writer ------------------------------------------------------------------

def test_second_process_with_the_same_run_name_refuses_at_once_until_the_holder_dies(tmp_path):
    holder = _python("import sys; from ecgzoo.training.run_dir import RunDir; RunDir.create(sys.argv[1], 'same'); "
                     "print('locked', flush=True); sys.stdin.read()", str(tmp_path), stdin=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "locked"
    code, out, err = cli(*tiny_run_args(tmp_path, "same"))
    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert f"run 'same' in {tmp_path} is being written by another ecgzoo process (pid {holder.pid}" in line
    assert not (tmp_path / "same").exists()
    holder.send_signal(signal.SIGKILL)  # dies without any cleanup: the kernel drops its lock
    holder.communicate()  # waits, then closes its pipes
    run = RunDir.create(tmp_path, "same")
    assert run.work.is_dir() and run.work.name == f"same{INCOMPLETE}"
    with pytest.raises(FileExistsError, match="being written by another ecgzoo process"):
        RunDir.create(tmp_path, "same")  # the lock holds within one process too
    run.finish()
    assert not list(tmp_path.glob(".*.lock"))


# -- a full disk during a run ------------------------------------------------------------------

def test_full_disk_during_training_keeps_the_last_complete_checkpoint(tmp_path, monkeypatch):
    """ENOSPC while writing the second epoch's training state: the first survives, no partial file, clear error."""
    real_write = os.write
    state = {"last_writes": 0, "full": False}

    def write(fd, data):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.startswith(str(tmp_path)):
            if ".last.safetensors.tmp-" in target and not state["full"]:
                state["last_writes"] += 1
                if state["last_writes"] == 2:  # the disk fills up half-way through epoch 2's state
                    state["full"] = True
                    real_write(fd, bytes(memoryview(data)[: len(data) // 2]))
            if state["full"]:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to see which file a write goes to")
    monkeypatch.setattr(os, "write", write)
    code, out, err = cli(*tiny_run_args(tmp_path, "full"))
    monkeypatch.undo()
    assert code == 1
    assert "the disk is full" in err and "last.safetensors" in err and "Traceback" not in err
    work = tmp_path / f"full{INCOMPLETE}"
    assert not (tmp_path / "full").exists() and work.is_dir()
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name], "half-written file left"
    _, meta = load_checkpoint(work / "checkpoints" / "last.safetensors")
    assert meta["epoch"] == 1 and meta["kind"] == "training-state"
    # space again: the same command continues from that checkpoint and finishes
    code, out, err = cli(*tiny_run_args(tmp_path, "full"))
    assert code == 0, err
    assert "continuing an incomplete run" in err
    history = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


# -- SIGKILL during evaluate and cache preparation ---------------------------------------------

_EVALUATE = """
import sys, toy_plugins, ecgzoo
from ecgzoo.cli import main
ecgzoo.register_plugin(toy_plugins, "toy-plugins")
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_during_evaluate_and_cache_preparation_leaves_nothing_that_looks_complete(tmp_path, tmp_path_factory):
    run_dir = shared_run(tmp_path_factory)[0]
    cache, out, gate = tmp_path / "cache", tmp_path / "eval", tmp_path / "gate"
    sets = ["--set", "records=12", "--set", f"cache_dir={cache}", "--set", f"gate={gate}", "--device", "cpu",
            "--out", str(out)]
    child = _python(_EVALUATE, "evaluate", str(run_dir), "toy-gated", *sets)
    _wait_for(Path(f"{gate}.reached"), child)  # inside prepare(), three records into the cache entry
    child.send_signal(signal.SIGKILL)
    child.communicate()  # waits, then closes its pipes
    assert not out.exists()
    work = out.with_name(out.name + INCOMPLETE)
    assert work.is_dir()  # marked incomplete by its name
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".partial-")] == [], "cache entry looks complete"
    # what a process killed later (while writing its outputs) would have left behind
    (work / "metrics.json").write_text('{"challenge_f1": 0.99}')
    gate.write_text("open")  # the same dataset options (same cache key), no waiting this time
    code, _, err = cli("evaluate", str(run_dir), "toy-gated", *sets)
    assert code == 0, err
    assert not work.exists() and not list(cache.glob(".partial-*"))
    metrics = loads_strict((out / "metrics.json").read_text())
    assert metrics["n"] == 12 and metrics["challenge_f1"] != 0.99
    assert sorted(p.name for p in out.iterdir()) == ["figures", "metrics.json", "predictions.csv", "report.md"]
