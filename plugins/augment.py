"""Training-time views of a batch: a random crop of each record's valid part and label-preserving
distortions (amplitude, polarity, noise); and of a record: beat masking (`BeatMask`).

Why crops: the models are fully convolutional with global pooling, so a network trained on 30-s
windows scores a 60-s record unchanged; training on shorter windows is cheaper per step, and a new
window every epoch is itself an augmentation. Why polarity: single-lead handheld recordings
(PhysioNet 2017's AliveCor device) are often taken with the electrodes reversed.

Why beat masking: faithfulness is measured by removing whole beats and filling them in-distribution
(`ecgzoo.explain.evidence`, ROAD's noisy linear imputation); a model that never saw such a fill during
training reacts to the fill itself, not only to the evidence it removed. `BeatMask` replaces a few
whole beats of some training records by exactly that fill, drawn anew every epoch.

Every random draw uses torch's global generator, whose state the reference trainer saves with each
checkpoint, so a resumed run sees the same crops (and masks) as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import ecgzoo
from ecgzoo.plugin_api import evidence


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


@dataclass(frozen=True)
class BeatMask:
    """With probability `p`, replace `beats` random whole beats of a record (R-R midpoint to R-R midpoint,
    `evidence.beat_bounds`) by ROAD noisy linear imputation (`evidence.road_fill`); at least one beat
    of the record stays as recorded. Draws: torch's global generator (each beat's fill noise from a numpy
    generator seeded by one torch draw), so the trainer's saved RNG state makes it resumable."""

    p: float
    beats: int
    fs: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0 or self.beats < 1 or self.fs <= 0:
            raise ValueError(f"beat masking needs 0 <= p <= 1, beats >= 1 and fs > 0; got p={self.p}, beats={self.beats}, "
                             f"fs={self.fs}")

    def __call__(self, signal: torch.Tensor, valid_length: int, rpeaks: Callable[[], np.ndarray | None]) -> torch.Tensor:
        """(leads, T) signal and its valid length -> the signal, masked or not. `rpeaks()` gives the record's
        R-peaks (None: none found); it is called only for a record the draw masks."""
        if not bool(torch.rand(()) < self.p):
            return signal
        peaks = rpeaks()
        if peaks is None:
            return signal
        bounds = evidence.beat_bounds(peaks, valid_length)
        segments = len(bounds) - 1
        chosen = torch.randperm(segments)[: min(self.beats, segments - 1)].tolist()
        out = signal.clone()
        for i in chosen:
            a, b = int(bounds[i]), int(bounds[i + 1])
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
            out[:, a:b] = torch.from_numpy(self.fill(signal, valid_length, a, b, rng)).to(out.dtype)
        return out

    def fill(self, signal: torch.Tensor, valid_length: int, a: int, b: int, rng: np.random.Generator) -> np.ndarray:
        """`evidence.road_fill` of segment [a, b) alone, computed on a stretch around it: the segment, its noise
        window (one segment-length either side) and a margin beyond the fill's 50-ms smoothing, cut at the
        valid part's ends, so the line, the residual and its noise level are those of the whole record."""
        span, margin = b - a, round(0.1 * self.fs)
        lo, hi = max(0, a - span - margin), min(valid_length, b + span + margin)
        bounds = np.array([a - lo, b - lo, hi - lo]) if hi > b else np.array([a - lo, b - lo])
        return evidence.road_fill(signal[:, lo:hi].numpy(), bounds, rng, self.fs)[:, a - lo:b - lo]


@dataclass
class BeatMaskedDataset(torch.utils.data.Dataset):
    """Items `(signal, target, valid_length)` of `dataset` with `mask` applied to each signal as it is read.

    R-peaks are found the first time an item is masked (lead 0, the `rpeaks` plugin via `evidence.rpeaks_of`)
    and kept; an item with fewer than 2 detectable beats is never masked. Draws happen in the process that reads
    the items: the trainer's own with num_workers=0 (what resumability needs)."""

    dataset: Any
    mask: BeatMask
    _rpeaks: dict[int, np.ndarray | None] = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> Any:
        return getattr(self.dataset, "labels", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def rpeaks(self, i: int, signal: torch.Tensor, valid_length: int) -> np.ndarray | None:
        if i not in self._rpeaks:
            record = ecgzoo.Record(signal=signal[:, :valid_length].numpy(), fs=self.mask.fs, record_id=f"training item {i}")
            try:
                peaks = evidence.rpeaks_of(record)
                self._rpeaks[i] = peaks if np.unique(peaks).size >= 2 else None
            except ecgzoo.RecordError:
                self._rpeaks[i] = None
        return self._rpeaks[i]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Any, int]:
        signal, target, valid_length = self.dataset[i]
        valid_length = int(valid_length)
        return self.mask(signal, valid_length, lambda: self.rpeaks(i, signal, valid_length)), target, valid_length
