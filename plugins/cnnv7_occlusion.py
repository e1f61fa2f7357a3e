"""Occlusion for CNNv7 through its finite receptive field: recompute only what a window can change.

Zeroing the input on [a, b) changes a layer whose output reaches r samples back and forth (its
radius: half the kernel times the dilation, summed over the layers up to it) only on
[a - r, b + r). The full pass is run once and every layer's activation kept; for each occluded
window each layer is recomputed on its changed stretch alone, reading the kept activations
around it, and the change of the logit is the pooled change of the CAM on the last stretch. On
full-size CNNv7 (radius 1,025 samples) a 1-s window at 300 Hz recomputes about 7% of a 60-s
record's work instead of all of it. Exact: the same convolutions on the same numbers (tests
compare with occluding the input and running the whole model).

Baseline zero only: a window reaching past the end of the record then occludes padding, which
is zero already, so every window has the same width and windows batch as one tensor.
"""

from __future__ import annotations

import dataclasses

import torch

from ecgzoo_plugins.cnnv7_fast import FastCNNv7


def _conv_valid(x: torch.Tensor, w: torch.Tensor, dilation: int) -> torch.Tensor:
    """'Valid' dilated conv of (B, L, C) windows with (k, C, N) tap weights: (B, L - (k-1) d, N)."""
    k = w.shape[0]
    n = x.shape[1] - (k - 1) * dilation
    out = x[:, :n] @ w[0]
    for j in range(1, k):
        out.add_(x[:, j * dilation:j * dilation + n] @ w[j])
    return out


