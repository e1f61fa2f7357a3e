"""CNNv7 of Goodfellow et al. (MLHC 2018): gated, dilated residual convolutions over the raw
waveform at full temporal resolution, so its class activation map has one value per sample.

Reads top to bottom as REFERENCE.md section 1:
input conv -> 9 gated residual blocks (dilation 2..512, skip outputs) -> skip sum, ReLU, dropout
-> conv A (256), ReLU, dropout -> conv B (512), ReLU, dropout = feature map -> GAP -> bias-free head.
"""

from __future__ import annotations

import pydantic
import torch
import torch.nn.functional as F
from torch import nn

import ecgzoo
from ecgzoo.plugin_api import facts_for


class CNNv7Config(ecgzoo.ModelConfig):
    filters: int = pydantic.Field(128, ge=1, description="channels of the input conv and every gated block")
    dilations: list[int] = pydantic.Field(
        [2, 4, 8, 16, 32, 64, 128, 256, 512], min_length=1, description="dilation of each gated residual block"
    )
    kernel_size: int = pydantic.Field(3, ge=1, description="kernel size of the input conv, gated convs, conv A and B")
    conv_a: int = pydantic.Field(256, ge=1, description="filters of conv A after the skip sum")
    conv_b: int = pydantic.Field(512, ge=1, description="filters of conv B (the feature map the CAM is made of)")
    dropout: float = pydantic.Field(0.3, ge=0.0, lt=1.0, description="dropout after the skip sum, conv A and conv B")
    masked_pooling: bool = pydantic.Field(
        False, description="average only over the valid (unpadded) samples; off as in the paper, which pooled padding"
    )
    norm: bool = pydantic.Field(
        False, description="batch normalisation after the input conv, conv A and conv B (not in the paper; trains far faster "
        "from scratch; folded into the convs for export)"
    )
    norm_blocks: bool = pydantic.Field(False, description="also batch-normalise the filter and gate pre-activations of every gated block")
    stem_stride: int = pydantic.Field(
        1, ge=1, description="stride of the input conv (1: the paper's full resolution; s > 1: the blocks run at 1/s of "
        "the input rate, about s times cheaper, and the CAM is interpolated back to the input length)"
    )

    @pydantic.field_validator("kernel_size")
    @classmethod
    def _odd(cls, k: int) -> int:
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {k}")
        return k


def same_conv(c_in: int, c_out: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """Bias-free Conv1d whose output is as long as its input."""
    return nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2), bias=False)


def input_conv(c_in: int, c_out: int, kernel_size: int, stride: int) -> nn.Conv1d:
    """Layer 1: the paper's "same" conv, or with stride s a kernel of 2s + 1 taps (it sees every sample
    once, with overlap) whose output has ceil(T / s) steps."""
    if stride == 1:
        return same_conv(c_in, c_out, kernel_size)
    return nn.Conv1d(c_in, c_out, 2 * stride + 1, stride=stride, padding=stride, bias=False)


def shifted_taps(x: torch.Tensor, kernel_size: int, dilation: int) -> torch.Tensor:
    """(B, T, C) -> (B, T, k*C): tap j holds x[t + (j - k//2) * dilation], zero outside the record.

    Concatenating the taps turns a dilated "same" convolution into one matrix multiply, which
    CPUs (and bf16 autocast) run far faster than a dilated convolution's backward pass.
    """
    half = kernel_size // 2
    pad = half * dilation
    t = x.shape[1]
    padded = F.pad(x, (0, 0, pad, pad))
    return torch.cat([padded[:, j * dilation : j * dilation + t] for j in range(kernel_size)], dim=-1)


def conv_as_matrix(*convs: nn.Conv1d) -> torch.Tensor:
    """Weights (C_out, C_in, k) of one or more convs as one (sum C_out, k*C_in) matrix for `shifted_taps`."""
    weight = torch.cat([c.weight for c in convs], dim=0)
    return weight.permute(0, 2, 1).reshape(weight.shape[0], -1)


def _norm(config: CNNv7Config, channels: int) -> list[nn.Module]:
    return [nn.BatchNorm1d(channels)] if config.norm else []


class GatedResidualBlock(nn.Module):
    """a = tanh(conv(x)) * sigmoid(conv'(x)); skip = conv_1x1(a); res = conv''_1x1(a) + x.

    Parameters are Conv1d modules (the checkpoint layout); the computation runs time-major,
    (B, T, C), as matrix multiplies over shifted taps: the same arithmetic as the convolutions.
    """

    def __init__(self, filters: int, kernel_size: int, dilation: int, residual: bool = True, norm: bool = False):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        # batch norm of the filter and gate pre-activations, per channel over batch and time
        self.norm = nn.BatchNorm1d(2 * filters) if norm else None
        self.filter_conv = same_conv(filters, filters, kernel_size, dilation)
        self.gate_conv = same_conv(filters, filters, kernel_size, dilation)
        self.skip_conv = nn.Conv1d(filters, filters, 1, bias=False)
        self.res_conv = nn.Conv1d(filters, filters, 1, bias=False) if residual else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """x: (B, T, C) time-major. Returns (residual output or None for the last block, skip), both (B, T, C)."""
        taps = shifted_taps(x, self.kernel_size, self.dilation)
        pre = F.linear(taps, conv_as_matrix(self.filter_conv, self.gate_conv))
        if self.norm is not None:
            pre = self.norm(pre.reshape(-1, pre.shape[-1])).reshape(pre.shape)
        filt, gate = pre.chunk(2, dim=-1)
        a = torch.tanh(filt) * torch.sigmoid(gate)
        if self.res_conv is None:
            return None, F.linear(a, self.skip_conv.weight[:, :, 0])
        skip, res = F.linear(a, conv_as_matrix(self.skip_conv, self.res_conv)).chunk(2, dim=-1)
        return res + x, skip


