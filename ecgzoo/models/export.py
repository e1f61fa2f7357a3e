"""Export a trained model for deployment without ecgzoo: TorchScript and ONNX.

Both exports return the logits AND the class activation map from one pass, so a deployed
model explains its predictions exactly as `model.forward_with_cam` does. The batch and time
axes stay dynamic: one exported file serves any number of records of any length.

Models with masked pooling take a second input, `valid_length` (B,) int64 in input samples,
because their logits depend on it. Files are written to a temporary name and moved into
place, so a failed export never leaves a half-written model under the real name.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ecgzoo._infra.files import write_bytes_atomic
from ecgzoo.core.model import EcgModel

#: ONNX opset of `export_onnx`; onnxruntime >= 1.16 runs it
ONNX_OPSET = 17


class ExportError(ValueError):
    """A model that cannot be exported as asked (no native CAM, bad example length)."""


class _LogitsAndCam(nn.Module):
    """`forward_with_cam` as a plain `forward`, the shape exporters trace."""

    def __init__(self, model: EcgModel):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_with_cam(x, valid_length)


def _prepare(model: EcgModel, example_length: int, batch: int) -> tuple[_LogitsAndCam, tuple[torch.Tensor, ...]]:
    if not model.has_cam:
        raise ExportError(
            f"{type(model).__name__} has no native class activation map (has_cam=False); "
            "export returns logits and CAM, so only CAM models can be exported"
        )
    if example_length < 16:
        raise ExportError(f"example_length must be at least 16 samples, got {example_length}")
    wrapper = _LogitsAndCam(model).eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, model.in_leads, example_length, generator=generator)
    if model.masked_pooling:
        return wrapper, (x, torch.full((batch,), example_length, dtype=torch.int64))
    return wrapper, (x,)


def export_torchscript(model: EcgModel, path: str | Path, example_length: int = 3000) -> Path:
    """Trace `model` to a TorchScript file whose forward returns (logits, cam).

    Load it with `torch.jit.load(path)`; no ecgzoo import is needed. The trace is made on an
    example of `example_length` samples; the time axis stays symbolic, so other lengths work.
    (torch 2.13 marks TorchScript deprecated; `torch.export` with a dynamic time axis still
    specialises these models to the example length, so the trace stays until it does not.)
    """
    path = Path(path)
    was_training = model.training
    wrapper, example = _prepare(model, example_length, batch=2)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    finally:
        model.train(was_training)
    write_bytes_atomic(path, buf.getvalue())
    return path


def export_onnx(model: EcgModel, path: str | Path, example_length: int = 3000, opset: int = ONNX_OPSET) -> Path:
    """Write an ONNX graph with inputs `signal` (B, leads, T) [and `valid_length` (B,) int64 for
    masked pooling] and outputs `logits` (B, classes) and `cam` (B, classes, T).

    B and T are dynamic axes. Uses the TorchScript-based exporter, which needs no extra
    packages beyond `onnx`; run the result with onnxruntime.
    """
    path = Path(path)
    was_training = model.training
    wrapper, example = _prepare(model, example_length, batch=2)
    input_names = ["signal", "valid_length"][: len(example)]
    dynamic_axes = {"signal": {0: "batch", 2: "time"}, "logits": {0: "batch"}, "cam": {0: "batch", 2: "time"}}
    if len(example) == 2:
        dynamic_axes["valid_length"] = {0: "batch"}
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter of the legacy exporter
            torch.onnx.export(
                wrapper, example, buf, input_names=input_names, output_names=["logits", "cam"],
                dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False,
            )
    finally:
        model.train(was_training)
    write_bytes_atomic(path, buf.getvalue())
    return path
