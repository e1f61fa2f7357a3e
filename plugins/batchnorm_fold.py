"""Folding eval-mode batch normalisation into the convolution before it, for the fast engines.

In eval mode BatchNorm1d is the per-channel affine map y -> y * scale + shift (running statistics,
affine parameters), so conv followed by it is one conv with weights times scale and bias shift:
the same function up to float rounding. Used by `cnnv7_fast` (CNNv7's input conv, conv A/B, gated
blocks) and `xresnet1d_fast` (every conv-BN pair).
"""

from __future__ import annotations

import torch
from torch import nn


def bn_affine(norm: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(scale, shift) per channel of an eval-mode BatchNorm1d, norm(y) = y * scale + shift; None for no norm
    (None or nn.Identity). Computed in float64, returned in float32."""
    if norm is None or isinstance(norm, nn.Identity):
        return None
    var, mean = norm.running_var.detach().double(), norm.running_mean.detach().double()
    scale = 1.0 / torch.sqrt(var + norm.eps)
    shift = -mean * scale
    if norm.affine:
        weight = norm.weight.detach().double()
        scale, shift = scale * weight, shift * weight + norm.bias.detach().double()
    return scale.float(), shift.float()


def lacks_running_stats(module: nn.Module) -> str | None:
    """The name of a batch norm under `module` that normalises with the batch's statistics even in eval
    mode (no running statistics: it cannot be folded), or None."""
    for name, m in module.named_modules():
        if isinstance(m, nn.BatchNorm1d) and (m.running_mean is None or m.running_var is None):
            return name
    return None


def folded_conv(conv: nn.Conv1d, norm: nn.BatchNorm1d) -> nn.Conv1d:
    """A Conv1d with bias computing norm(conv(x)) in eval mode (weights detached, no gradient)."""
    scale, shift = bn_affine(norm)
    out = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, groups=conv.groups, bias=True, padding_mode=conv.padding_mode)
    with torch.no_grad():
        out.weight.copy_(conv.weight * scale[:, None, None])
        out.bias.copy_(shift if conv.bias is None else conv.bias * scale + shift)
    return out.requires_grad_(False)


def fold_conv_bn_pairs(module: nn.Module) -> int:
    """Replace, in place, every nn.Sequential under `module` that starts Conv1d, BatchNorm1d by the folded
    conv followed by the rest of it. Returns how many pairs were folded."""
    count = 0
    for child in list(module.modules()):
        if not isinstance(child, nn.Sequential):
            continue
        for i in range(len(child) - 1):
            if isinstance(child[i], nn.Conv1d) and isinstance(child[i + 1], nn.BatchNorm1d):
                child[i] = folded_conv(child[i], child[i + 1])
                child[i + 1] = nn.Identity()
                count += 1
    return count
