"""The unit of data that flows from datasets through preprocessors to models."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


class RecordError(ValueError):
    """A single record cannot be used; names the record and the problem.

    Datasets and preprocessors raise it so that a pipeline can either stop with a
    clear message (the default) or skip the record and report why (`on_error="skip"`).
    """

    def __init__(self, record_id: str, problem: str):
        self.record_id = record_id
        self.problem = problem
        super().__init__(f"record {record_id!r}: {problem}")


@dataclasses.dataclass(frozen=True)
class Record:
    """One ECG recording.

    signal:       float32 array shaped (leads, samples), in millivolts unless a
                  preprocessor normalised it (see `units`).
    fs:           sampling rate in Hz.
    record_id:    identifier unique within its dataset (e.g. "A00001").
    label:        class name (e.g. "N") of a single-label dataset, a tuple of class names of a
                  multi-label one (e.g. ("AF", "LAD"); may be empty), or None when unknown.
    valid_length: number of leading samples that are signal, not padding.
    units:        physical unit of `signal` ("mV", or "a.u." once normalised).
    meta:         free-form facts preprocessors add (e.g. R-peak positions).
    lead_names:   name of each row of `signal` (e.g. ("I", "II", ..., "V6")), None when the
                  source does not say; see `ecgzoo.core.leads`.
    """

    signal: np.ndarray
    fs: float
    record_id: str
    label: str | tuple[str, ...] | None = None
    valid_length: int | None = None
    units: str = "mV"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    lead_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        sig = self.signal
        if not isinstance(sig, np.ndarray) or sig.ndim != 2:
            shape = getattr(sig, "shape", type(sig).__name__)
            raise RecordError(self.record_id, f"signal must be a 2-D array (leads, samples), got {shape}")
        if sig.shape[1] == 0:
            raise RecordError(self.record_id, "signal has zero samples")
        if not (self.fs > 0):
            raise RecordError(self.record_id, f"sampling rate must be positive, got {self.fs}")
        if self.lead_names is not None:
            names = tuple(str(n) for n in self.lead_names)
            if len(names) != sig.shape[0]:
                raise RecordError(self.record_id, f"{len(names)} lead names {list(names)} for {sig.shape[0]} lead(s) of signal")
            object.__setattr__(self, "lead_names", names)
        if isinstance(self.label, list):
            object.__setattr__(self, "label", tuple(self.label))
        if self.valid_length is None:
            object.__setattr__(self, "valid_length", int(sig.shape[1]))
        elif not 0 < self.valid_length <= sig.shape[1]:
            raise RecordError(
                self.record_id,
                f"valid_length {self.valid_length} outside 1..{sig.shape[1]} samples",
            )

    @property
    def leads(self) -> int:
        return int(self.signal.shape[0])

    @property
    def samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Duration of the valid (unpadded) part in seconds."""
        return float(self.valid_length) / float(self.fs)

    def replace(self, **changes: Any) -> Record:
        """A copy with some fields changed (records are immutable)."""
        return dataclasses.replace(self, **changes)
