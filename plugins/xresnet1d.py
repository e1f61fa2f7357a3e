"""XResNet1d of Strodthoff et al.'s PTB-XL benchmark (fastai's XResNet, "bag of tricks" ResNet, in 1-D).

Reads top to bottom as the architecture:
stem: three conv-BN-ReLU layers (kernel 5; channels 32, 32, 64; the first with stride 2)
-> max pool (3, stride 2)
-> 4 stages of bottleneck residual blocks (xresnet1d50: 3, 4, 6, 3 blocks; xresnet1d101: 3, 4, 23, 3),
   each block 1x1 conv (to `width`) -> k conv (stride 2 in the first block of stages 2-4) -> 1x1 conv
   (to width x 4, its BatchNorm initialised to zero), identity path average-pooled where strided and
   1x1-projected where the channels change; ReLU after the sum
-> feature map (B, width x 4, T/32) -> head (see `ecgzoo_plugins.pool_head`).

As in the benchmark's code, every stage is `width` = 64 wide (not ResNet's 64-128-256-512), so the
feature map has 256 channels. Any number of leads and any input length (the time axis shrinks 32x).
"""

from __future__ import annotations

import pydantic
import torch
from torch import nn

import ecgzoo
from ecgzoo.plugin_api import facts_for
from ecgzoo_plugins.pool_head import PoolHeadConfig, PoolHeadModel, init_conv_bn


class XResNet1dConfig(PoolHeadConfig):
    layers: list[int] = pydantic.Field([3, 4, 23, 3], min_length=1, description="residual blocks per stage (101: 3,4,23,3; 50: 3,4,6,3)")
    width: int = pydantic.Field(64, ge=1, description="bottleneck channels of every stage (the benchmark's 64)")
    expansion: int = pydantic.Field(4, ge=1, description="block output channels = width x expansion")
    stem: list[int] = pydantic.Field([32, 32, 64], min_length=1, description="channels of the stem's conv layers")
    kernel_size: int = pydantic.Field(5, ge=1, description="kernel of the blocks' middle convs (benchmark: 5)")
    kernel_size_stem: int = pydantic.Field(5, ge=1, description="kernel of the stem convs (benchmark: 5)")

    @pydantic.field_validator("kernel_size", "kernel_size_stem")
    @classmethod
    def _odd(cls, k: int) -> int:
        if k % 2 == 0:
            raise ValueError(f"kernel sizes must be odd for 'same' padding, got {k}")
        return k


def conv_bn(c_in: int, c_out: int, kernel_size: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv1d (no bias, 'same' padding) -> BatchNorm -> ReLU (optional)."""
    layers = [nn.Conv1d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=False), nn.BatchNorm1d(c_out)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """1x1 -> k (strided) -> 1x1 convolutions plus an identity path; ReLU of the sum."""

    def __init__(self, c_in: int, width: int, c_out: int, kernel_size: int, stride: int):
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn(c_in, width, 1), conv_bn(width, width, kernel_size, stride=stride), conv_bn(width, c_out, 1, relu=False),
        )
        identity: list[nn.Module] = []
        if stride != 1:
            identity.append(nn.AvgPool1d(2, ceil_mode=True))
        if c_in != c_out:
            identity.append(conv_bn(c_in, c_out, 1, relu=False))
        self.identity = nn.Sequential(*identity)
        self.act = nn.ReLU()

    def zero_last_bn(self) -> None:
        """Each block starts as the identity (the 'zero-gamma' trick of the XResNet paper)."""
        nn.init.zeros_(self.convs[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + self.identity(x))


class XResNet1d(PoolHeadModel):
    gradcam_layer = "stages"

    def __init__(self, config: XResNet1dConfig):
        super().__init__()
        c = config
        self.config, self.num_classes, self.in_leads = c, c.num_classes, c.in_leads
        channels = [c.in_leads, *c.stem]
        self.stem = nn.Sequential(*(conv_bn(channels[i], channels[i + 1], c.kernel_size_stem, stride=2 if i == 0 else 1)
                                    for i in range(len(c.stem))))
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)
        out = c.width * c.expansion
        stages, c_in = [], c.stem[-1]
        for s, blocks in enumerate(c.layers):
            stages.append(nn.Sequential(*(
                Bottleneck(c_in if b == 0 else out, c.width, out, c.kernel_size, stride=2 if (s > 0 and b == 0) else 1)
                for b in range(blocks))))
            c_in = out
        self.stages = nn.Sequential(*stages)
        init_conv_bn(self)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                m.zero_last_bn()
        self.build_head(out, c)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.pool(self.stem(x)))

    def fast_engine(self, dtype: torch.dtype = torch.float32):
        """FoldedXResNet1d (batch norms folded, batched path points and occluded copies) on the CPU in
        eval mode, float32, rebuilt only when a weight changed (`engine_cache`); None elsewhere, for bf16,
        or for a subclass that changes the forward pass."""
        if self.training or dtype != torch.float32 or type(self).forward_features is not XResNet1d.forward_features:
            return None
        if next(self.parameters()).device.type != "cpu":
            return None
        from ecgzoo_plugins.batchnorm_fold import lacks_running_stats
        from ecgzoo_plugins.engine_cache import cached_engine
        from ecgzoo_plugins.xresnet1d_fast import FoldedXResNet1d

        return None if lacks_running_stats(self) else cached_engine(self, dtype, lambda: FoldedXResNet1d(self))


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    facts = facts_for(XResNet1d)
    return [
        ecgzoo.PluginSpec("xresnet1d101", XResNet1d, XResNet1dConfig, facts=facts,
                          summary="XResNet1d-101 of the PTB-XL benchmark (Strodthoff et al. 2021); GAP head: native CAM"),
        ecgzoo.PluginSpec("xresnet1d50", XResNet1d, XResNet1dConfig, defaults={"layers": [3, 4, 6, 3]}, facts=facts,
                          summary="XResNet1d-50 of the PTB-XL benchmark; GAP head: native CAM"),
    ]
