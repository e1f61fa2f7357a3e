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
import torch.nn.functional as F
from torch import nn

from ecgzoo.plugin_api import masked_mean
from ecgzoo_plugins.batchnorm_fold import bn_affine, lacks_running_stats
from ecgzoo_plugins.cnnv7 import CNNv7


def _shift_weights(*convs: nn.Conv1d, scale: torch.Tensor | None = None) -> torch.Tensor:
    """(out, in, k) conv weights (stacked on out, each output channel times `scale` when given) -> (k, in, out):
    slice j multiplies the input shifted by j - k//2."""
    w = torch.cat([c.weight.detach() for c in convs])
    if scale is not None:
        w = w * scale[:, None, None]
    return w.permute(2, 1, 0).contiguous()


def _norm_of(seq: nn.Sequential) -> nn.Module | None:
    """The BatchNorm1d right after the conv of a conv A / conv B block, or None."""
    return seq[1] if isinstance(seq[1], nn.BatchNorm1d) else None


def unsupported(model: nn.Module) -> str | None:
    """Why `FastCNNv7` cannot compute `model` exactly (None when it can): it covers every CNNv7 layout
    (any stem stride, batch normalisation folded into the convs) whose batch norms normalise with their
    running statistics in eval mode. Callers fall back to the eager model."""
    if not isinstance(model, CNNv7):
        return f"{type(model).__name__} is not a CNNv7"
    name = lacks_running_stats(model)
    if name is not None:
        return f"batch norm {name!r} keeps no running statistics (it normalises with the batch's even in eval mode)"
    return None


