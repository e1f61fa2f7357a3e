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


@dataclasses.dataclass
class _FullPass:
    """Every activation of one record, zero-padded by `pad` rows on both sides (time-major)."""

    pad: int
    length: int
    inp: torch.Tensor  # the input
    h: list[torch.Tensor]  # input of each gated block
    act: list[torch.Tensor]  # gated activation of each block
    skips: torch.Tensor  # skip sum before the ReLU
    s: torch.Tensor  # ReLU(skips): input of conv A
    a_out: torch.Tensor  # conv A output: input of conv B
    feats: torch.Tensor  # conv B output: the feature map


class ReceptiveFieldOcclusion:
    """Logit changes of a FastCNNv7 when windows of one record are set to zero."""

    def __init__(self, fast: FastCNNv7):
        self.fast = fast
        self.half = fast.k // 2
        self.radius = self.half * (1 + sum(fast.dilations) + 2)

    def _same(self, x: torch.Tensor, w: torch.Tensor, dilation: int, pad: int, length: int) -> torch.Tensor:
        """'Same' conv of a padded (length + 2 pad, C) buffer; the result padded with zeros likewise."""
        r = self.half * dilation
        out = torch.zeros(length + 2 * pad, w.shape[-1], dtype=x.dtype)
        out[pad:pad + length] = _conv_valid(x[None, pad - r:pad + length + r], w, dilation)[0]
        return out

    def full_pass(self, x: torch.Tensor, pad: int) -> _FullPass:
        """All activations of one record x (leads, T)."""
        f, fast, t = self.fast.filters, self.fast, x.shape[-1]
        inp = torch.zeros(t + 2 * pad, x.shape[0], dtype=fast.dtype)
        inp[pad:pad + t] = x.T
        h = self._same(inp, fast.w_in, 1, pad, t)
        hs, acts, skips = [], [], torch.zeros_like(h)
        for i, d in enumerate(fast.dilations):
            hs.append(h)
            z = self._same(h, fast.w_gated[i], d, pad, t)
            a = torch.tanh(z[:, :f]) * torch.sigmoid(z[:, f:])
            acts.append(a)
            skips.addmm_(a, fast.w_skip[i])
            if i < len(fast.w_res):
                h = h + a @ fast.w_res[i]
        s = torch.relu(skips)
        a_out = torch.relu(self._same(s, fast.w_a, 1, pad, t))
        feats = torch.relu(self._same(a_out, fast.w_b, 1, pad, t))
        return _FullPass(pad, t, inp, hs, acts, skips, s, a_out, feats)

    def _gather(self, full: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
        """(B, length, C) stretches of a padded (rows, C) activation starting at padded rows `starts`."""
        return full[starts[:, None] + torch.arange(length)[None, :]]

    def logit_changes(self, x: torch.Tensor, starts: list[int], width: int, weights: torch.Tensor,
                      batch: int = 8) -> torch.Tensor:
        """Change of the logits (windows, classes) when x (leads, T) is zeroed on [start, start + width)
        for each start; `weights` (T,) pools the CAM into the logit (1/T, or 1/valid on the valid part)."""
        t = x.shape[-1]
        pad = 2 * self.radius + width
        full = self.full_pass(x, pad)
        w_pad = torch.zeros(t + 2 * pad, dtype=self.fast.dtype)
        w_pad[pad:pad + t] = weights
        inside = torch.zeros(t + 2 * pad, 1, dtype=self.fast.dtype)
        inside[pad:pad + t] = 1
        out = [self._window_batch(full, torch.tensor(starts[i:i + batch]) + pad, width, w_pad, inside)
               for i in range(0, len(starts), batch)]
        return torch.cat(out).float() if out else torch.zeros(0, self.fast.w_head.shape[1])

    def _window_batch(self, full: _FullPass, starts: torch.Tensor, width: int, w_pad: torch.Tensor,
                      inside: torch.Tensor) -> torch.Tensor:
        """Logit changes of a batch of windows (padded start rows `starts`)."""
        fast, f, half = self.fast, self.fast.filters, self.half
        xin = self._gather(full.inp, starts - 2 * half, width + 4 * half)
        xin[:, 2 * half:2 * half + width] = 0
        r = half  # radius of the stretch changed so far (after the input conv)
        h_new = _conv_valid(xin, fast.w_in, 1).mul_(self._gather(inside, starts - r, width + 2 * r))
        r_final = half * (1 + sum(fast.dilations))
        skip_delta = torch.zeros(len(starts), width + 2 * r_final, f, dtype=fast.dtype)
        for i, d in enumerate(fast.dilations):
            e = half * d
            xin = self._gather(full.h[i], starts - r - 2 * e, width + 2 * r + 4 * e)
            xin[:, 2 * e:2 * e + width + 2 * r] = h_new
            z = _conv_valid(xin, fast.w_gated[i], d)
            r += e
            a = torch.tanh(z[:, :, :f]) * torch.sigmoid(z[:, :, f:])
            mask = self._gather(inside, starts - r, width + 2 * r)
            a.mul_(mask)
            delta = a - self._gather(full.act[i], starts - r, width + 2 * r)
            off = r_final - r
            skip_delta[:, off:off + width + 2 * r] += delta @ fast.w_skip[i]
            if i < len(fast.w_res):
                h_new = (xin[:, e:e + width + 2 * r] + a @ fast.w_res[i]).mul_(mask)
        s_new = torch.relu(self._gather(full.skips, starts - r, width + 2 * r) + skip_delta)
        s_new.mul_(self._gather(inside, starts - r, width + 2 * r))
        a_new, r = self._changed_conv(full.s, s_new, fast.w_a, starts, width, r, inside)
        f_new, r = self._changed_conv(full.a_out, a_new, fast.w_b, starts, width, r, inside)
        delta_f = f_new - self._gather(full.feats, starts - r, width + 2 * r)
        pool = self._gather(w_pad[:, None], starts - r, width + 2 * r)  # (B, L, 1)
        return (delta_f * pool).sum(dim=1) @ fast.w_head

    def _changed_conv(self, before: torch.Tensor, changed: torch.Tensor, w: torch.Tensor, starts: torch.Tensor,
                      width: int, r: int, inside: torch.Tensor) -> tuple[torch.Tensor, int]:
        """ReLU(conv) (k=w.shape[0], dilation 1) of an activation whose stretch of radius r changed to `changed`:
        the output's changed stretch (radius r + half) and that radius."""
        e = self.half
        xin = self._gather(before, starts - r - 2 * e, width + 2 * r + 4 * e)
        xin[:, 2 * e:2 * e + width + 2 * r] = changed
        r += e
        out = torch.relu(_conv_valid(xin, w, 1)).mul_(self._gather(inside, starts - r, width + 2 * r))
        return out, r
