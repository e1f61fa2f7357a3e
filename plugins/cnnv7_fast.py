"""CNNv7 inference laid out for CPU matrix multiplies: same weights, same numbers, less time.

The eager model (plugins/cnnv7.py) runs every convolution through `Conv1d`. Here:

- activations are time-major matrices (rows = time samples of all records of the batch one after
  another, columns = channels), the layout in which this CPU's GEMMs ran fastest for these shapes;
- records are separated (and surrounded) by `guard` zero rows, at least as many as the largest
  dilation reaches, so a dilated k=3 "same" convolution is three GEMMs on row-shifted *views* of
  one buffer (no padding copies, no im2col): out = X[-d] @ W0 + X[0] @ W1 + X[+d] @ W2,
  accumulated in place (`addmm_`);
- the tanh and sigmoid convs of a gated block share those GEMMs (one weight with 2x outputs);
- skip and residual 1x1 convs accumulate in place into the skip sum and the residual stream.

Built from a trained `CNNv7` (`FastCNNv7(model)`): checkpoints keep the eager layout; this module
only rearranges its weights (`_shift_weights`). Inference only (eval semantics, no gradients);
`dtype=torch.bfloat16` runs the GEMMs in bfloat16 where the CPU has native support.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgzoo.plugin_api import masked_mean
from ecgzoo_plugins.cnnv7 import CNNv7


def _shift_weights(*convs: nn.Conv1d) -> torch.Tensor:
    """(out, in, k) conv weights (stacked on out) -> (k, in, out): slice j multiplies the input shifted by j - k//2."""
    w = torch.cat([c.weight.detach() for c in convs])
    return w.permute(2, 1, 0).contiguous()


def unsupported(model: nn.Module) -> str | None:
    """Why `FastCNNv7` cannot compute `model` exactly (None when it can): it covers the paper's layout,
    full-resolution input conv and no batch normalisation. Callers fall back to the eager model."""
    if not isinstance(model, CNNv7):
        return f"{type(model).__name__} is not a CNNv7"
    cfg = model.config
    if cfg.stem_stride != 1:
        return f"stem_stride={cfg.stem_stride} (the fast path runs the input conv at full resolution)"
    if cfg.norm or cfg.norm_blocks:
        return "batch normalisation (norm/norm_blocks) is not folded into the fast path"
    return None


class FastCNNv7(nn.Module):
    """Inference-only CNNv7 (eval-mode semantics) computing the same logits and CAM as `model`."""

    def __init__(self, model: CNNv7, dtype: torch.dtype = torch.float32):
        super().__init__()
        reason = unsupported(model)
        if reason is not None:
            raise ValueError(f"FastCNNv7 cannot compute this model exactly: {reason}; use the model itself")
        cfg = model.config
        self.k, self.filters, self.dtype = cfg.kernel_size, cfg.filters, dtype
        self.masked_pooling = model.masked_pooling
        self.dilations = list(cfg.dilations)
        self.guard = max([1, *self.dilations]) * (self.k // 2)

        def p(t: torch.Tensor) -> nn.Parameter:
            return nn.Parameter(t.detach().to(dtype).contiguous(), requires_grad=False)

        self.w_in = p(_shift_weights(model.input_conv))
        self.w_gated = nn.ParameterList(p(_shift_weights(b.filter_conv, b.gate_conv)) for b in model.blocks)
        self.w_skip = nn.ParameterList(p(b.skip_conv.weight[:, :, 0].T) for b in model.blocks)
        self.w_res = nn.ParameterList(p(b.res_conv.weight[:, :, 0].T) for b in model.blocks if b.res_conv is not None)
        self.w_a = p(_shift_weights(model.conv_a[0]))
        self.w_b = p(_shift_weights(model.conv_b[0]))
        self.w_head = p(model.head.weight.T)

    def _records(self, buf: torch.Tensor, b: int, t: int) -> torch.Tensor:
        """(B, T, C) view of the records inside a guarded (rows, C) buffer."""
        g = self.guard
        return buf[g:g + b * (t + g)].view(b, t + g, -1)[:, :t]

    def _zero_guards(self, buf: torch.Tensor, b: int, t: int) -> torch.Tensor:
        """Zero the guard rows (the convolutions' 'same' padding) around and between the records."""
        g = self.guard
        buf[:g].zero_()
        buf[g:g + b * (t + g)].view(b, t + g, -1)[:, t:].zero_()
        return buf

    def _conv(self, w: torch.Tensor, x: torch.Tensor, dilation: int, out: torch.Tensor) -> torch.Tensor:
        """'Same' dilated conv of guarded buffer x into rows [guard, guard + n) of out."""
        g, n, half = self.guard, out.shape[0] - 2 * self.guard, self.k // 2
        mid = out[g:g + n]
        for j in range(self.k):
            s = g + (j - half) * dilation
            if j == 0:
                torch.mm(x[s:s + n], w[j], out=mid)
            else:
                mid.addmm_(x[s:s + n], w[j])
        return mid

    @torch.inference_mode()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map (B, T, conv_b) from an input (B, leads, T)."""
        b, leads, t = x.shape
        g, f = self.guard, self.filters
        rows = b * t + (b + 1) * g
        n = rows - 2 * g

        def buffer(c: int) -> torch.Tensor:
            return torch.empty(rows, c, dtype=self.dtype)

        inp = self._zero_guards(buffer(leads), b, t)
        self._records(inp, b, t).copy_(x.transpose(1, 2))
        h = buffer(f)
        self._conv(self.w_in, inp, 1, h)
        self._zero_guards(h, b, t)
        skips = torch.empty(n, f, dtype=self.dtype)
        gated = buffer(2 * f)  # guard rows never read
        for i, d in enumerate(self.dilations):
            z = self._conv(self.w_gated[i], h, d, gated)
            a = torch.tanh_(z[:, :f]).mul_(torch.sigmoid_(z[:, f:]))
            if i == 0:
                torch.mm(a, self.w_skip[i], out=skips)
            else:
                skips.addmm_(a, self.w_skip[i])
            if i < len(self.w_res):
                h[g:g + n].addmm_(a, self.w_res[i])
                self._zero_guards(h, b, t)
        s = buffer(f)
        torch.relu_(s[g:g + n].copy_(skips))
        self._zero_guards(s, b, t)
        a_out = buffer(self.w_a.shape[-1])
        torch.relu_(self._conv(self.w_a, s, 1, a_out))
        self._zero_guards(a_out, b, t)
        feats = buffer(self.w_b.shape[-1])  # only the records' rows are read
        torch.relu_(self._conv(self.w_b, a_out, 1, feats))
        return self._records(feats, b, t)

    @torch.inference_mode()
    def forward_with_cam(
        self, x: torch.Tensor, valid_length: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) and CAM (B, classes, T) in float32, as `CNNv7.forward_with_cam`."""
        feats = self.features(x)  # (B, T, C)
        cam = (feats @ self.w_head).transpose(1, 2).float()
        if self.masked_pooling and valid_length is not None:
            logits = masked_mean(cam, valid_length, x.shape[-1])  # linear head: pooling the CAM = pooling features
        else:
            logits = cam.mean(dim=-1)
        return logits, cam

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_cam(x, valid_length)[0]
