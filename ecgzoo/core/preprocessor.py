"""Preprocessor interface: maps one record to one record, and says what it needs."""

from __future__ import annotations

import abc
import dataclasses

from ecgzoo.core.record import Record, RecordError


@dataclasses.dataclass(frozen=True)
class Requirements:
    """What a preprocessor needs from its input record; checked before it runs.

    fs:          the exact sampling rate it was designed for (None: any rate).
    min_seconds: shortest valid duration it can handle.
    """

    fs: float | None = None
    min_seconds: float = 0.0

    def check(self, record: Record, who: str) -> None:
        if self.fs is not None and abs(record.fs - self.fs) > 1e-6:
            raise RecordError(
                record.record_id,
                f"{who} needs {self.fs:g} Hz input, record is at {record.fs:g} Hz "
                f"(add the 'resample' preprocessor before it)",
            )
        if record.duration_s < self.min_seconds:
            raise RecordError(
                record.record_id,
                f"{who} needs at least {self.min_seconds:g} s of signal, record has {record.duration_s:.3f} s",
            )


class Preprocessor(abc.ABC):
    """A step of the preprocessing pipeline.

    The framework checks `requires` against each record, then calls the
    preprocessor. A record that cannot be processed (e.g. no detectable beats)
    raises `RecordError`; it never returns silently altered garbage.
    """

    requires: Requirements = Requirements()

    def output_fs(self, fs: float) -> float:
        """Sampling rate of the output for an input at `fs` (resamplers override)."""
        return fs

    @abc.abstractmethod
    def __call__(self, record: Record) -> Record:
        """The processed record (a new object; records are immutable)."""
