"""`zscore`: per-lead zero mean, unit variance over the valid part; a simple normaliser.

An alternative to `rpeak-normalize` that needs no beat detection (works on any signal).
Padding, if already present, stays zero.
"""

from __future__ import annotations

import numpy as np
import pydantic

import ecgzoo


class ZScoreConfig(ecgzoo.PluginConfig):
    min_std: float = pydantic.Field(
        1e-6, gt=0.0, description="a lead whose standard deviation is below this (flat line) is an error, not divided by ~0"
    )


class ZScore(ecgzoo.Preprocessor):
    """(x - mean) / std per lead, computed on the valid samples only."""

    def __init__(self, config: ZScoreConfig):
        self.config = config

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        vl = int(record.valid_length)
        valid = record.signal[:, :vl].astype(np.float64)
        mean = valid.mean(axis=1, keepdims=True)
        std = valid.std(axis=1, keepdims=True)
        flat = np.flatnonzero(std[:, 0] < self.config.min_std)
        if flat.size:
            raise ecgzoo.RecordError(
                record.record_id, f"zscore: lead(s) {flat.tolist()} are flat (std < {self.config.min_std:g}), cannot normalise"
            )
        out = np.zeros(record.signal.shape, dtype=np.float32)
        out[:, :vl] = (valid - mean) / std
        return record.replace(signal=out, units="a.u.")


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("zscore", ZScore, ZScoreConfig, summary="per-lead zero mean / unit variance (valid part)")]
