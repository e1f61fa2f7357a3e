"""Multi-segment WFDB records (MIMIC-style waveform records) read as one recording, segment by segment.

A master header (`NAME/SEGMENTS LEADS FS SAMPLES` then one `SEGMENT LENGTH` line each) names the
segments that follow one another in time. In a *fixed* layout every segment has the same signals;
in a *variable* layout the first segment (length 0, usually `*_layout`) lists the record's signals
and each segment holds some of them, matched by name. A segment named `~` is a gap: no signal
was recorded for its length.

`multi_segment_source` gives a `SignalSource` of the whole record, in mV where the units say so:
reading a stretch reads only the segments it overlaps (one `wfdb.rdrecord` with `sampfrom`/
`sampto` per segment), so a day-long record is read in bounded memory. Samples the record does
not hold (a `~` segment, a signal a segment lacks) are missing (NaN), like WFDB's invalid-sample
marker, and `SignalSource.read` bridges or reports them. Headers are read once, when the source
is opened; a missing segment header or signal file is an `InputError` naming the segment.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo.core.leads import canonical_leads
from ecgzoo.data.signal_source import InputError, SignalSource, check_fs, first_line, to_millivolts
from ecgzoo.data.wfdb_header import check_truncation, readable_record

GAP = "~"


@dataclasses.dataclass(frozen=True)
class Segment:
    """One segment: its record path (None for a `~` gap), first sample in the record, length, and
    for each of its signals the record's signal it holds and that signal's units."""

    path: Path | None
    start: int
    length: int
    channels: tuple[int, ...] = ()
    units: tuple[str, ...] = ()


def _rdheader(path: Path, what: str, shown: Path) -> Any:
    import wfdb

    if not path.with_name(path.name + ".hea").is_file():
        raise InputError(f"{shown}: {what} header {path.name}.hea named by the master header is missing")
    try:
        with readable_record(path) as readable:
            return wfdb.rdheader(str(readable))
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types for one meaning
        raise InputError(f"{shown}: {what} header {path.name}.hea is not readable ({first_line(exc)})") from None


def _channels(names: list[str], signals: list[str], segment: str, shown: Path) -> tuple[int, ...]:
    """For each of a segment's signal names, the index of the record's signal of that name."""
    free = list(range(len(signals)))
    out = []
    for name in names:
        match = next((i for i in free if signals[i] == name), None)
        if match is None:
            raise InputError(f"{shown}: segment {segment} holds signal {name!r}, which the layout {signals} does not list")
        free.remove(match)
        out.append(match)
    return tuple(out)


def _segments(master: Any, folder: Path, shown: Path) -> tuple[list[str], list[str], list[Segment]]:
    """(signal names, units, segments) of a master header; the layout segment (variable layout) or else
    the first segment (fixed layout) gives the names."""
    names = list(master.seg_name or [])
    lengths = [int(n) for n in master.seg_len or []]
    signals: list[str] | None = None
    units: list[str] = []
    by_name = True  # variable layout: a segment's signals are matched by name; fixed: by position
    segments, start = [], 0
    for name, length in zip(names, lengths, strict=True):
        if name == GAP:
            segments.append(Segment(None, start, length))
        else:
            head = _rdheader(folder / name, "segment", shown)
            seg_names, seg_units = [str(n) for n in head.sig_name or []], [str(u) for u in head.units or []]
            if signals is None:  # the layout segment (length 0), or the first segment of a fixed layout
                signals, units, by_name = seg_names, seg_units, length == 0
            if length > 0:
                _check_segment_files(head, folder, name, shown)
                if not by_name and len(seg_names) != len(signals):
                    raise InputError(f"{shown}: fixed-layout segment {name} has {len(seg_names)} signal(s), the first "
                                     f"segment {len(signals)}")
                channels = _channels(seg_names, signals, name, shown) if by_name else tuple(range(len(signals)))
                segments.append(Segment(folder / name, start, length, channels, tuple(seg_units)))
        start += length
    if signals is None or not signals:
        raise InputError(f"{shown}: multi-segment record without a single segment that names its signals")
    return signals, units, segments


def _check_segment_files(head: Any, folder: Path, segment: str, shown: Path) -> None:
    """Each signal file of a segment exists, is not empty and (fixed-width formats) is not truncated."""
    for file in dict.fromkeys(head.file_name or []):
        path = folder / file
        if not path.is_file() or path.stat().st_size == 0:
            raise InputError(f"{shown}: signal file {file} of segment {segment} is {'empty' if path.is_file() else 'missing'}")
    check_truncation(head, folder, Path(f"{shown}: segment {segment}"))


def _read_segment(segment: Segment, a: int, b: int, shown: Path) -> np.ndarray:
    """Physical values (in mV where the units say so) of samples [a, b) of one segment, (its signals, n)."""
    import wfdb

    assert segment.path is not None
    try:
        with readable_record(segment.path) as readable:
            rec = wfdb.rdrecord(str(readable), sampfrom=a, sampto=b, physical=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{shown}: cannot read samples {a}:{b} of segment {segment.path.name}; its signal file may be "
                         f"damaged ({first_line(exc)})") from None
    return to_millivolts(rec.p_signal.T, list(segment.units))


def multi_segment_source(record_path: Path, shown: Path, fs: float | None) -> SignalSource:
    """A `SignalSource` of the multi-segment record `record_path` (path without `.hea`)."""
    return _open(record_path, shown, fs)[0]


def read_multi_segment(record_path: Path) -> tuple[np.ndarray, float, list[str], list[str]]:
    """(signal (leads, n) float64 with missing samples as NaN, rate, units, signal names) of a whole
    multi-segment record, for datasets that read records whole; `InputError` for a broken one.
    Signals in uV or V are converted to mV, and their units say so."""
    source, units, signals = _open(record_path, record_path, None)
    units = ["mV" if u.lower() in ("uv", "µv", "v") else u for u in units]
    return np.asarray(source._read(0, source.samples), dtype=np.float64), source.fs, units, signals


def _open(record_path: Path, shown: Path, fs: float | None) -> tuple[SignalSource, list[str], list[str]]:
    """(source, the layout's units, its signal names) of a multi-segment record."""
    master = _rdheader(record_path, "master", shown)
    rate = check_fs(shown, float(master.fs), fs)
    signals, units, segments = _segments(master, record_path.parent, shown)
    total = sum(s.length for s in segments)
    if total <= 0:
        raise InputError(f"{shown}: multi-segment record whose segments hold no samples")
    if master.sig_len and int(master.sig_len) != total:
        raise InputError(f"{shown}: the master header declares {int(master.sig_len):,} samples, its segments add up to {total:,}")
    starts = np.array([s.start for s in segments])

    def read(start: int, stop: int) -> np.ndarray:
        out = np.full((len(signals), stop - start), np.nan)
        first = max(0, int(np.searchsorted(starts, start, side="right")) - 1)
        for segment in segments[first:]:
            if segment.start >= stop:
                break
            a, b = max(start, segment.start), min(stop, segment.start + segment.length)
            if segment.path is None or b <= a:
                continue
            values = _read_segment(segment, a - segment.start, b - segment.start, shown)
            out[list(segment.channels), a - start : b - start] = values
        return out

    return SignalSource(shown, rate, len(signals), total, read, canonical_leads(signals)), units, signals
