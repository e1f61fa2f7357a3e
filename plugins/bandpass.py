"""`bandpass`: zero-phase FIR band-pass, 3-45 Hz by default (the paper's pre-filter).

A linear-phase (symmetric) FIR kernel applied centred on each sample has zero phase: waves
stay where they are, which matters for R-peak positions and for explanations aligned in time.
The kernel is applied once (not forward-backward), so the pass-band gain is the designed one.
Edges are handled by odd reflection of the signal, as `scipy.signal.filtfilt` does.
"""

from __future__ import annotations

import numpy as np
import pydantic
from scipy import signal as sps

import ecgzoo


class BandpassConfig(ecgzoo.PluginConfig):
    low_hz: float = pydantic.Field(3.0, gt=0.0, description="lower cut-off frequency in Hz")
    high_hz: float = pydantic.Field(45.0, gt=0.0, description="upper cut-off frequency in Hz (below half the sampling rate)")
    taps_seconds: float = pydantic.Field(
        1.0, gt=0.0, le=10.0, description="FIR length in seconds (taps = this x fs, made odd); longer = sharper edges"
    )

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> BandpassConfig:
        if self.low_hz >= self.high_hz:
            raise ValueError(f"low_hz ({self.low_hz}) must be below high_hz ({self.high_hz})")
        return self


class Bandpass(ecgzoo.Preprocessor):
    """FIR band-pass (Hamming window), zero phase, on the valid part of every lead."""

    def __init__(self, config: BandpassConfig):
        self.config = config
        self._kernels: dict[float, np.ndarray] = {}

    def kernel(self, fs: float) -> np.ndarray:
        """The FIR taps for a record at `fs` Hz (cached per rate)."""
        if fs not in self._kernels:
            if self.config.high_hz >= fs / 2:
                raise ValueError(f"bandpass: high_hz {self.config.high_hz:g} must be below half the sampling rate ({fs / 2:g} Hz)")
            taps = int(round(self.config.taps_seconds * fs)) | 1
            self._kernels[fs] = sps.firwin(taps, [self.config.low_hz, self.config.high_hz], pass_zero=False, fs=fs)
        return self._kernels[fs]

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        try:
            taps = self.kernel(record.fs)
        except ValueError as exc:
            raise ecgzoo.RecordError(record.record_id, str(exc)) from None
        vl, half = int(record.valid_length), taps.size // 2
        x = record.signal[:, :vl].astype(np.float64)
        pad = min(half, vl - 1)
        # odd reflection about the end samples keeps the edges continuous (as filtfilt does)
        left = 2 * x[:, :1] - x[:, pad:0:-1]
        right = 2 * x[:, -1:] - x[:, -2 : -pad - 2 : -1]
        ext = np.concatenate([left, x, right], axis=1)
        y = sps.oaconvolve(ext, taps[None, :], mode="same", axes=1)[:, pad : pad + vl]
        out = np.zeros(record.signal.shape, dtype=np.float32)
        out[:, :vl] = y
        return record.replace(signal=out)


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("bandpass", Bandpass, BandpassConfig, summary="zero-phase FIR band-pass, 3-45 Hz (the paper's)")]
