"""`scale`: remove each lead's mean and multiply by one fixed factor; amplitudes stay comparable.

The normaliser of Strodthoff et al.'s PTB-XL benchmark is one global scale fitted on the training
data (not per record): a record's absolute voltages, which voltage criteria of hypertrophy and
low-voltage statements rest on, survive it, whereas a per-record `zscore` divides them away. A
fixed factor (PTB-XL's folds 1-8 have a standard deviation of about 0.22 mV once each lead's mean
is removed, so `factor = 5` gives roughly unit variance) keeps that property and needs no
statistics at prediction time, so any recording in mV goes through exactly what training saw. A
flat lead (a disconnected electrode) stays a flat zero line instead of being an error.
Padding, if already present, stays zero.
"""

from __future__ import annotations

import numpy as np
import pydantic

import ecgzoo


class ScaleConfig(ecgzoo.PluginConfig):
    factor: float = pydantic.Field(5.0, gt=0.0, description="multiply every sample by this after removing each lead's mean")
    center: bool = pydantic.Field(True, description="subtract each lead's mean over the valid part first (baseline offset)")


class Scale(ecgzoo.Preprocessor):
    """(x - mean per lead) * factor on the valid samples; units become 'mV x factor' for mV input."""

    def __init__(self, config: ScaleConfig):
        self.config = config

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        vl = int(record.valid_length)
        valid = record.signal[:, :vl].astype(np.float64)
        if self.config.center:
            valid = valid - valid.mean(axis=1, keepdims=True)
        out = np.zeros(record.signal.shape, dtype=np.float32)
        out[:, :vl] = valid * self.config.factor
        return record.replace(signal=out, units=f"{record.units} x {self.config.factor:g}")


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("scale", Scale, ScaleConfig,
                              summary="per-lead mean removal, then one fixed factor (keeps voltages comparable)")]
