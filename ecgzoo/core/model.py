"""Model interface: logits, feature maps and (where native) class activation maps.

The forward pass is split as in timm: `forward_features` turns the input into a
feature map (B, C, T'), `forward_head` pools it and applies the classifier. CAM and
Grad-CAM work on any model that keeps this split, with no model-specific code.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(features: torch.Tensor, valid_length: torch.Tensor | None, input_length: int) -> torch.Tensor:
    """Mean over time of (B, C, T') features, counting only the valid part.

    `valid_length` is in input samples; it is scaled to the feature map's length
    (T' may be shorter than the input after pooling). None: plain mean over time.
    """
    if valid_length is None:
        return features.mean(dim=-1)
    # Tensor arithmetic only (no float()/constant bounds), so traced and ONNX exports keep the
    # time axis dynamic; float64 keeps valid_length * t_feat exact for long records.
    t_feat = features.shape[-1]
    n = torch.ceil(valid_length.to(features.device, torch.float64) * t_feat / input_length).clamp(min=1)
    mask = (torch.arange(t_feat, device=features.device)[None, :] < n[:, None]).to(features.dtype)
    return (features * mask[:, None, :]).sum(dim=-1) / mask.sum(dim=-1, keepdim=True)


class EcgModel(nn.Module, abc.ABC):
    """Base class of every model plugin.

    Input: float tensor (B, in_leads, T). Output of `forward`: logits (B, num_classes).

    Subclasses set `num_classes`, `in_leads`, build `self.head` (a bias-free
    `nn.Linear` applied to the time-pooled feature map when `has_cam` is True) and
    implement `forward_features`. `gradcam_layer` names the sub-module whose output
    a gradient explainer should use.
    """

    num_classes: int
    in_leads: int
    #: True when logits are the time-mean of a class activation map (GAP + linear head, no bias), plus
    #: `logit_offset` where the model declares one
    has_cam: bool = False
    #: dotted name of the layer Grad-CAM hooks (a module returning (B, C, T'))
    gradcam_layer: str = ""
    #: whether `forward_head` pools only over the valid (unpadded) part
    masked_pooling: bool = False
    #: half-width in input samples of what one position of the feature map sees around the input sample
    #: it is centred on (t at stride 1, stride * t + offset on a declared `feature_grid`), or None
    #: (unknown, or not a "same"-padded fully convolutional map). When set, feature position t depends
    #: only on those input samples and the zero padding past the record's ends: explainers then split
    #: long inputs into overlapping stretches with the same result (`ecgzoo.explain.long_inputs`).
    receptive_radius: int | None = None
    #: (stride, offset) when feature position t is centred on input sample stride * t + offset (a strided
    #: stem: CNNv7's centres t on stride * t); None: the feature map spans the input evenly, position t
    #: centred on (t + 1/2) T / T' - 1/2 (pooling by T / T'). Maps are upsampled on this grid.
    feature_grid: tuple[int, float] | None = None

    def fast_engine(self, dtype: torch.dtype = torch.float32) -> Any | None:
        """A faster engine computing exactly what this model computes in eval mode, or None.

        Called by explainers (once per `explain` call, so the engine always holds the current weights)
        on a model in eval mode on the CPU. The engine provides `forward_with_cam(x, valid_length)`
        (logits and CAM as `forward_with_cam`, the CAM built from the output of `gradcam_layer`),
        `input_gradient(x, dlogits, valid_length)` (logits and the gradient of sum_b dlogits(logits)_b .
        logits_b w.r.t. x) and optionally `occlusion_logit_changes(x, starts, width, weights)`.
        `dtype` other than float32 may trade exactness for speed. Default: None (autograd on the module).
        """
        return None

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map (B, C, T') of an input (B, in_leads, T)."""

    def forward_head(
        self, features: torch.Tensor, valid_length: torch.Tensor | None = None, input_length: int | None = None
    ) -> torch.Tensor:
        """Logits (B, num_classes): global average pooling then the linear head."""
        vl = valid_length if self.masked_pooling else None
        pooled = masked_mean(features, vl, input_length or features.shape[-1])
        return self.head(pooled)

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), valid_length, x.shape[-1])

    def logit_offset(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-class offset (B, num_classes) the logits add to the CAM's time-mean, or None (the default:
        logits are exactly that mean). A model whose record-wide context must stay out of its map (a
        per-class bias from a pooled path, `cnnv7-local`) returns it; the conformance kit checks
        logits = mean_t CAM(t) + offset."""
        return None

    def cam_from_features(self, features: torch.Tensor, input_length: int) -> torch.Tensor:
        """Class activation maps (B, num_classes, input_length) from a feature map.

        M_c(t) = sum_k w[c, k] f_k(t), linearly interpolated to the input length when
        the feature map is shorter than the input.
        """
        if not self.has_cam:
            raise TypeError(f"{type(self).__name__} declares no native class activation map (has_cam=False)")
        maps = torch.einsum("ck,bkt->bct", self.head.weight, features)
        return self.upsample_map(maps, input_length)

    def upsample_map(self, maps: torch.Tensor, input_length: int) -> torch.Tensor:
        """A map (B, K, T') on the feature positions, linearly interpolated to (B, K, input_length) so
        each feature value sits on the input sample it is centred on (`feature_grid`); constant past
        the first and last feature position. Unchanged when T' is already the input length."""
        if maps.shape[-1] == input_length:
            return maps
        if self.feature_grid is None:
            return F.interpolate(maps, size=input_length, mode="linear", align_corners=False)
        stride, offset = self.feature_grid
        last = maps.shape[-1] - 1
        pos = ((torch.arange(input_length, device=maps.device, dtype=torch.float64) - offset) / stride).clamp(0, last)
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=last)
        w = (pos - lo).to(maps.dtype)
        return maps[..., lo] * (1 - w) + maps[..., hi] * w

    def forward_with_cam(
        self, x: torch.Tensor, valid_length: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and CAM from one pass over the input."""
        features = self.forward_features(x)
        return self.forward_head(features, valid_length, x.shape[-1]), self.cam_from_features(features, x.shape[-1])

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        """Class activation maps (B, num_classes, T), one value per input sample."""
        return self.cam_from_features(self.forward_features(x), x.shape[-1])
