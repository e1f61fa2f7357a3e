"""Facts about a model that users compare before training: size, cost, how far it sees.

The receptive field is measured, not derived: the gradient of one feature-map position with
respect to a random input is non-zero exactly over the samples that position can see.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ecgzoo.core.model import EcgModel


def parameter_count(model: nn.Module) -> int:
    """Trainable and frozen parameters (the figure REFERENCE.md pins for CNNv7)."""
    return sum(p.numel() for p in model.parameters())


def conv_flops(c_in: int, c_out: int, kernel_size: int, out_length: int, groups: int = 1) -> int:
    """2 x multiply-adds of one Conv1d producing `out_length` samples (the analytic count)."""
    return 2 * (c_in // groups) * kernel_size * c_out * out_length


def forward_flops(model: EcgModel, samples: int) -> int:
    """FLOPs (2 x multiply-adds) of every convolution and matrix multiply for one input of `samples` samples.

    Counted by torch's FlopCounterMode during a pass on the `meta` device (shapes only, no
    arithmetic): free even for 60-s records on the full-size network, and independent of how a model
    computes (Conv1d modules, or convolutions written as matrix multiplies over shifted taps).
    Element-wise work (activations, gating, pooling, normalisation) is not counted: it is below 1% here.
    """
    from torch.utils.flop_counter import FlopCounterMode

    shadow = copy.deepcopy(model).to("meta").eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        shadow(torch.empty(1, model.in_leads, samples, device="meta"))
    return int(counter.get_total_flops())


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


def facts_for(factory: Callable[[Any], EcgModel]) -> Callable[[Any], dict[str, Any]]:
    """A `PluginSpec(facts=...)` callable: build the model from its config and report its facts."""
    return lambda config: model_facts(factory(config))
