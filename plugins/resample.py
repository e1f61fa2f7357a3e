"""`resample`: to a target sampling rate by polyphase filtering (scipy.signal.resample_poly).

Models are trained at one rate; data recorded at another (250 Hz, 500 Hz, ...) is brought
to it here. The valid length and any stored R-peak positions are rescaled with the signal.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pydantic
from scipy import signal as sps

import ecgzoo


class ResampleConfig(ecgzoo.PluginConfig):
    fs: float = pydantic.Field(300.0, gt=0.0, description="target sampling rate in Hz")


class Resample(ecgzoo.Preprocessor):
    """Anti-aliased rational-factor resampling of the valid part; padding is rebuilt as zeros."""

    def __init__(self, config: ResampleConfig):
        self.config = config

    def output_fs(self, fs: float) -> float:
        return float(self.config.fs)

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        if abs(record.fs - self.config.fs) <= 1e-9 * self.config.fs:
            return record.replace(fs=float(self.config.fs))
        ratio = Fraction(self.config.fs / record.fs).limit_denominator(1000)
        up, down = ratio.numerator, ratio.denominator
        vl = int(record.valid_length)
        y = sps.resample_poly(record.signal[:, :vl].astype(np.float64), up, down, axis=1)
        new_vl = max(1, y.shape[1])
        new_total = max(new_vl, int(round(record.samples * up / down)))
        out = np.zeros((record.leads, new_total), dtype=np.float32)
        out[:, :new_vl] = y
        meta = dict(record.meta)
        if "rpeaks" in meta:
            meta["rpeaks"] = np.minimum(np.round(np.asarray(meta["rpeaks"]) * up / down).astype(np.int64), new_vl - 1)
        return record.replace(signal=out, fs=float(self.config.fs), valid_length=new_vl, meta=meta)


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("resample", Resample, ResampleConfig, summary="resample to a target rate (polyphase, anti-aliased)")]
