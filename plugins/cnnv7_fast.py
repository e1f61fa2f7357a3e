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

from collections.abc import Callable

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

    def _conv(self, w: torch.Tensor, x: torch.Tensor, dilation: int, out: torch.Tensor,
              accumulate: bool = False) -> torch.Tensor:
        """'Same' dilated conv of guarded buffer x into rows [guard, guard + n) of out (added to them
        when `accumulate`)."""
        g, n, half = self.guard, out.shape[0] - 2 * self.guard, self.k // 2
        mid = out[g:g + n]
        for j in range(self.k):
            s = g + (j - half) * dilation
            if j == 0 and not accumulate:
                torch.mm(x[s:s + n], w[j], out=mid)
            else:
                mid.addmm_(x[s:s + n], w[j])
        return mid

    @torch.inference_mode()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map (B, T, conv_b) from an input (B, leads, T)."""
        return self._records(self._forward(x, None), x.shape[0], x.shape[-1])

    def _forward(self, x: torch.Tensor, keep: dict | None) -> torch.Tensor:
        """Guarded feature buffer (rows, conv_b) of an input (B, leads, T); with `keep` (a dict) the
        activations the input gradient needs are stored in it (one gated buffer per block)."""
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
            if keep is not None and i:
                gated = buffer(2 * f)
            z = self._conv(self.w_gated[i], h, d, gated)
            torch.tanh_(z[:, :f]), torch.sigmoid_(z[:, f:])
            if keep is not None:
                keep.setdefault("gates", []).append(z)
                a = z[:, :f] * z[:, f:]
            else:
                a = z[:, :f].mul_(z[:, f:])
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
        if keep is not None:
            keep.update(s=s, a_out=a_out, feats=feats)
        return feats

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

    def pooling_weights(self, b: int, t: int, valid_length: torch.Tensor | None) -> torch.Tensor:
        """(B, T) weights whose sum over time against the CAM is the logit: 1/T, or 1/valid on the valid part."""
        if not (self.masked_pooling and valid_length is not None):
            return torch.full((b, t), 1.0 / t)
        n = valid_length.to(torch.float64).clamp(1, t).ceil()
        mask = torch.arange(t)[None, :] < n[:, None]
        return (mask / n[:, None]).float()

    def _transposed(self) -> dict[str, torch.Tensor]:
        """Weights of the transposed convolutions (the backward of each conv w.r.t. its input): the
        shift taps reversed and in/out swapped, so `_conv` runs them on the same shifted views."""
        if not hasattr(self, "_t_weights"):
            def t(w: torch.Tensor) -> torch.Tensor:
                return w.flip(0).transpose(1, 2).contiguous()

            self._t_weights = {"in": t(self.w_in), "a": t(self.w_a), "b": t(self.w_b),
                               "gated": [t(w) for w in self.w_gated]}
        return self._t_weights

    @torch.inference_mode()
    def input_gradient(
        self, x: torch.Tensor, dlogits: Callable[[torch.Tensor], torch.Tensor],
        valid_length: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) of x (B, leads, T) and the gradient w.r.t. x of sum_b v_b . logits_b, where
        v = dlogits(logits) (B, classes): e.g. one-hot targets, or softmax weights for probabilities.

        Hand-written reverse pass in the same GEMM layout (no autograd, no weight gradients): each
        transposed conv is again k GEMMs on shifted views, so it costs about one forward pass.
        """
        b, leads, t = x.shape
        g, f = self.guard, self.filters
        keep: dict = {}
        feats = self._records(self._forward(x, keep), b, t)
        wt = self.pooling_weights(b, t, valid_length).to(self.dtype)
        logits = (torch.einsum("bt,btc->bc", wt, feats) @ self.w_head).float()
        gk = (dlogits(logits).to(self.dtype) @ self.w_head.T)  # (B, conv_b)
        tw = self._transposed()
        rows = keep["s"].shape[0]
        n = rows - 2 * g

        def zeros(c: int) -> torch.Tensor:
            return torch.zeros(rows, c, dtype=self.dtype)

        g_feats = zeros(feats.shape[-1])
        self._records(g_feats, b, t).copy_(wt[:, :, None] * gk[:, None, :]).mul_(feats > 0)
        g_a = zeros(self.w_a.shape[-1])
        self._conv(tw["b"], g_feats, 1, g_a).mul_(keep["a_out"][g:g + n] > 0)
        self._zero_guards(g_a, b, t)
        g_s = zeros(f)
        g_skip = self._conv(tw["a"], g_a, 1, g_s).mul_(keep["s"][g:g + n] > 0)
        self._zero_guards(g_s, b, t)
        g_h, g_z = zeros(f), zeros(2 * f)
        for i in reversed(range(len(self.dilations))):
            g_act = g_skip @ self.w_skip[i].T
            if i < len(self.w_res):
                g_act.addmm_(g_h[g:g + n], self.w_res[i].T)
            z = keep["gates"][i]  # rows [guard, guard + n)
            th, sg = z[:, :f], z[:, f:]
            torch.mul(g_act * sg, 1 - th * th, out=g_z[g:g + n, :f])
            torch.mul(g_act * th, sg * (1 - sg), out=g_z[g:g + n, f:])
            self._conv(tw["gated"][i], g_z, self.dilations[i], g_h, accumulate=True)
            self._zero_guards(g_h, b, t)
        g_in = zeros(leads)
        self._conv(tw["in"], g_h, 1, g_in)
        return logits, self._records(g_in, b, t).transpose(1, 2).float()

    def occlusion_logit_changes(self, x: torch.Tensor, starts: list[int], width: int,
                                weights: torch.Tensor) -> torch.Tensor:
        """Change of the logits (windows, classes) when x (leads, T) is zeroed on [start, start + width),
        recomputing only each window's receptive field (`ReceptiveFieldOcclusion`)."""
        from ecgzoo_plugins.cnnv7_occlusion import ReceptiveFieldOcclusion

        with torch.inference_mode():
            return ReceptiveFieldOcclusion(self).logit_changes(x.to(self.dtype), starts, width, weights)

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_cam(x, valid_length)[0]
