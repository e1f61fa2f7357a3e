"""XResNet1d explained with fewer, larger passes: batch norms folded, path points and occluded copies batched.

The 12-lead PTB-XL models (`xresnet1d101:ptbxl-*`) see 10-s, 100-Hz inputs (1,000 samples): one record
is too small to keep a CPU's GEMMs busy, and the network's receptive field spans the whole record, so
occlusion has no local shortcut. This engine therefore:

- folds every eval-mode BatchNorm1d into the conv before it (`batchnorm_fold`): the same function up to
  float rounding, without the norm's memory passes forward and backward;
- computes input gradients by autograd on that folded copy with the weights frozen (no weight
  gradients), so Integrated Gradients runs all its path points of a short input through one forward and
  one backward (`path_points_per_pass`, bounded by `POINTS_BUDGET` input samples per pass);
- runs occlusion as batches of occluded copies (`occluded_logits`), `OCCLUDED_PER_PASS` per pass.

Float32 only (a bf16 request falls back to the model). Selected by `XResNet1d.fast_engine`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ecgzoo_plugins.batchnorm_fold import fold_conv_bn_pairs
from ecgzoo_plugins.engine_cache import without_cache

#: most input samples (records x path points x leads x time) one Integrated-Gradients pass may hold:
#: 16 path points of a 10-s 12-lead 100-Hz record
POINTS_BUDGET = 16 * 12 * 1000
OCCLUDED_PER_PASS = 16


class FoldedXResNet1d(nn.Module):
    """An XResNet1d (eval mode) with its batch norms folded: logits, CAM, input gradients, occlusion."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = without_cache(copy.deepcopy(model)).eval().requires_grad_(False)
        self.folded = fold_conv_bn_pairs(self.model)

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, valid_length=valid_length)

    @torch.no_grad()
    def forward_with_cam(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and CAM (B, classes, T) as the model's `forward_with_cam` (GAP head only)."""
        return self.model.forward_with_cam(x, valid_length)

    @torch.no_grad()
    def forward_with_feature_cam(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the CAM on the feature grid (B, classes, T / 32) (GAP head only)."""
        features = self.model.forward_features(x)
        cam = torch.einsum("ck,bkt->bct", self.model.head.weight, features)
        return self.model.forward_head(features, valid_length, x.shape[-1]), cam

    def path_points_per_pass(self, x: torch.Tensor, requested: int) -> int:
        """Integrated-Gradients path points per pass: at least `requested`, more while the pass holds
        at most POINTS_BUDGET input samples (all 16 points of a 10-s 12-lead record)."""
        return max(requested, POINTS_BUDGET // max(1, x.numel()))

    def input_gradient(self, x: torch.Tensor, dlogits: Callable[[torch.Tensor], torch.Tensor],
                       valid_length: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) and the gradient w.r.t. x of sum_b v_b . logits_b, v = dlogits(logits)."""
        with torch.inference_mode(False), torch.enable_grad():
            inp = x.detach().clone().requires_grad_(True)
            logits = self.model(inp, valid_length=valid_length)
            v = dlogits(logits.detach()).to(logits.dtype)
            (grad,) = torch.autograd.grad(logits, inp, grad_outputs=v)
        return logits.detach(), grad

    @torch.no_grad()
    def occluded_logits(self, x: torch.Tensor, starts: list[int], width: int,
                        valid_length: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (windows, classes) of x (leads, T) zeroed on [start, start + width) for each start,
        OCCLUDED_PER_PASS copies per forward pass."""
        out = []
        for i in range(0, len(starts), OCCLUDED_PER_PASS):
            chunk = starts[i:i + OCCLUDED_PER_PASS]
            copies = x[None].repeat(len(chunk), 1, 1)
            for j, s in enumerate(chunk):
                copies[j, :, s:s + width] = 0
            vl = None if valid_length is None else valid_length.reshape(1).repeat(len(chunk))
            out.append(self.model(copies, valid_length=vl))
        return torch.cat(out) if out else torch.zeros(0, self.model.num_classes)
