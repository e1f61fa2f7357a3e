"""CNNv7 inference laid out for CPU matrix multiplies: same weights, same numbers, less time.

The eager model (plugins/cnnv7.py) runs 2 x 9 dilated k=3 convolutions plus 1x1s through
`Conv1d`. Here every convolution becomes one large GEMM over the whole batch:

- activations live as (channels, batch, time), so a conv over all records is one matrix product
  W (out, k*in) @ X (k*in, batch*time);
- a k=3 dilated conv reads X from a buffer holding the three time-shifted copies of its input
  (the "same" zero padding is the buffer's zero edges);
- the tanh and sigmoid convs of a gated block are one GEMM with twice the output channels;
- the skip and residual 1x1 convs accumulate in place (`addmm` with beta=1), so the running skip
  sum and the residual addition cost no extra pass over memory.

Built from a trained `CNNv7` (`FastCNNv7(model)`): the checkpoint layout stays that of the eager
model; this module only rearranges the weights (see `FastCNNv7.__init__` for the mapping).
Inference only (no dropout, no gradients needed); `dtype=torch.bfloat16` runs the GEMMs in
bfloat16 where the CPU has native support (AVX512-BF16 / AMX).
"""

from __future__ import annotations

import torch
from torch import nn

from ecgzoo.model import masked_mean
from ecgzoo_plugins.cnnv7 import CNNv7


def _stacked_weight(conv: nn.Conv1d) -> torch.Tensor:
    """(out, in, k) conv weight -> (out, k*in) matrix whose column j*in + c multiplies shift j, channel c."""
    w = conv.weight.detach()
    return w.permute(0, 2, 1).reshape(w.shape[0], -1).contiguous()


def _shifted(x: torch.Tensor, dilation: int, kernel_size: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """(C, B, T) -> (k*C, B, T): block j holds x shifted by (j - k//2) * dilation with zeros outside."""
    c, b, t = x.shape
    if out is None:
        out = x.new_empty(kernel_size * c, b, t)
    half = kernel_size // 2
    for j in range(kernel_size):
        s = (j - half) * dilation  # output t reads input t + s
        block = out[j * c:(j + 1) * c]
        if abs(s) >= t:
            block.zero_()
        elif s < 0:
            block[:, :, :-s].zero_()
            block[:, :, -s:].copy_(x[:, :, :t + s])
        elif s > 0:
            block[:, :, t - s:].zero_()
            block[:, :, :t - s].copy_(x[:, :, s:])
        else:
            block.copy_(x)
    return out


class FastCNNv7(nn.Module):
    """Inference-only CNNv7 (eval mode semantics) computing the same logits and CAM as `model`."""

    def __init__(self, model: CNNv7, dtype: torch.dtype = torch.float32):
        super().__init__()
        cfg = model.config
        self.k, self.filters, self.dtype = cfg.kernel_size, cfg.filters, dtype
        self.masked_pooling = model.masked_pooling
        self.dilations = list(cfg.dilations)

        def p(t: torch.Tensor) -> nn.Parameter:
            return nn.Parameter(t.detach().to(dtype).contiguous(), requires_grad=False)

        self.w_in = p(_stacked_weight(model.input_conv))  # input_conv.weight
        # blocks.i.filter_conv.weight and blocks.i.gate_conv.weight stacked -> (2F, k*F)
        self.w_gated = nn.ParameterList(
            p(torch.cat([_stacked_weight(b.filter_conv), _stacked_weight(b.gate_conv)])) for b in model.blocks
        )
        self.w_skip = nn.ParameterList(p(b.skip_conv.weight[:, :, 0]) for b in model.blocks)
        self.w_res = nn.ParameterList(p(b.res_conv.weight[:, :, 0]) for b in model.blocks if b.res_conv is not None)
        self.w_a = p(_stacked_weight(model.conv_a[0]))
        self.w_b = p(_stacked_weight(model.conv_b[0]))
        self.w_head = p(model.head.weight)

    def _conv(self, w: torch.Tensor, x: torch.Tensor, dilation: int) -> torch.Tensor:
        c, b, t = x.shape
        stacked = _shifted(x, dilation, self.k)
        return (w @ stacked.view(-1, b * t)).view(-1, b, t)

    @torch.inference_mode()
    def forward_features_cbt(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map as (512, B, T) from an input (B, leads, T)."""
        b, _, t = x.shape
        h = self._conv(self.w_in, x.to(self.dtype).transpose(0, 1), 1).contiguous()  # (F, B, T)
        f = self.filters
        skips = torch.zeros(f, b * t, dtype=self.dtype)
        stacked = h.new_empty(self.k * f, b, t)
        for i, d in enumerate(self.dilations):
            _shifted(h, d, self.k, out=stacked)
            g = self.w_gated[i] @ stacked.view(-1, b * t)  # (2F, BT): tanh half, sigmoid half
            a = torch.tanh_(g[:f]).mul_(torch.sigmoid_(g[f:]))
            skips.addmm_(self.w_skip[i], a)
            if i < len(self.w_res):
                h = torch.addmm(h.view(f, b * t), self.w_res[i], a).view(f, b, t)
        s = torch.relu_(skips).view(f, b, t)
        a_out = torch.relu_(self._conv(self.w_a, s, 1))
        return torch.relu_(self._conv(self.w_b, a_out, 1))

    @torch.inference_mode()
    def forward_with_cam(
        self, x: torch.Tensor, valid_length: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) and CAM (B, classes, T) in float32, as `CNNv7.forward_with_cam`."""
        feats = self.forward_features_cbt(x)  # (C, B, T)
        c, b, t = feats.shape
        cam = (self.w_head @ feats.view(c, b * t)).view(-1, b, t).permute(1, 0, 2).float()
        if self.masked_pooling and valid_length is not None:
            logits = masked_mean(cam, valid_length, t)  # linear head: pooling the CAM = pooling the features
        else:
            logits = cam.mean(dim=-1)
        return logits, cam

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_cam(x, valid_length)[0]
