"""`pad-crop`: every record to one fixed length (60 s by default), zero-padded, valid length kept.

Models take fixed-size batches; the paper zero-pads every record to 60 s (18,000 samples at
300 Hz). Longer records keep their first `seconds`. `Record.valid_length` tells models (masked
pooling) and explainers where the padding starts.
"""

from __future__ import annotations

import numpy as np
import pydantic

import ecgzoo


class PadCropConfig(ecgzoo.PluginConfig):
    seconds: float = pydantic.Field(60.0, gt=0.0, description="target duration in seconds (at the record's own rate)")
    samples: int | None = pydantic.Field(None, ge=1, description="target length in samples; overrides `seconds` when set")


class PadCrop(ecgzoo.Preprocessor):
    """Zero-pad or crop the valid part of a record to a fixed number of samples."""

    def __init__(self, config: PadCropConfig):
        self.config = config

    def target_samples(self, fs: float) -> int:
        """Output length in samples for a record at `fs` Hz."""
        if self.config.samples is not None:
            return int(self.config.samples)
        return int(round(self.config.seconds * fs))

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        n = self.target_samples(record.fs)
        valid = min(int(record.valid_length), n)
        out = np.zeros((record.leads, n), dtype=np.float32)
        out[:, :valid] = record.signal[:, :valid]
        meta = dict(record.meta)
        if record.valid_length > n:
            meta["cropped_from"] = int(record.valid_length)
            if "rpeaks" in meta:
                meta["rpeaks"] = np.asarray(meta["rpeaks"])[np.asarray(meta["rpeaks"]) < n]
        return record.replace(signal=out, valid_length=valid, meta=meta)


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("pad-crop", PadCrop, PadCropConfig,
                              summary="zero-pad / crop to a fixed length (60 s default), valid length kept")]