#: what FastCNNv7 reproduces: a subclass that overrides any of these computes something else
_ENGINE_COMPUTES = ("forward", "forward_features", "skip_sum", "feature_map", "forward_head", "forward_with_cam",
                    "cam_from_features", "logit_offset")


class CNNv7(ecgzoo.EcgModel):
    has_cam = True
    gradcam_layer = "conv_b"

    def __init__(self, config: CNNv7Config):
        super().__init__()
        c = config
        self.config, self.num_classes, self.in_leads = c, c.num_classes, c.in_leads
        self.masked_pooling = c.masked_pooling
        self.input_conv = input_conv(c.in_leads, c.filters, c.kernel_size, c.stem_stride)
        self.input_norm = nn.BatchNorm1d(c.filters) if c.norm else nn.Identity()
        last = len(c.dilations) - 1
        self.blocks = nn.ModuleList(
            GatedResidualBlock(c.filters, c.kernel_size, d, residual=i < last, norm=c.norm_blocks) for i, d in enumerate(c.dilations)
        )
        self.skip_out = nn.Sequential(nn.ReLU(), nn.Dropout(c.dropout))
        self.conv_a = nn.Sequential(same_conv(c.filters, c.conv_a, c.kernel_size), *_norm(c, c.conv_a), nn.ReLU(), nn.Dropout(c.dropout))
        self.conv_b = nn.Sequential(same_conv(c.conv_a, c.conv_b, c.kernel_size), *_norm(c, c.conv_b), nn.ReLU(), nn.Dropout(c.dropout))
        self.head = nn.Linear(c.conv_b, c.num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)

    @property
    def receptive_radius(self) -> int | None:
        """Input samples each side of its centre (input sample s*t, `feature_grid`) that feature step t
        sees: the input conv reaches kernel_size // 2 (s with stride s), every gated block, conv A and
        conv B kernel_size // 2 x dilation steps of the feature grid, s input samples each."""
        c, s = self.config, self.config.stem_stride
        stem = c.kernel_size // 2 if s == 1 else s
        return stem + s * (c.kernel_size // 2) * (sum(c.dilations) + 2)

    @property
    def feature_grid(self) -> tuple[int, float] | None:
        """With stride s the input conv's taps for step t are samples s*t - s .. s*t + s: centred on s*t."""
        s = self.config.stem_stride
        return None if s == 1 else (s, 0.0)

    def fast_engine(self, dtype: torch.dtype = torch.float32):
        """FastCNNv7 (the GEMM layout; any stem stride, batch norms folded) on the CPU in eval mode; None
        elsewhere or for a subclass that changes the forward pass (its engine would not compute what it
        computes). Rebuilt only when a weight changed (`engine_cache`)."""
        overridden = [m for m in _ENGINE_COMPUTES if getattr(type(self), m) is not getattr(CNNv7, m)]
        if self.training or overridden:
            return None
        if next(self.parameters()).device.type != "cpu":
            return None
        from ecgzoo_plugins.cnnv7_fast import FastCNNv7, unsupported
        from ecgzoo_plugins.engine_cache import cached_engine

        return None if unsupported(self) else cached_engine(self, dtype, lambda: FastCNNv7(self, dtype))

    def skip_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Input (B, leads, T) -> the gated blocks' skip sum (B, C, T'), before its ReLU."""
        x = self.input_norm(self.input_conv(x)).transpose(1, 2)  # time-major (B, T', C) through the gated blocks
        skips = None
        for block in self.blocks:
            res, skip = block(x)
            skips = skip if skips is None else skips + skip
            if res is not None:
                x = res
        return skips.transpose(1, 2)

    def feature_map(self, skips: torch.Tensor) -> torch.Tensor:
        """Skip sum (B, C, T') -> ReLU, dropout, conv A, conv B: the feature map the CAM is made of."""
        return self.conv_b(self.conv_a(self.skip_out(skips)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(self.skip_sum(x))


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "cnnv7", CNNv7, CNNv7Config, summary="Goodfellow et al. CNNv7: gated dilated residual convs, native CAM",
            aliases=("goodfellow-v7",), facts=facts_for(CNNv7),
        )
    ]
