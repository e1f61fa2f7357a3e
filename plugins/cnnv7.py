"""CNNv7 of Goodfellow et al. (MLHC 2018): gated, dilated residual convolutions over the raw
waveform at full temporal resolution, so its class activation map has one value per sample.

Reads top to bottom as REFERENCE.md section 1:
input conv -> 9 gated residual blocks (dilation 2..512, skip outputs) -> skip sum, ReLU, dropout
-> conv A (256), ReLU, dropout -> conv B (512), ReLU, dropout = feature map -> GAP -> bias-free head.
"""

from __future__ import annotations

import pydantic
import torch
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

    @pydantic.field_validator("kernel_size")
    @classmethod
    def _odd(cls, k: int) -> int:
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {k}")
        return k


def same_conv(c_in: int, c_out: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """Bias-free Conv1d whose output is as long as its input."""
    return nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2), bias=False)


class GatedResidualBlock(nn.Module):
    """a = tanh(conv(x)) * sigmoid(conv'(x)); skip = conv_1x1(a); res = conv''_1x1(a) + x."""

    def __init__(self, filters: int, kernel_size: int, dilation: int, residual: bool = True):
        super().__init__()
        self.filter_conv = same_conv(filters, filters, kernel_size, dilation)
        self.gate_conv = same_conv(filters, filters, kernel_size, dilation)
        self.skip_conv = nn.Conv1d(filters, filters, 1, bias=False)
        self.res_conv = nn.Conv1d(filters, filters, 1, bias=False) if residual else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        a = torch.tanh(self.filter_conv(x)) * torch.sigmoid(self.gate_conv(x))
        res = self.res_conv(a) + x if self.res_conv is not None else None
        return res, self.skip_conv(a)


class CNNv7(ecgzoo.EcgModel):
    has_cam = True
    gradcam_layer = "conv_b"

    def __init__(self, config: CNNv7Config):
        super().__init__()
        c = config
        self.config, self.num_classes, self.in_leads = c, c.num_classes, c.in_leads
        self.masked_pooling = c.masked_pooling
        self.input_conv = same_conv(c.in_leads, c.filters, c.kernel_size)
        last = len(c.dilations) - 1
        self.blocks = nn.ModuleList(
            GatedResidualBlock(c.filters, c.kernel_size, d, residual=i < last) for i, d in enumerate(c.dilations)
        )
        self.skip_out = nn.Sequential(nn.ReLU(), nn.Dropout(c.dropout))
        self.conv_a = nn.Sequential(same_conv(c.filters, c.conv_a, c.kernel_size), nn.ReLU(), nn.Dropout(c.dropout))
        self.conv_b = nn.Sequential(same_conv(c.conv_a, c.conv_b, c.kernel_size), nn.ReLU(), nn.Dropout(c.dropout))
        self.head = nn.Linear(c.conv_b, c.num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_conv(x)
        skips = None
        for block in self.blocks:
            res, skip = block(x)
            skips = skip if skips is None else skips + skip
            if res is not None:
                x = res
        return self.conv_b(self.conv_a(self.skip_out(skips)))


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "cnnv7", CNNv7, CNNv7Config, summary="Goodfellow et al. CNNv7: gated dilated residual convs, native CAM",
            aliases=("goodfellow-v7",), facts=facts_for(CNNv7),
        )
    ]
