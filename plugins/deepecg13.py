"""DeepECG-13, the 13-layer network of the paper's figure 4 (Goodfellow et al., MLHC 2018).

Reads top to bottom as REFERENCE.md section 2: thirteen Conv1d (bias, 'same') -> BatchNorm ->
ReLU -> [MaxPool(2) after layers 1, 6, 11] -> Dropout layers, then global average pooling and a
bias-free head. The feature map is 8x shorter than the input; its CAM is interpolated linearly
back to one value per input sample.
"""

from __future__ import annotations

import pydantic
import torch
from torch import nn

import ecgzoo
from ecgzoo.plugin_api import facts_for

#: (filters, kernel, dilation) of layers 1..13
PAPER_LAYERS: list[tuple[int, int, int]] = [
    (320, 24, 1),
    (256, 16, 2),
    (256, 16, 4), (256, 16, 4), (256, 16, 4),
    (128, 8, 4),
    (128, 8, 6), (128, 8, 6), (128, 8, 6), (128, 8, 6),
    (128, 8, 8),
    (64, 8, 8), (64, 8, 8),
]


class DeepECG13Config(ecgzoo.ModelConfig):
    layers: list[tuple[int, int, int]] = pydantic.Field(
        PAPER_LAYERS, min_length=1, description="(filters, kernel, dilation) of each conv layer, input to output"
    )
    pool_after: list[int] = pydantic.Field(
        [1, 6, 11], description="1-based layers followed by MaxPool(2) (the paper: 1, 6, 11)"
    )
    dropout: float = pydantic.Field(0.3, ge=0.0, lt=1.0, description="dropout after every layer")
    masked_pooling: bool = pydantic.Field(False, description="average only over the valid (unpadded) part")


class ConvLayer(nn.Sequential):
    """Conv1d (bias, 'same') -> BatchNorm -> ReLU -> [MaxPool(2)] -> Dropout.

    'Same' padding as TensorFlow does it for even kernels: the odd sample of padding goes right.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, pool: bool, dropout: float):
        total = dilation * (kernel - 1)
        parts: list[nn.Module] = [
            nn.ConstantPad1d((total // 2, total - total // 2), 0.0),
            nn.Conv1d(c_in, c_out, kernel, dilation=dilation),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
        ]
        if pool:
            parts.append(nn.MaxPool1d(2))
        parts.append(nn.Dropout(dropout))
        super().__init__(*parts)


class DeepECG13(ecgzoo.EcgModel):
    has_cam = True

    def __init__(self, config: DeepECG13Config):
        super().__init__()
        c = config
        self.config, self.num_classes, self.in_leads = c, c.num_classes, c.in_leads
        self.masked_pooling = c.masked_pooling
        widths = [c.in_leads] + [f for f, _, _ in c.layers]
        self.layers = nn.Sequential(*(
            ConvLayer(widths[i], f, k, d, pool=(i + 1) in c.pool_after, dropout=c.dropout)
            for i, (f, k, d) in enumerate(c.layers)
        ))
        self.gradcam_layer = f"layers.{len(c.layers) - 1}"
        self.head = nn.Linear(widths[-1], c.num_classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "deepecg13", DeepECG13, DeepECG13Config, facts=facts_for(DeepECG13),
            summary="the paper's 13-layer CNN (conv-BN-ReLU, 3 max-pools); CAM upsampled from 1/8 length",
        )
    ]
