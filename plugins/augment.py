"""Training-time views of a batch: a random crop of each record's valid part and label-preserving
distortions (amplitude, polarity, noise).

Why crops: the models are fully convolutional with global pooling, so a network trained on 30-s
windows scores a 60-s record unchanged; training on shorter windows is cheaper per step, and a new
window every epoch is itself an augmentation. Why polarity: single-lead handheld recordings
(PhysioNet 2017's AliveCor device) are often taken with the electrodes reversed.

Every random draw uses torch's global generator, whose state the reference trainer saves with each
checkpoint, so a resumed run sees the same crops as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BatchAugment:
    """What to do to each training batch; all off by default."""

    crop_samples: int | None = None
    scale: tuple[float, float] | None = None
    flip: bool = False
    noise: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.crop_samples or self.scale or self.flip or self.noise)

    def __call__(self, x: torch.Tensor, valid_length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, leads, T) signals and valid lengths -> the augmented batch and its valid lengths."""
        if self.crop_samples:
            x, valid_length = random_crop(x, valid_length, self.crop_samples)
        b = x.shape[0]
        if self.scale:
            lo, hi = self.scale
            x = x * torch.empty(b, 1, 1).uniform_(lo, hi).to(x)
        if self.flip:
            x = x * torch.where(torch.rand(b, 1, 1) < 0.5, -1.0, 1.0).to(x)
        if self.noise:
            inside = torch.arange(x.shape[-1], device=x.device)[None, None, :] < valid_length.to(x.device)[:, None, None]
            x = x + self.noise * torch.randn(x.shape).to(x) * inside
        return x, valid_length


def random_crop(x: torch.Tensor, valid_length: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A window of `samples` from each record's valid part, at a uniformly random start.

    A record shorter than the window is kept whole, followed by zeros (its valid length says where
    its signal ends, for masked pooling). Input padding beyond the valid length is never chosen.
    """
    b, leads, t = x.shape
    out = x.new_zeros(b, leads, samples)
    lengths = valid_length.clamp(max=t).tolist()
    spare = [max(int(n) - samples, 0) for n in lengths]
    starts = (torch.rand(b) * (torch.tensor(spare, dtype=torch.float64) + 1)).floor().long().tolist()
    for i, (start, n) in enumerate(zip(starts, lengths, strict=True)):
        keep = min(int(n), samples)
        out[i, :, :keep] = x[i, :, start : start + keep]
    new_length = torch.tensor([min(int(n), samples) for n in lengths], dtype=valid_length.dtype, device=valid_length.device)
    return out, new_length