class FastCNNv7(nn.Module):
    """Inference-only CNNv7 (eval-mode semantics) computing the same logits and CAM as `model`.

    A strided stem (kernel 2s + 1, stride s) runs as one GEMM over the input's unfolded taps; every later
    layer runs on the feature grid (ceil(T / s) steps) in the guarded layout above. Eval-mode batch norms
    are folded into the conv before them (weights scaled, a bias added), so `norm`/`norm_blocks` cost one
    bias add per layer; the input gradient and occlusion use the folded weights too.
    """

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
        conv = model.input_conv
        self.stride, self.stem_k, self.stem_pad = conv.stride[0], conv.kernel_size[0], conv.padding[0]
        self._upsample = model.upsample_map  # the model's own grid (feature t centred on input s * t)

        def p(t: torch.Tensor | None) -> nn.Parameter | None:
            return None if t is None else nn.Parameter(t.detach().to(dtype).contiguous(), requires_grad=False)

        def folded(convs: tuple[nn.Conv1d, ...], norm: nn.Module | None) -> tuple[nn.Parameter, nn.Parameter | None]:
            affine = bn_affine(norm)
            w = _shift_weights(*convs, scale=None if affine is None else affine[0])
            return p(w), p(None if affine is None else affine[1])

        w_in, self.b_in = folded((conv,), model.input_norm)
        self.w_in = p(w_in.permute(1, 0, 2).reshape(-1, w_in.shape[-1]))  # (leads * k, filters): unfolded taps
        gated = [folded((b.filter_conv, b.gate_conv), b.norm) for b in model.blocks]
        self.w_gated = nn.ParameterList(w for w, _ in gated)
        self.b_gated = [b for _, b in gated]
        self.w_skip = nn.ParameterList(p(b.skip_conv.weight[:, :, 0].T) for b in model.blocks)
        self.w_res = nn.ParameterList(p(b.res_conv.weight[:, :, 0].T) for b in model.blocks if b.res_conv is not None)
        self.w_a, self.b_a = folded((model.conv_a[0],), _norm_of(model.conv_a))
        self.w_b, self.b_b = folded((model.conv_b[0],), _norm_of(model.conv_b))
        self.w_head = p(model.head.weight.T)

    def path_points_per_pass(self, x: torch.Tensor, requested: int) -> int:
        """Integrated-Gradients path points per pass: one. A record's rows already fill the GEMMs, and the
        records of a batch are separated by guard rows that are computed too (17% more rows for 4 points
        of a 60-s record at stride 8), while the kept gate derivatives grow with the batch."""
        return 1

    def feature_length(self, t: int) -> int:
        """Steps of the feature map of a t-sample input: t at stride 1, ceil(t / s) with a strided stem."""
        return (t + 2 * self.stem_pad - self.stem_k) // self.stride + 1

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Input conv (and its folded norm) of x (B, leads, T): (B, T', filters), one GEMM over unfolded taps."""
        b = x.shape[0]
        cols = F.pad(x.to(self.dtype), (self.stem_pad, self.stem_pad)).unfold(-1, self.stem_k, self.stride)
        t_feat = cols.shape[2]
        out = cols.permute(0, 2, 1, 3).reshape(b * t_feat, -1) @ self.w_in
        if self.b_in is not None:
            out += self.b_in
        return out.view(b, t_feat, -1)

    def stem_input_gradient(self, grad: torch.Tensor, t: int) -> torch.Tensor:
        """The stem's transpose: gradient (B, T', filters) w.r.t. its output -> (B, leads, t) w.r.t. the input."""
        b, t_feat, _ = grad.shape
        k, s, pad = self.stem_k, self.stride, self.stem_pad
        cols = (grad.reshape(b * t_feat, -1) @ self.w_in.T).view(b, t_feat, -1, k)
        out = torch.zeros(b, cols.shape[2], t + 2 * pad, dtype=self.dtype)
        span = s * (t_feat - 1) + 1
        for j in range(k):  # tap j of step u read input sample s * u + j - pad
            out[:, :, j:j + span:s] += cols[:, :, :, j].transpose(1, 2)
        return out[:, :, pad:pad + t]

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
              accumulate: bool = False, bias: torch.Tensor | None = None) -> torch.Tensor:
        """'Same' dilated conv of guarded buffer x into rows [guard, guard + n) of out (added to them
        when `accumulate`), plus `bias` per output channel when given."""
        g, n, half = self.guard, out.shape[0] - 2 * self.guard, self.k // 2
        mid = out[g:g + n]
        for j in range(self.k):
            s = g + (j - half) * dilation
            if j == 0 and not accumulate:
                torch.mm(x[s:s + n], w[j], out=mid)
            else:
                mid.addmm_(x[s:s + n], w[j])
        if bias is not None:
            mid += bias
        return mid

    @torch.inference_mode()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map (B, T', conv_b) from an input (B, leads, T)."""
        return self._records(self._forward(x, None), x.shape[0], self.feature_length(x.shape[-1]))

    def _forward(self, x: torch.Tensor, keep: dict | None) -> torch.Tensor:
        """Guarded feature buffer (rows, conv_b) of an input (B, leads, T); with `keep` (a dict) the
        activations the input gradient needs are stored in it (one gated buffer per block)."""
        b, t = x.shape[0], self.feature_length(x.shape[-1])
        g, f = self.guard, self.filters
        rows = b * t + (b + 1) * g
        n = rows - 2 * g

        def buffer(c: int) -> torch.Tensor:
            return torch.empty(rows, c, dtype=self.dtype)

        h = buffer(f)
        self._records(h, b, t).copy_(self.stem(x))
        self._zero_guards(h, b, t)
        skips = self._blocks(h, b, t, keep, buffer)
        s = buffer(f)
        torch.relu_(s[g:g + n].copy_(skips))
        self._zero_guards(s, b, t)
        a_out = buffer(self.w_a.shape[-1])
        torch.relu_(self._conv(self.w_a, s, 1, a_out, bias=self.b_a))
        self._zero_guards(a_out, b, t)
        feats = buffer(self.w_b.shape[-1])  # only the records' rows are read
        torch.relu_(self._conv(self.w_b, a_out, 1, feats, bias=self.b_b))
        if keep is not None:
            keep.update(s=s, a_out=a_out, feats=feats)
        return feats

    def _blocks(self, h: torch.Tensor, b: int, t: int, keep: dict | None, buffer: Callable) -> torch.Tensor:
        """The gated residual blocks on the guarded buffer h (updated in place): the skip sum (n, filters).
        With `keep`, each block's gate derivatives are kept for the reverse pass: rows [d tanh-part, d
        sigmoid-part] of the gated activation a = tanh(z_f) sigmoid(z_g) w.r.t. z_f and z_g."""
        g, f = self.guard, self.filters
        n = h.shape[0] - 2 * g
        skips = torch.empty(n, f, dtype=self.dtype)
        gated = buffer(2 * f)  # guard rows never read
        for i, d in enumerate(self.dilations):
            if keep is not None and i:
                gated = buffer(2 * f)
            z = self._conv(self.w_gated[i], h, d, gated, bias=self.b_gated[i])
            th, sg = z[:, :f], z[:, f:]
            torch.tanh_(th), torch.sigmoid_(sg)
            if keep is not None:
                a = th * sg
                th.mul_(th).neg_().add_(1).mul_(sg)  # d a / d z_f = sigmoid (1 - tanh^2)
                sg.neg_().add_(1).mul_(a)  # d a / d z_g = tanh sigmoid (1 - sigmoid)
                keep.setdefault("gates", []).append(z)
            else:
                a = th.mul_(sg)
            if i == 0:
                torch.mm(a, self.w_skip[i], out=skips)
            else:
                skips.addmm_(a, self.w_skip[i])
            if i < len(self.w_res):
                h[g:g + n].addmm_(a, self.w_res[i])
                self._zero_guards(h, b, t)
        return skips

    @torch.inference_mode()
    def forward_with_feature_cam(
        self, x: torch.Tensor, valid_length: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) and the CAM on the feature grid (B, classes, T') in float32."""
        feats = self.features(x)  # (B, T', C)
        cam = (feats @ self.w_head).transpose(1, 2).float()
        vl = valid_length if self.masked_pooling else None
        return masked_mean(cam, vl, x.shape[-1]), cam  # linear head: pooling the CAM = pooling features

    @torch.inference_mode()
    def forward_with_cam(
        self, x: torch.Tensor, valid_length: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, classes) and CAM (B, classes, T) in float32, as `CNNv7.forward_with_cam` (a strided
        model's CAM upsampled by the model's own `upsample_map`)."""
        logits, cam = self.forward_with_feature_cam(x, valid_length)
        return logits, self._upsample(cam, x.shape[-1])

    def pooling_weights(self, b: int, t: int, valid_length: torch.Tensor | None) -> torch.Tensor:
        """(B, T') weights on the feature grid of a t-sample input whose sum over the feature grid against
        the CAM there is the logit: 1/T', or 1/n on the first n = ceil(valid * T' / t) steps (`masked_mean`)."""
        t_feat = self.feature_length(t)
        if not (self.masked_pooling and valid_length is not None):
            return torch.full((b, t_feat), 1.0 / t_feat)
        n = torch.ceil(valid_length.to(torch.float64) * t_feat / t).clamp(1, t_feat)
        mask = torch.arange(t_feat)[None, :] < n[:, None]
        return (mask / n[:, None]).float()

    def _transposed(self) -> dict[str, torch.Tensor]:
        """Weights of the transposed convolutions (the backward of each conv w.r.t. its input): the
        shift taps reversed and in/out swapped, so `_conv` runs them on the same shifted views."""
        if not hasattr(self, "_t_weights"):
            def t(w: torch.Tensor) -> torch.Tensor:
                return w.flip(0).transpose(1, 2).contiguous()

            self._t_weights = {"a": t(self.w_a), "b": t(self.w_b), "gated": [t(w) for w in self.w_gated]}
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
        b, t = x.shape[0], self.feature_length(x.shape[-1])
        g = self.guard
        keep: dict = {}
        feats = self._records(self._forward(x, keep), b, t)
        wt = self.pooling_weights(b, x.shape[-1], valid_length).to(self.dtype)
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
        g_s = zeros(self.filters)
        g_skip = self._conv(tw["a"], g_a, 1, g_s).mul_(keep["s"][g:g + n] > 0)
        self._zero_guards(g_s, b, t)
        g_h = self._blocks_reverse(g_skip, keep["gates"], b, t, zeros)
        return logits, self.stem_input_gradient(self._records(g_h, b, t), x.shape[-1]).float()

    def _blocks_reverse(self, g_skip: torch.Tensor, gates: list[torch.Tensor], b: int, t: int,
                        zeros: Callable) -> torch.Tensor:
        """Gradient w.r.t. the blocks' input (guarded buffer) from the gradient w.r.t. the skip sum."""
        g, f, tw = self.guard, self.filters, self._transposed()
        n = g_skip.shape[0]
        g_h, g_z = zeros(f), zeros(2 * f)
        for i in reversed(range(len(self.dilations))):
            g_act = g_skip @ self.w_skip[i].T
            if i < len(self.w_res):
                g_act.addmm_(g_h[g:g + n], self.w_res[i].T)
            torch.mul(g_act[:, None, :], gates[i].view(n, 2, f), out=g_z[g:g + n].view(n, 2, f))
            self._conv(tw["gated"][i], g_z, self.dilations[i], g_h, accumulate=True)
            self._zero_guards(g_h, b, t)
        return g_h

    def occlusion_logit_changes(self, x: torch.Tensor, starts: list[int], width: int,
                                weights: torch.Tensor) -> torch.Tensor:
        """Change of the logits (windows, classes) when x (leads, T) is zeroed on [start, start + width),
        recomputing only each window's receptive field (`ReceptiveFieldOcclusion`)."""
        from ecgzoo_plugins.cnnv7_occlusion import ReceptiveFieldOcclusion

        with torch.inference_mode():
            return ReceptiveFieldOcclusion(self).logit_changes(x.to(self.dtype), starts, width, weights)

    def forward(self, x: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_cam(x, valid_length)[0]
