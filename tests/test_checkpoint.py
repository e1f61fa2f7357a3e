"""Checkpoints: exact round trips, full training state, and clear errors for bad files."""

from __future__ import annotations

import json
import random
import struct

import numpy as np
import pytest
import torch
import toy_plugins

import ecgzoo
from ecgzoo.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)


@pytest.fixture
def toy():
    ecgzoo.register_plugin(toy_plugins)
    torch.manual_seed(0)
    return ecgzoo.create_model("toy", num_classes=4, width=6, in_leads=2)


def test_round_trip_rebuilds_the_same_model(tmp_path, toy):
    path = save_checkpoint(tmp_path / "best.safetensors", toy, {"classes": ["N", "A", "O", "~"], "epoch": 3})
    model = model_from_checkpoint(path)
    assert type(model) is type(toy) and model.config == toy.config and not model.training
    x = torch.randn(3, 2, 50)
    toy.eval()
    assert torch.equal(model(x), toy(x))
    state, meta = load_checkpoint(path)
    assert meta["model"] == "toy" and meta["model_config"]["width"] == 6
    assert meta["classes"] == ["N", "A", "O", "~"] and meta["epoch"] == 3
    assert set(state) == set(toy.state_dict())
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_optimizer_and_rng_state_round_trip_exactly(tmp_path, toy):
    opt = torch.optim.Adam(toy.parameters(), lr=1e-3)
    toy(torch.randn(2, 2, 30)).sum().backward()
    opt.step()
    seed_everything(7)
    torch.rand(3), np.random.rand(2), random.random()
    save_checkpoint(tmp_path / "last.safetensors", toy, {"optimizer": opt.state_dict(), "rng": rng_state(), "best": -float("inf")})
    expected = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    _, meta = load_checkpoint(tmp_path / "last.safetensors")
    assert meta["best"] == -float("inf")
    set_rng_state(meta["rng"])
    again = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
    opt2 = torch.optim.Adam(ecgzoo.create_model("toy", num_classes=4, width=6, in_leads=2).parameters())
    opt2.load_state_dict(meta["optimizer"])
    for k, st in opt.state_dict()["state"].items():
        for name, value in st.items():
            assert torch.equal(opt2.state_dict()["state"][k][name], value), name
    assert opt2.param_groups[0]["lr"] == 1e-3 and tuple(opt2.param_groups[0]["betas"]) == (0.9, 0.999)


def test_pickle_or_garbage_is_rejected_naming_the_file(tmp_path, toy):
    pickled = tmp_path / "model.pt"
    torch.save(toy.state_dict(), pickled)
    with pytest.raises(CheckpointError, match=r"model\.pt: not a readable ecgzoo checkpoint"):
        load_checkpoint(pickled)
    good = save_checkpoint(tmp_path / "good.safetensors", toy, {})
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="missing.safetensors: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def _rewrite_header(src, dst, edit):
    """Copy a safetensors file with its JSON header changed by `edit(dict)`."""
    data = src.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def test_tampered_metadata_is_a_clear_error(tmp_path, toy):
    good = save_checkpoint(tmp_path / "good.safetensors", toy, {})
    bad = tmp_path / "tampered.safetensors"

    def wrong_model(h, drop_digests=False):
        meta = json.loads(h["__metadata__"]["ecgzoo"])
        meta["meta"]["model"] = "no-such-model"
        if drop_digests:  # as a file written before ecgzoo stored digests
            del meta["tensors_sha256"], meta["meta_sha256"]
        h["__metadata__"]["ecgzoo"] = json.dumps(meta)

    _rewrite_header(good, bad, wrong_model)
    with pytest.raises(CheckpointError, match=r"tampered.safetensors: checkpoint is damaged: its metadata"):
        model_from_checkpoint(bad)
    _rewrite_header(good, bad, lambda h: wrong_model(h, drop_digests=True))
    with pytest.raises(CheckpointError, match=r"tampered.safetensors: cannot rebuild model 'no-such-model'"):
        model_from_checkpoint(bad)

    _rewrite_header(good, bad, lambda h: h["__metadata__"].update(ecgzoo="{not json"))
    with pytest.raises(CheckpointError, match="tampered.safetensors: ecgzoo metadata is not valid JSON"):
        load_checkpoint(bad)

    _rewrite_header(good, bad, lambda h: h.pop("__metadata__"))
    with pytest.raises(CheckpointError, match="tampered.safetensors: safetensors file without ecgzoo metadata"):
        load_checkpoint(bad)

    def rename_weight(h):
        h["model.conv.weigth"] = h.pop("model.conv.weight")

    _rewrite_header(good, bad, rename_weight)
    with pytest.raises(CheckpointError, match=r"(?s)tampered.safetensors: weights do not fit model 'toy'.*Missing.*conv.weight"):
        model_from_checkpoint(bad)


def test_unstorable_metadata_is_refused(tmp_path, toy):
    with pytest.raises(TypeError, match=r"meta.callback: cannot store a function"):
        save_checkpoint(tmp_path / "x.safetensors", toy, {"callback": lambda: None})
