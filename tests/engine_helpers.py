"""Helpers of the fast-engine tests."""

from __future__ import annotations

import torch


def randomise_batch_norms(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every BatchNorm1d non-trivial running statistics and affine parameters (fresh ones are the
    identity, which folding would reproduce trivially). Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()