def _biased(out: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return out if bias is None else out.add_(bias)


@dataclasses.dataclass
class _FullPass:
    """Every activation of one record on the feature grid, zero-padded by `pad` rows on both sides
    (time-major); the input zero-padded by `pad_in` samples."""

    pad: int
    length: int  # feature steps T'
    pad_in: int
    inp: torch.Tensor  # the input (T + 2 pad_in, leads)
    h: list[torch.Tensor]  # input of each gated block
    act: list[torch.Tensor]  # gated activation of each block
    skips: torch.Tensor  # skip sum before the ReLU
    s: torch.Tensor  # ReLU(skips): input of conv A
    a_out: torch.Tensor  # conv A output: input of conv B
    feats: torch.Tensor  # conv B output: the feature map


class ReceptiveFieldOcclusion:
    """Logit changes of a FastCNNv7 when windows of one record are set to zero.

    Works on the feature grid: a window [a, a + width) of the input changes the stem's output on the
    steps u whose taps s u - pad .. s u - pad + k - 1 reach into it (`_stem_windows`); from there every
    layer widens the changed stretch by its radius, as at stride 1.
    """

    def __init__(self, fast: FastCNNv7):
        self.fast = fast
        self.half = fast.k // 2
        self.radius = self.half * (sum(fast.dilations) + 2)  # after the stem, in feature steps

    def _same(self, x: torch.Tensor, w: torch.Tensor, dilation: int, pad: int, length: int,
              bias: torch.Tensor | None = None) -> torch.Tensor:
        """'Same' conv of a padded (length + 2 pad, C) buffer; the result padded with zeros likewise."""
        r = self.half * dilation
        out = torch.zeros(length + 2 * pad, w.shape[-1], dtype=x.dtype)
        out[pad:pad + length] = _biased(_conv_valid(x[None, pad - r:pad + length + r], w, dilation)[0], bias)
        return out

    def full_pass(self, x: torch.Tensor, pad: int, pad_in: int) -> _FullPass:
        """All activations of one record x (leads, T)."""
        f, fast = self.fast.filters, self.fast
        t = fast.feature_length(x.shape[-1])
        inp = torch.zeros(x.shape[-1] + 2 * pad_in, x.shape[0], dtype=fast.dtype)
        inp[pad_in:pad_in + x.shape[-1]] = x.T
        h = torch.zeros(t + 2 * pad, f, dtype=fast.dtype)
        h[pad:pad + t] = fast.stem(x[None])[0]
        hs, acts, skips = [], [], torch.zeros_like(h)
        for i, d in enumerate(fast.dilations):
            hs.append(h)
            z = self._same(h, fast.w_gated[i], d, pad, t, fast.b_gated[i])
            a = torch.tanh(z[:, :f]) * torch.sigmoid(z[:, f:])
            a[:pad], a[pad + t:] = 0, 0
            acts.append(a)
            skips.addmm_(a, fast.w_skip[i])
            if i < len(fast.w_res):
                h = h + a @ fast.w_res[i]
        s = torch.relu(skips)
        a_out = torch.relu(self._same(s, fast.w_a, 1, pad, t, fast.b_a))
        feats = torch.relu(self._same(a_out, fast.w_b, 1, pad, t, fast.b_b))
        return _FullPass(pad, t, pad_in, inp, hs, acts, skips, s, a_out, feats)

    def _gather(self, full: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
        """(B, length, C) stretches of a padded (rows, C) activation starting at padded rows `starts`."""
        return full[starts[:, None] + torch.arange(length)[None, :]]

    def _stem_steps(self, starts: torch.Tensor, width: int) -> tuple[torch.Tensor, int]:
        """First feature step each window [a, a + width) changes, and the most steps any window changes."""
        fast = self.fast
        s, pad, k = fast.stride, fast.stem_pad, fast.stem_k
        first = torch.div(starts + pad - k + 1 + s - 1, s, rounding_mode="floor")  # ceil((a + pad - k + 1) / s)
        last = torch.div(starts + width - 1 + pad, s, rounding_mode="floor")
        return first, int((last - first).max()) + 1

    def _stem_windows(self, full: _FullPass, starts: torch.Tensor, width: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        """(first changed step, steps, new stem output (B, steps, filters)) of each window zeroed in the input."""
        fast = self.fast
        s, pad, k = fast.stride, fast.stem_pad, fast.stem_k
        first, steps = self._stem_steps(starts, width)
        n_in = s * (steps - 1) + k
        lo = first * s - pad  # input sample of the first tap of the first changed step
        pos = lo[:, None] + torch.arange(n_in)[None, :]
        xin = full.inp[(pos + full.pad_in)]  # (B, n_in, leads)
        xin[(pos >= starts[:, None]) & (pos < starts[:, None] + width)] = 0
        cols = xin.unfold(1, k, s)  # (B, steps, leads, k)
        h_new = _biased(cols.reshape(len(starts) * steps, -1) @ fast.w_in, fast.b_in).view(len(starts), steps, -1)
        return first, steps, h_new

    def logit_changes(self, x: torch.Tensor, starts: list[int], width: int, weights: torch.Tensor,
                      batch: int = 8) -> torch.Tensor:
        """Change of the logits (windows, classes) when x (leads, T) is zeroed on [start, start + width)
        for each start; `weights` (T',) pools the feature-grid CAM into the logit (`FastCNNv7.pooling_weights`)."""
        fast = self.fast
        t = fast.feature_length(x.shape[-1])
        steps = width // fast.stride + fast.stem_k + 1
        pad = 2 * (self.radius + self.half) + steps + 2
        pad_in = fast.stride * (pad + 2) + width
        full = self.full_pass(x, pad, pad_in)
        w_pad = torch.zeros(t + 2 * pad, dtype=fast.dtype)
        w_pad[pad:pad + t] = weights
        inside = torch.zeros(t + 2 * pad, 1, dtype=fast.dtype)
        inside[pad:pad + t] = 1
        out = [self._window_batch(full, torch.tensor(starts[i:i + batch]), width, w_pad, inside)
               for i in range(0, len(starts), batch)]
        return torch.cat(out).float() if out else torch.zeros(0, fast.w_head.shape[1])

    def _window_batch(self, full: _FullPass, starts: torch.Tensor, width: int, w_pad: torch.Tensor,
                      inside: torch.Tensor) -> torch.Tensor:
        """Logit changes of a batch of windows (input samples `starts`)."""
        fast, f, half = self.fast, self.fast.filters, self.half
        first, n, h_new = self._stem_windows(full, starts, width)
        lo = first + full.pad  # padded row of the changed stretch's first step
        h_new.mul_(self._gather(inside, lo, n))
        reach = half * sum(fast.dilations)
        skip_delta = torch.zeros(len(starts), n + 2 * reach, f, dtype=fast.dtype)
        for i, d in enumerate(fast.dilations):
            e = half * d
            xin = self._gather(full.h[i], lo - 2 * e, n + 4 * e)
            xin[:, 2 * e:2 * e + n] = h_new
            z = _biased(_conv_valid(xin, fast.w_gated[i], d), fast.b_gated[i])
            lo, n = lo - e, n + 2 * e
            reach -= e
            a = torch.tanh(z[:, :, :f]) * torch.sigmoid(z[:, :, f:])
            mask = self._gather(inside, lo, n)
            a.mul_(mask)
            skip_delta[:, reach:reach + n] += (a - self._gather(full.act[i], lo, n)) @ fast.w_skip[i]
            if i < len(fast.w_res):
                h_new = (xin[:, e:e + n] + a @ fast.w_res[i]).mul_(mask)
        s_new = torch.relu(self._gather(full.skips, lo, n) + skip_delta)
        s_new.mul_(self._gather(inside, lo, n))
        a_new, lo, n = self._changed_conv(full.s, s_new, fast.w_a, fast.b_a, lo, n, inside)
        f_new, lo, n = self._changed_conv(full.a_out, a_new, fast.w_b, fast.b_b, lo, n, inside)
        delta_f = f_new - self._gather(full.feats, lo, n)
        pool = self._gather(w_pad[:, None], lo, n)  # (B, L, 1)
        return (delta_f * pool).sum(dim=1) @ fast.w_head

    def _changed_conv(self, before: torch.Tensor, changed: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None,
                      lo: torch.Tensor, n: int, inside: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """ReLU(conv + bias) (k=w.shape[0], dilation 1) of an activation whose stretch [lo, lo + n) changed to
        `changed`: the output's changed stretch (widened by half the kernel), its first row and length."""
        e = self.half
        xin = self._gather(before, lo - 2 * e, n + 4 * e)
        xin[:, 2 * e:2 * e + n] = changed
        lo, n = lo - e, n + 2 * e
        out = torch.relu(_biased(_conv_valid(xin, w, 1), bias)).mul_(self._gather(inside, lo, n))
        return out, lo, n
