"""Exported models (ONNX, TorchScript) give the same logits and CAM as eager PyTorch, at any
batch size and input length, and exports are all-or-nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from doc_blocks import run_block
from torch import nn

import ecgzoo
from ecgzoo.models.export import ExportError, export_onnx, export_torchscript

SMALL_DEEPECG = {"layers": [[8, 8, 1], [8, 8, 2], [8, 4, 2], [4, 4, 2]], "pool_after": [1, 3]}
MODELS = {
    "cnnv7-small": ("cnnv7-small", {}),
    "cnnv7-small-masked": ("cnnv7-small", {"masked_pooling": True}),
    "deepecg13-small": ("deepecg13", SMALL_DEEPECG),
    "deepecg13-small-masked": ("deepecg13", {**SMALL_DEEPECG, "masked_pooling": True}),
}
# the export traces a 400-sample example; parity is checked there and at another (odd) length
LENGTHS = [(2, 400), (3, 1001)]


def _model(key: str) -> ecgzoo.EcgModel:
    name, options = MODELS[key]
    torch.manual_seed(0)
    model = ecgzoo.create_model(name, num_classes=4, **options)
    if isinstance(model, nn.Module):  # non-trivial BatchNorm statistics, so the parity checks cover them
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _inputs(model: ecgzoo.EcgModel, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = torch.randn(batch, model.in_leads, length, generator=torch.Generator().manual_seed(length))
    if not model.masked_pooling:
        return x, None
    return x, torch.tensor([length, length // 2, 50][:batch], dtype=torch.int64)


@pytest.mark.parametrize("key", list(MODELS))
def test_onnx_matches_eager_logits_and_cam(key, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is an optional test extra: pip install ecgzoo[test]")
    model = _model(key)
    path = export_onnx(model, tmp_path / "model.onnx", example_length=400)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    assert inputs == (["signal", "valid_length"] if model.masked_pooling else ["signal"])
    assert [o.name for o in session.get_outputs()] == ["logits", "cam"]
    if any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
        onnx = pytest.importorskip("onnx")
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert "BatchNormalization" not in ops and "Conv" in ops  # eval-mode BatchNorm folded into the convolutions
    for batch, length in LENGTHS:
        x, valid = _inputs(model, batch, length)
        feeds = {"signal": x.numpy()} | ({"valid_length": valid.numpy()} if valid is not None else {})
        logits, cam = session.run(["logits", "cam"], feeds)
        with torch.no_grad():
            ref_logits, ref_cam = model.forward_with_cam(x, valid)
        assert cam.shape == (batch, 4, length)
        np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cam, ref_cam.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", ["cnnv7-small-masked", "deepecg13-small"])
def test_torchscript_matches_eager_and_loads_without_ecgzoo_classes(key, tmp_path):
    model = _model(key)
    path = export_torchscript(model, tmp_path / "model.pt", example_length=400)
    loaded = torch.jit.load(str(path))
    for batch, length in LENGTHS:
        x, valid = _inputs(model, batch, length)
        with torch.no_grad():
            logits, cam = loaded(x, valid) if valid is not None else loaded(x)
            ref_logits, ref_cam = model.forward_with_cam(x, valid)
        torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(cam, ref_cam, rtol=1e-5, atol=1e-6)


def test_export_leaves_training_mode_as_it_was(tmp_path):
    model = _model("deepecg13-small").train()
    export_torchscript(model, tmp_path / "m.pt", example_length=64)
    assert model.training and all(m.training for m in model.modules())


class _NoCam(ecgzoo.EcgModel):
    num_classes, in_leads = 2, 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, padding=1)
        self.head = nn.Linear(2, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_model_without_native_cam_is_refused_by_name(tmp_path):
    with pytest.raises(ExportError, match="_NoCam has no native class activation map"):
        export_onnx(_NoCam(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_too_short_example_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="example_length must be at least 16 samples, got 4"):
        export_torchscript(_model("cnnv7-small"), tmp_path / "m.pt", example_length=4)


def test_failed_export_keeps_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous export")

    def broken_export(*args, **kwargs):
        args[2].write(b"half a graph")  # the exporter got as far as writing some bytes
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_onnx(_model("cnnv7-small"), target, example_length=64)
    assert target.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_docs_export_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="onnxruntime is an optional test extra: pip install ecgzoo[test]")
    monkeypatch.chdir(tmp_path)
    run_block("export-example")  # docs/export.md
    assert (tmp_path / "cnnv7.onnx").stat().st_size > 100_000


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnnv7", "deepecg13"])
def test_full_size_onnx_matches_eager_on_a_60_s_record(name, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is an optional test extra: pip install ecgzoo[test]")
    torch.manual_seed(0)
    model = ecgzoo.create_model(name, num_classes=4).eval()
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"])
    x = torch.randn(1, 1, 18_000)
    logits, cam = session.run(["logits", "cam"], {"signal": x.numpy()})
    with torch.no_grad():
        ref_logits, ref_cam = model.forward_with_cam(x)
    np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cam, ref_cam.numpy(), rtol=1e-4, atol=1e-4)
