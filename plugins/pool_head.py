"""Heads shared by the 1-D CNN families of the PTB-XL benchmark (xresnet1d, inception1d).

`gap` (default): global average pooling and a bias-free linear layer, so the logits are the time
mean of a class activation map (native CAM, one value per input sample per lead-agnostic class).
`concat-mlp`: the head of Strodthoff et al.'s benchmark (fastai's `create_head1d` with
`lin_ftrs=[128]`, `ps=0.5`): [max-pool, average-pool] -> BatchNorm -> dropout 0.25 -> linear
(2C -> 128) -> ReLU -> BatchNorm -> dropout 0.5 -> linear (128 -> classes). It reproduces the
published models; it has no native CAM (Grad-CAM still works on the declared layer).
"""

from __future__ import annotations

from typing import Literal

import pydantic
import torch
from torch import nn

import ecgzoo


class PoolHeadConfig(ecgzoo.ModelConfig):
    head: Literal["gap", "concat-mlp"] = pydantic.Field(
        "gap", description="gap: average pooling + bias-free linear (native CAM); concat-mlp: the PTB-XL benchmark's head"
    )
    head_hidden: int = pydantic.Field(128, ge=1, description="concat-mlp: width of the hidden layer (benchmark: 128)")
    head_dropout: float = pydantic.Field(
        0.5, ge=0.0, lt=1.0, description="concat-mlp: dropout before the last linear (half before the first)")


class ConcatPoolMLP(nn.Module):
    """[max over time, mean over time] -> BN -> dropout -> linear -> ReLU -> BN -> dropout -> linear."""

    def __init__(self, features: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.BatchNorm1d(2 * features), nn.Dropout(dropout / 2), nn.Linear(2 * features, hidden), nn.ReLU(),
            nn.BatchNorm1d(hidden), nn.Dropout(dropout), nn.Linear(hidden, classes),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([features.amax(dim=-1), features.mean(dim=-1)], dim=1))


class PoolHeadModel(ecgzoo.EcgModel):
    """EcgModel whose head is chosen by `PoolHeadConfig.head`; subclasses call `build_head` last."""

    def build_head(self, features: int, config: PoolHeadConfig) -> None:
        self.has_cam = config.head == "gap"
        if self.has_cam:
            self.head = nn.Linear(features, config.num_classes, bias=False)
        else:
            self.head = ConcatPoolMLP(features, config.head_hidden, config.num_classes, config.head_dropout)
        for m in self.head.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_head(self, features: torch.Tensor, valid_length: torch.Tensor | None = None,
                     input_length: int | None = None) -> torch.Tensor:
        if self.has_cam:
            return super().forward_head(features, valid_length, input_length)
        return self.head(features)


def init_conv_bn(module: nn.Module) -> None:
    """fastai's init as the benchmark used it: Kaiming-normal convolutions, BatchNorm weight 1 and bias 1e-3."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.constant_(m.bias, 1e-3)
