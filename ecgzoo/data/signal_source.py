"""A recording read in stretches (`SignalSource`), whatever its format, and the errors of reading one.

`SignalSource.read(start, stop)` gives (leads, n) float32 in mV; gaps of missing samples (NaN) up to
`BRIDGE_SECONDS` are bridged, a longer gap is `MissingSamples` (that stretch is not analysed), an
unreadable file an `InputError` naming it. The formats that make sources are `ecgzoo.data.inputs`
(one file) and `ecgzoo.data.wfdb_segments` (multi-segment WFDB records).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

#: sampling rates outside this range are refused as misread (ECGs are recorded at 50 Hz to a few kHz)
MIN_FS, MAX_FS = 1.0, 1e6


class InputError(ValueError):
    """An input file that cannot be read as an ECG; names the file and what was expected."""


def first_line(exc: BaseException) -> str:
    """The first line of a library's message, without its exception class (users act on the words)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "no detail given").strip("'\"")


#: how the problem of a stretch with missing samples begins (`MissingSamples.problem`)
NOT_ANALYSED = "not analysed:"


class MissingSamples(InputError):
    """A stretch holding missing samples (WFDB's invalid-sample marker, `~` segments, skew, NaN) that
    are not bridged: it is not analysed, the rest of the recording is. `problem` says so in a few words."""

    def __init__(self, path: Path, start: int, stop: int, missing: int, first: int):
        self.missing, self.first = missing, first
        self.problem = f"{NOT_ANALYSED} {missing} missing sample{'s' if missing != 1 else ''}"
        super().__init__(f"{path}: samples {start}:{stop}: {self.problem} (the first at sample {first})")


@contextlib.contextmanager
def no_warnings(path: Path) -> Iterator[None]:
    """Warnings about the data (UserWarning, RuntimeWarning) while reading `path` become InputErrors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        try:
            yield
        except (UserWarning, RuntimeWarning) as w:  # the message, not the class name: this is an error now
            raise InputError(f"{path}: unreadable data ({(str(w).strip().splitlines() or ['?'])[0]})") from None


def flat_leads(signal: np.ndarray) -> bool:
    """True when every lead of a (leads, n) stretch is constant: a flat line, no ECG to classify."""
    return signal.shape[-1] > 0 and bool((np.ptp(signal, axis=-1) == 0).all())


@dataclasses.dataclass
class SignalSource:
    """A recording to read in stretches: (leads, samples) in mV at `fs` Hz."""

    path: Path
    fs: float
    leads: int
    samples: int
    _read: Callable[[int, int], np.ndarray]
    #: lead names where the format stores them (WFDB; CSV columns named as standard leads), canonical
    #: (`ecgzoo.core.leads.canonical_lead_name`), else empty
    lead_names: tuple[str, ...] = ()
    #: True when the user picked the lead (`--lead`): it stands for the model's lead whatever its name
    lead_chosen: bool = False

    @property
    def name(self) -> str:
        return self.path.stem if self.path.suffix else self.path.name

    @property
    def bridge_limit(self) -> int:
        """The longest gap of missing samples (per lead) that `read` bridges: `BRIDGE_SECONDS` at `fs`."""
        return int(BRIDGE_SECONDS * self.fs + 1e-9)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) as float32 (leads, n); gaps are bridged or refused (`read_bridged`)."""
        return self.read_bridged(start, stop)[0]

    def read_bridged(self, start: int, stop: int) -> tuple[np.ndarray, int]:
        """(samples [start, stop) as float32 (leads, n), how many missing samples in them were bridged).

        Gaps of missing samples (NaN) no longer than `bridge_limit` are filled by linear interpolation
        (`bridge_gaps`; enough context is read around the stretch to see a gap whole); a longer gap
        raises `MissingSamples`, an infinite value an `InputError` naming its sample.
        """
        start, stop = max(0, start), min(self.samples, stop)
        margin = self.bridge_limit + 1 if self.bridge_limit else 0
        a, b = max(0, start - margin), min(self.samples, stop + margin)
        with no_warnings(self.path):
            out = np.array(self._read(a, b), dtype=np.float32)
        if out.shape != (self.leads, b - a):
            raise InputError(f"{self.path}: read {out.shape} for samples {a}:{b}, expected ({self.leads}, {b - a})")
        if np.isinf(out).any():
            raise InputError(f"{self.path}: infinite value at sample {int(np.argwhere(np.isinf(out))[0][1]) + a}")
        bridged = np.isnan(out)
        bridge_gaps(out, self.bridge_limit, open_start=a > 0, open_end=b < self.samples)
        out = out[:, start - a : stop - a]
        bridged = int(np.count_nonzero(bridged[:, start - a : stop - a])) - int(np.count_nonzero(np.isnan(out)))
        if np.isnan(out).any():
            first = int(np.argwhere(np.isnan(out))[:, 1].min()) + start
            raise MissingSamples(self.path, start, stop, int(np.count_nonzero(np.isnan(out))), first)
        return out, bridged


#: gaps of missing samples up to this long (20 ms, a fifth of a QRS complex) are bridged by linear
#: interpolation, too short to hide or make a beat; longer gaps leave their window unclassified
BRIDGE_SECONDS = 0.02


def bridge_gaps(signal: np.ndarray, limit: int, *, open_start: bool = False, open_end: bool = False) -> int:
    """Fill, in place, each run of NaN of at most `limit` samples in each lead of a (leads, n) array by
    linear interpolation between its neighbours (a run at the array's start or end holds the nearest
    value, unless `open_start`/`open_end` say the recording goes on there: such a run may be longer
    than it looks, so it is left). Returns the number of samples filled."""
    filled = 0
    for lead in signal:
        missing = np.isnan(lead)
        if limit < 1 or not missing.any() or missing.all():
            continue
        edges = np.diff(np.concatenate(([0], missing.view(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        short = (ends - starts <= limit) & ~((starts == 0) & open_start) & ~((ends == len(lead)) & open_end)
        fill = np.concatenate([np.arange(s, e) for s, e in zip(starts[short], ends[short], strict=True)] or [np.zeros(0, int)])
        if len(fill):
            known = np.flatnonzero(~missing)
            lead[fill] = np.interp(fill, known, lead[known])
            filled += len(fill)
    return filled


def check_fs(path: Path, stated: float | None, given: float | None) -> float:
    if stated is not None and given is not None and abs(stated - given) > 1e-6 * stated:
        raise InputError(f"{path}: the file says {stated:g} Hz but --fs {given:g} was given; leave out --fs or fix the file")
    fs = stated if stated is not None else given
    if fs is None:
        raise InputError(f"{path}: the sampling rate is not stored in this format; give it with --fs HZ")
    if not MIN_FS <= fs <= MAX_FS:  # also NaN and inf: a rate nothing can be computed from
        raise InputError(f"{path}: sampling rate {fs:g} Hz is not plausible for an ECG (expected {MIN_FS:g} to {MAX_FS:g} Hz)")
    return float(fs)


def to_millivolts(signal: np.ndarray, units: list[str] | None) -> np.ndarray:
    """(leads, n) physical values in mV, from signals in uV, mV or V (other units kept as they are)."""
    units = [str(u or "").lower() for u in (units or [])]
    scale = np.array([1e-3 if u in ("uv", "µv") else 1e3 if u == "v" else 1.0 for u in units] or [1.0])
    return signal * scale[:, None] if len(units) == signal.shape[0] else signal
