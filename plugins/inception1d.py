"""Inception1d: InceptionTime (Fawaz et al. 2020) as in Strodthoff et al.'s PTB-XL benchmark.

Reads top to bottom as the architecture:
`depth` (6) inception blocks, each: 1x1 bottleneck conv (32 channels) -> three parallel convs of
kernels 39, 19, 9 (from `kernel_size` 40, 20, 10, made odd), beside a max pool (3) -> 1x1 conv
branch; the four branches (32 channels each) concatenated -> BatchNorm -> ReLU.
Every third block adds a shortcut from the input of the three: 1x1 conv -> BatchNorm, summed, ReLU.
-> feature map (B, 128, T) at full time resolution -> head (see `ecgzoo_plugins.pool_head`).

No stride anywhere: the class activation map has one value per input sample. Any number of
leads and any input length.
"""

from __future__ import annotations

import pydantic
import torch
from torch import nn

import ecgzoo
from ecgzoo.plugin_api import facts_for
from ecgzoo_plugins.pool_head import PoolHeadConfig, PoolHeadModel, init_conv_bn


class Inception1dConfig(PoolHeadConfig):
    depth: int = pydantic.Field(6, ge=3, multiple_of=3, description="inception blocks (a multiple of 3: one shortcut per 3)")
    filters: int = pydantic.Field(32, ge=1, description="channels of each of the 4 branches (feature map: 4x this)")
    bottleneck: int = pydantic.Field(32, ge=1, description="channels of the 1x1 bottleneck before the long convs")
    kernel_size: int = pydantic.Field(40, ge=4, description="longest kernel; the branches use it, half and a quarter, made odd")
    residual: bool = pydantic.Field(True, description="shortcut every third block")


def conv(c_in: int, c_out: int, kernel_size: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel_size, padding=(kernel_size - 1) // 2, bias=False)


class InceptionBlock(nn.Module):
    """Bottleneck -> parallel convs of three lengths, next to max pool -> 1x1; concatenated, BN, ReLU."""

    def __init__(self, c_in: int, filters: int, bottleneck: int, kernels: list[int]):
        super().__init__()
        self.bottleneck = conv(c_in, bottleneck, 1)
        self.convs = nn.ModuleList(conv(bottleneck, filters, k) for k in kernels)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), conv(c_in, filters, 1))
        self.bn_relu = nn.Sequential(nn.BatchNorm1d(filters * (len(kernels) + 1)), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bottleneck(x)
        return self.bn_relu(torch.cat([c(b) for c in self.convs] + [self.pool_branch(x)], dim=1))


class Shortcut(nn.Module):
    """ReLU(block output + BN(1x1 conv(input of the three blocks)))."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.project = nn.Sequential(conv(c_in, c_out, 1), nn.BatchNorm1d(c_out))
        self.act = nn.ReLU()

    def forward(self, block_input: torch.Tensor, block_output: torch.Tensor) -> torch.Tensor:
        return self.act(block_output + self.project(block_input))


class Backbone(nn.Module):
    """The inception blocks with a shortcut around every three."""

    def __init__(self, c: Inception1dConfig):
        super().__init__()
        kernels = [k - 1 if k % 2 == 0 else k for k in (c.kernel_size, c.kernel_size // 2, c.kernel_size // 4)]
        width = 4 * c.filters
        self.blocks = nn.ModuleList(
            InceptionBlock(c.in_leads if d == 0 else width, c.filters, c.bottleneck, kernels) for d in range(c.depth))
        self.shortcuts = nn.ModuleList(
            Shortcut(c.in_leads if s == 0 else width, width) for s in range(c.depth // 3)) if c.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_input = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if self.shortcuts is not None and d % 3 == 2:
                x = self.shortcuts[d // 3](block_input, x)
                block_input = x
        return x


class Inception1d(PoolHeadModel):
    gradcam_layer = "backbone"

    def __init__(self, config: Inception1dConfig):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, config.num_classes, config.in_leads
        self.backbone = Backbone(config)
        init_conv_bn(self)
        self.build_head(4 * config.filters, config)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("inception1d", Inception1d, Inception1dConfig, facts=facts_for(Inception1d),
                              summary="InceptionTime-style Inception1d of the PTB-XL benchmark; full resolution, native CAM")]
