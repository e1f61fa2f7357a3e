"""Integrity of what ecgzoo reads back: checkpoint digests, strict JSON, a full disk."""

from __future__ import annotations

import errno
import json
import math
import os
import struct

import numpy as np
import pytest
import torch
import toy_plugins

import ecgzoo
from ecgzoo._infra.files import DiskFullError, write_bytes_atomic
from ecgzoo._infra.jsonio import dumps, loads_strict
from ecgzoo.models.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_bytes, model_from_checkpoint, save_checkpoint


@pytest.fixture
def toy():
    ecgzoo.register_plugin(toy_plugins)
    torch.manual_seed(0)
    return ecgzoo.create_model("toy", num_classes=3, width=8, in_leads=1)


def _header(path) -> tuple[int, dict]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01  # one bit
    path.write_bytes(bytes(data))


def test_one_flipped_bit_anywhere_in_the_tensor_data_is_refused(tmp_path, toy):
    path = save_checkpoint(tmp_path / "best.safetensors", toy, {"classes": ["N", "A", "O"]})
    n, _ = _header(path)
    size = path.stat().st_size
    for offset in (8 + n, 8 + n + (size - 8 - n) // 2, size - 1):  # first, middle and last data byte
        bad = tmp_path / f"bad{offset}.safetensors"
        bad.write_bytes(path.read_bytes())
        _flip(bad, offset)
        with pytest.raises(CheckpointError, match=rf"bad{offset}\.safetensors: checkpoint is damaged: its tensor data"):
            load_checkpoint(bad)
        with pytest.raises(CheckpointError, match="damaged"):
            model_from_checkpoint(bad)
        with pytest.raises(CheckpointError, match=r"^from-rank-0: checkpoint is damaged"):
            load_checkpoint_bytes(bad.read_bytes(), "from-rank-0")


def test_digest_is_of_the_tensor_bytes_and_survives_a_round_trip(tmp_path, toy):
    import hashlib

    path = save_checkpoint(tmp_path / "c.safetensors", toy, {"best": -math.inf, "nan": math.nan})
    n, header = _header(path)
    ecg = loads_strict(header["__metadata__"]["ecgzoo"])  # strict JSON: no -Infinity / NaN in the header
    assert ecg["tensors_sha256"] == hashlib.sha256(path.read_bytes()[8 + n :]).hexdigest()
    state, meta = load_checkpoint(path)
    assert meta["best"] == -math.inf and math.isnan(meta["nan"])
    for k, v in toy.state_dict().items():
        assert torch.equal(state[k], v)


def test_old_checkpoint_without_digests_still_loads(tmp_path, toy):
    path = save_checkpoint(tmp_path / "new.safetensors", toy, {"classes": ["N", "A", "O"]})
    data = path.read_bytes()
    n, header = _header(path)
    ecg = json.loads(header["__metadata__"]["ecgzoo"])
    del ecg["tensors_sha256"], ecg["meta_sha256"]
    header["__metadata__"]["ecgzoo"] = json.dumps(ecg)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    old = tmp_path / "old.safetensors"
    old.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    model = model_from_checkpoint(old)
    x = torch.randn(2, 1, 64)
    assert torch.equal(model(x), toy.eval()(x))


def test_strict_json_helper_never_writes_nan_or_infinity():
    text = dumps({"loss": float("nan"), "best": -math.inf, "arr": np.array([1.0, np.inf]), "n": np.int64(3),
                  "f": np.float32(0.5), "ok": True, "nested": [{"x": math.inf}]})
    assert loads_strict(text) == {"loss": None, "best": None, "arr": [1.0, None], "n": 3, "f": 0.5, "ok": True,
                                  "nested": [{"x": None}]}
    with pytest.raises(ValueError, match="NaN"):
        loads_strict('{"a": NaN}')


def _enospc_after(monkeypatch, limit: int):
    """Make os.write fail with ENOSPC once `limit` bytes have been written in total (a disk filling up)."""
    written = [0]
    real_write = os.write

    def write(fd, data):
        room = limit - written[0]
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(memoryview(data)[:room]))
        written[0] += n
        return n

    monkeypatch.setattr(os, "write", write)


def test_full_disk_keeps_the_old_file_and_leaves_no_partial_file(tmp_path, toy, monkeypatch):
    path = save_checkpoint(tmp_path / "last.safetensors", toy, {"epoch": 1})
    before = path.read_bytes()
    with torch.no_grad():
        for p in toy.parameters():
            p.add_(1.0)
    _enospc_after(monkeypatch, limit=len(before) // 2)  # half of the new file fits
    with pytest.raises(DiskFullError, match=r"last\.safetensors: the disk is full .* previous content is kept") as info:
        save_checkpoint(path, toy, {"epoch": 2})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.safetensors"]
    assert load_checkpoint(path)[1]["epoch"] == 1
    with pytest.raises(DiskFullError, match="nothing was written"):
        _enospc_after(monkeypatch, limit=0)
        write_bytes_atomic(tmp_path / "new.json", b"{}")
    assert not (tmp_path / "new.json").exists()
