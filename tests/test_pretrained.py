"""Pretrained weights: publishing a run, manifests, integrity checks, download, loading by MODEL:TAG."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from loopback import RangeHandler, serve
from run_helpers import cli, register_toy, shared_run

import ecgzoo
from ecgzoo.core.manifest import PretrainedError, read_manifest
from ecgzoo.serving.loaded_run import load_run
from ecgzoo.serving.publish import publish_run


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


@pytest.fixture
def published(tmp_path_factory, tmp_path):
    """The session's tiny toy run published as toy:tiny into a folder, declared by a plugin object."""
    run_dir = shared_run(tmp_path_factory)[0]
    dest = tmp_path / "weights"
    manifest = publish_run(run_dir, "tiny", dest, command="ecgzoo run toy synthetic ...", license_weights="MIT",
                           license_data="CC0", data_attribution="synthetic data", lead_names=["synthetic"])
    declare(manifest)
    return run_dir, manifest


def declare(*manifests: Path | object, name: str = "test-weights") -> None:
    """Register a plugin whose `ecgzoo_pretrained` hook returns these manifests (paths or objects)."""
    plugin = types.SimpleNamespace(ecgzoo_pretrained=ecgzoo.hookimpl(lambda: list(manifests)))
    ecgzoo.register_plugin(plugin, name)


def test_published_manifest_says_what_the_weights_are(published):
    run_dir, path = published
    m = read_manifest(path)
    weights = path.parent / m.file
    assert m.name == "toy:tiny" and m.size == weights.stat().st_size
    assert m.sha256 == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    run = load_run(run_dir)
    assert m.classes == run.classes and m.input.fs == run.fs and m.input.leads == run.in_leads
    assert m.input.window_seconds == pytest.approx(run.input_samples / run.fs) and m.input.pipeline == run.input.pipeline
    assert m.metrics["validation"]["challenge_f1"] == json.loads((run_dir / "metrics.json").read_text())["challenge_f1"]
    assert json.loads((path.parent / m.splits_file).read_text())["val"] == run.splits["val"]
    card = (path.parent / "toy.tiny.md").read_text()
    assert "toy:tiny" in card and m.sha256 in card and "ecgzoo predict toy:tiny" in card


def test_pretrained_name_predicts_like_the_run(published, tmp_path):
    run_dir, _ = published
    assert "toy:tiny" in ecgzoo.list_pretrained("toy*")
    signal = np.random.default_rng(0).normal(0, 0.3, size=(1, 1500)).astype(np.float32)
    np.save(tmp_path / "x.npy", signal)
    outs = []
    for source in (str(run_dir), "toy:tiny"):
        code, out, err = cli("predict", source, str(tmp_path / "x.npy"), "--fs", "300", "--json")
        assert code == 0, err
        outs.append(json.loads(out)["results"][0]["probabilities"])
    assert outs[0] == outs[1]
    model = ecgzoo.create_model("toy", pretrained="tiny")
    assert not model.training
    reference = load_run(run_dir).model.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())


def test_damaged_weights_are_refused_before_loading(published, tmp_path):
    _, path = published
    copy = tmp_path / "damaged"
    shutil.copytree(path.parent, copy)
    weights = copy / read_manifest(path).file
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # 64 bytes zeroed in the tensor data, size unchanged
    weights.write_bytes(bytes(data))
    manifest = read_manifest(copy / path.name).model_copy(update={"tag": "damaged"})
    declare(manifest, name="damaged-weights")
    with pytest.raises(PretrainedError, match=r"damaged: SHA-256 .* the manifest says"):
        ecgzoo.create_model("toy", pretrained="damaged")
    code, _, err = cli("predict", "toy:damaged", "whatever.npy")
    assert code == 2 and "is damaged" in err and "Traceback" not in err


def test_unknown_name_lists_what_is_available(published):
    with pytest.raises(PretrainedError, match=r"no pretrained weights 'toy:nope'; available: .*toy:tiny"):
        ecgzoo.create_model("toy:nope")
    with pytest.raises(PretrainedError, match="takes the weights' own options"):
        ecgzoo.create_model("toy", pretrained="tiny", width=3)


def test_weights_from_a_url_are_downloaded_once_verified_and_cached(published, tmp_path, monkeypatch):
    _, path = published
    served = tmp_path / "server"
    served.mkdir()
    m = read_manifest(path)
    shutil.copy(path.parent / m.file, served / "w.safetensors")
    monkeypatch.setenv("ECGZOO_WEIGHTS", str(tmp_path / "cache"))
    with serve(served) as url:
        remote = m.model_copy(update={"tag": "remote", "file": None, "url": url + "w.safetensors", "folder": None})
        wrong = remote.model_copy(update={"tag": "wrong", "sha256": "0" * 64})
        declare(remote, wrong, name="remote-weights")
        model = ecgzoo.create_model("toy", pretrained="remote")
        assert len(RangeHandler.sent) == 1
        ecgzoo.create_model("toy", pretrained="remote")  # cached: nothing fetched again
        assert len(RangeHandler.sent) == 1
        with pytest.raises(PretrainedError, match="could not be downloaded.*put the file from"):
            ecgzoo.create_model("toy", pretrained="wrong")
    cached = list((tmp_path / "cache").iterdir())
    assert [p.suffix for p in cached] == [".safetensors"]  # no partial file left by the refused download
    assert not model.training
    offline = remote.model_copy(update={"tag": "offline", "url": "http://127.0.0.1:9/w.safetensors", "sha256": "1" * 64})
    declare(offline, name="offline-weights")
    with pytest.raises(PretrainedError, match=r"put the file from http://127.0.0.1:9/w.safetensors .* at "):
        ecgzoo.create_model("toy", pretrained="offline")


def test_manifest_needs_exactly_one_source(published):
    _, path = published
    m = read_manifest(path)
    with pytest.raises(ValueError, match="exactly one of 'file'"):
        m.model_validate({**m.model_dump(), "url": "http://x/y"})


def test_contract_errors_name_the_input(published, tmp_path):
    two_leads = np.random.default_rng(1).normal(0, 0.3, size=(2, 1500)).astype(np.float32)
    np.save(tmp_path / "two.npy", two_leads)
    code, _, err = cli("predict", "toy:tiny", str(tmp_path / "two.npy"), "--fs", "300")
    assert code == 2 and "2 lead(s)" in err and "--lead" in err
    code, out, err = cli("predict", "toy:tiny", str(tmp_path / "two.npy"), "--fs", "300", "--lead", "1", "--json")
    assert code == 0, err
    code, _, err = cli("predict", "toy:tiny", str(tmp_path / "two.npy"), "--fs", "300", "--lead", "V9")
    assert code == 2 and "no lead 'V9'" in err and "indices 0-1" in err
    np.save(tmp_path / "adu.npy", (two_leads[0] * 1000).astype(np.float32))
    code, out, err = cli("predict", "toy:tiny", str(tmp_path / "adu.npy"), "--fs", "300", "--json")
    assert "is not an ECG in mV" in out + err
    np.save(tmp_path / "flat.npy", np.zeros(1500, dtype=np.float32))
    code, out, err = cli("predict", "toy:tiny", str(tmp_path / "flat.npy"), "--fs", "300", "--json")
    assert "flat signal" in out + err
    code, out, err = cli("predict", "toy:tiny", str(tmp_path / "x.npy"), "--fs", "300")
    assert code == 2 and "x.npy" in err


def test_list_pretrained_shows_each_name(published):
    code, out, _ = cli("list", "--pretrained")
    assert code == 0 and "toy:tiny" in out
