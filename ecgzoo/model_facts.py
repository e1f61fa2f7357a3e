"""Facts about a model that users compare before training: size, cost, how far it sees.

The receptive field is measured, not derived: the gradient of one feature-map position with
respect to a random input is non-zero exactly over the samples that position can see.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ecgzoo.model import EcgModel


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: EcgModel, samples: int) -> int:
    """Multiply-adds x 2 of every Conv1d and Linear for one input of `samples` samples.

    Element-wise work (activations, gating, pooling) is not counted: it is below 1% here.
    """
    total = 0

    def conv_hook(m: nn.Conv1d, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * (m.in_channels // m.groups) * m.kernel_size[0] * m.out_channels * out.shape[-1]

    def linear_hook(m: nn.Linear, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * m.in_features * m.out_features

    handles = [
        m.register_forward_hook(conv_hook if isinstance(m, nn.Conv1d) else linear_hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv1d, nn.Linear))
    ]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, model.in_leads, samples))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return total


def receptive_field(model: EcgModel, max_samples: int = 1 << 16) -> int:
    """Input samples that influence one position of the feature map, by a gradient probe."""
    was_training = model.training
    model.eval()
    n = 1024
    try:
        while True:
            torch.manual_seed(0)
            x = torch.randn(1, model.in_leads, n, requires_grad=True)
            features = model.forward_features(x)
            centre = features.shape[-1] // 2
            features[0, :, centre].sum().backward()
            seen = (x.grad[0].abs().sum(dim=0) > 0).nonzero().flatten()
            width = int(seen.max() - seen.min() + 1) if seen.numel() else 0
            if seen.numel() and seen.min() > 0 and seen.max() < n - 1:
                return width
            if n >= max_samples:
                raise ValueError(f"receptive field exceeds {max_samples} samples")
            n *= 2
    finally:
        model.train(was_training)


def model_facts(model: EcgModel, fs: float = 300.0) -> dict[str, Any]:
    """What `ecgzoo info MODEL` prints."""
    per_second = forward_flops(model, int(fs))
    rf = receptive_field(model)
    return {
        "parameters": f"{parameter_count(model):,}",
        "GFLOP per second of signal": f"{per_second / 1e9:.3f} (at {fs:g} Hz; {per_second * 60 / 1e9:.1f} per 60-s record)",
        "receptive field": f"{rf:,} samples ({rf / fs:.2f} s at {fs:g} Hz)",
        "native CAM": "yes" if model.has_cam else "no",
        "Grad-CAM layer": model.gradcam_layer or "(none declared)",
    }
