"""CNNv7 with a local map and its rhythm context outside it: `cnnv7-local` (variant `cnnv7-s8-rf2`).

Why: in `cnnv7-s8` one CAM value sees +-34 s of input (dilations up to 512 at 37.5 Hz), and half of its
input gradient lies more than a beat away, so the map says little about WHERE in the record the
evidence is. Here the map's trunk is the CNNv7 trunk with capped dilations, so each CAM value sees only
a few beats, and what needs the whole record (rhythm: irregular R-R intervals, the share of noisy
stretches) goes through a second path that never enters the map:

    trunk:   input conv -> gated blocks (capped dilations) -> skip sum s(t)
    map:     s -> ReLU, dropout, conv A, conv B = f(t) -> CAM(t) = W f(t)            (local)
    context: s -> 1x1 conv -> gated blocks (wide dilations) -> masked mean over time -> linear = b
    logits = masked_mean_t CAM(t) + b                                                  (the identity)

`b` is one value per class for the whole record: it shifts the logits, not the map, so the CAM ranks
the samples of a record as before and `logit_offset` returns it. The identity holds on the feature
positions (the stride-8 grid), as the plain CNNv7's "logits = CAM mean" does.

Field of one CAM value: with stem stride s (kernel 2s + 1), kernel k and dilations d_i, a feature
position j sees input s*j +- (s*R + s), R = (k // 2)(sum d_i + 2) positions (blocks, conv A, conv B);
the CAM at input sample t interpolates the positions either side of t, so CAM(t) depends only on
input within t +- (s*R + 2s - 1) (`cam_radius`). cnnv7-s8-rf2: s = 8, d = 1..32, 1..4, R = 72:
+-591 samples, +-1.97 s at 300 Hz.
"""

from __future__ import annotations

from typing import Any

import pydantic
import torch
from torch import nn

import ecgzoo
from ecgzoo.plugin_api import facts_for, masked_mean
from ecgzoo_plugins.cnnv7 import CNNv7, CNNv7Config, GatedResidualBlock


class CNNv7LocalConfig(CNNv7Config):
    dilations: list[int] = pydantic.Field(
        [1, 2, 4, 8, 16, 32, 1, 2, 4], min_length=1, description="dilation of each gated block of the map's trunk (caps its field)"
    )
    context_filters: int = pydantic.Field(32, ge=1, description="channels of the rhythm-context path (not in the map)")
    context_dilations: list[int] = pydantic.Field(
        [8, 32, 128, 512], description="dilations of the context path's gated blocks (empty: the pooled skip sum alone)"
    )


class CNNv7Local(CNNv7):
    """CNNv7 whose CAM is local and whose logits add a per-class bias from a record-wide context path."""

    def __init__(self, config: CNNv7LocalConfig):
        super().__init__(config)
        c = config
        self.context_in = nn.Conv1d(c.filters, c.context_filters, 1, bias=False)
        self.context_blocks = nn.ModuleList(
            GatedResidualBlock(c.context_filters, c.kernel_size, d, residual=True, norm=c.norm_blocks) for d in c.context_dilations
        )
        self.context_head = nn.Linear(c.context_filters, c.num_classes)
        for m in [self.context_in, *self.context_blocks.modules()]:
            if isinstance(m, nn.Conv1d):
                nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(self.context_head.weight)  # starts as the plain local model: b = 0
        nn.init.zeros_(self.context_head.bias)

    @property
    def cam_radius(self) -> int:
        """Half-width in input samples of what one CAM value depends on (module docstring)."""
        c = self.config
        s = c.stem_stride
        r = c.kernel_size // 2 * (sum(c.dilations) + 2)
        if s == 1:
            return r + c.kernel_size // 2
        return s * r + 2 * s - 1

    def fast_engine(self, dtype: torch.dtype = torch.float32) -> Any | None:
        """None: the fast CNNv7 engines compute the map's logits without the context bias."""
        return None

    def context_bias(self, skips: torch.Tensor, valid_length: torch.Tensor | None, input_length: int) -> torch.Tensor:
        """Skip sum (B, C, T') -> the per-class bias b (B, num_classes), pooled over the valid part."""
        h = self.context_in(torch.relu(skips)).transpose(1, 2)  # time-major (B, T', C) through the gated blocks
        for block in self.context_blocks:
            h = block(h)[0]
        vl = valid_length if self.masked_pooling else None
        return self.context_head(masked_mean(h.transpose(1, 2), vl, input_length))

    def logit_offset(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        """The context bias b of input x: logits minus the masked time-mean of the CAM on the feature grid."""
        return self.context_bias(self.skip_sum(x), valid_length, x.shape[-1])

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_cam(x, valid_length, cam=False)[0]

    def forward_with_cam(self, x: torch.Tensor, valid_length: torch.Tensor | None = None,
                         cam: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (map mean + context bias) and the local CAM (None with cam=False) from one trunk pass."""
        skips = self.skip_sum(x)
        features = self.feature_map(skips)
        logits = self.forward_head(features, valid_length, x.shape[-1]) + self.context_bias(skips, valid_length, x.shape[-1])
        return logits, self.cam_from_features(features, x.shape[-1]) if cam else None


def facts(config: CNNv7LocalConfig) -> dict[str, Any]:
    """`ecgzoo info` facts: the plain CNNv7 facts plus the field of one CAM value and the context path."""
    model = CNNv7Local(config)
    out = facts_for(CNNv7Local)(config)
    r, fs = model.cam_radius, 300.0
    out["CAM value field"] = f"t +- {r:,} samples (+-{r / fs:.2f} s at {fs:g} Hz): the feature field plus interpolation"
    out["rhythm context"] = (f"dilations {config.context_dilations} at 1/{config.stem_stride} rate, pooled over the record, "
                             "added to the logits as a per-class bias (not in the map)")
    return out


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "cnnv7-local", CNNv7Local, CNNv7LocalConfig,
            summary="CNNv7 with a local CAM (capped dilations) and a record-wide context path added as a per-class logit bias",
            facts=facts,
        )
    ]
