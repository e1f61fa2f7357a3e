"""ECG recordings given on the command line, read window by window.

`open_input(path, fs=None)` returns a `SignalSource`: its sampling rate, leads and length, and
`read(start, stop)` for one stretch, so a 24-hour Holter is classified in bounded memory.

Formats:
  * WFDB record (`rec.hea` + signal file, or the record path without suffix): rate and gain
    from the header; read in stretches (`wfdb.rdrecord(sampfrom, sampto)`). A multi-segment
    record (master header) is read segment by segment (`ecgzoo.data.wfdb_segments`).
  * `.mat` with a `.hea` next to it (PhysioNet 2017 layout): read as the WFDB record.
  * `.mat` alone: the variable `val` (or the only numeric array), in mV unless `--gain` says
    adu per mV; the rate must be given (`--fs`).
  * `.npy`: memory-mapped, never loaded whole; (samples,), (leads, samples) or (samples, leads)
    when the second axis is the short one; values in mV; rate from `--fs`.
  * CSV: one column per lead, optional header row, optional first column `time` (s) from which
    the rate is read; otherwise the rate must be given. Values in mV. Read whole: give day-long
    recordings as .npy or WFDB, which are read window by window.

A rate that the file states and `--fs` contradicts is an error; a rate that is neither stated
nor given is an error. Nothing is guessed.

Missing samples (NaN: WFDB's invalid-sample value, `~` segments, skew) are read as gaps, not errors:
`SignalSource.read` bridges a gap of at most `BRIDGE_SECONDS` (20 ms) per lead by linear
interpolation (`read_bridged` says how many samples it filled) and raises `MissingSamples` for a
stretch that still holds any, so that `predict` leaves that window out and goes on. An infinite
value is an error naming its sample.

Empty and degenerate inputs are errors naming the file, never a library traceback or a
warning: an empty file of any format, a CSV with a header row only, an array with no samples
or no leads, a header whose signal file is missing or empty, complex or non-numeric values.
Warnings that numpy, scipy or wfdb raise while reading a file (they mean the data is odd) are
turned into the same one-line `InputError`. `flat_leads` finds stretches with no signal at all
(every lead constant), which `predict` and `explain` refuse to classify.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo.core.leads import STANDARD_12, LeadMismatchError, canonical_lead_name, canonical_leads, lead_order
from ecgzoo.data.signal_source import InputError, SignalSource, check_fs, first_line, no_warnings, to_millivolts
from ecgzoo.data.wfdb_header import check_truncation, is_multi_segment, readable_record, samples_in_file
from ecgzoo.data.wfdb_segments import multi_segment_source


def _length_from_files(header: Any, record_path: Path) -> int:
    """Samples per signal of a header without a count (valid WFDB): the signal file's size divided
    by the bytes per sample, or the length of one full read for other formats."""
    import wfdb

    files = list(header.file_name or [])
    n = None
    if files and len(set(files)) == 1 and (record_path.parent / files[0]).is_file():
        offset = int((header.byte_offset or [0])[0] or 0)
        n = samples_in_file(record_path.parent / files[0], [str(f) for f in header.fmt], offset)
    return int(n if n is not None else wfdb.rdrecord(str(record_path), physical=True).sig_len)


#: no WFDB storage format (FLAC included) packs more samples into a byte than this: a header that
#: declares more than its files can hold is misread, not a day-long recording
_MAX_SAMPLES_PER_BYTE = 64


def _check_signal_files(header: Any, record_path: Path, shown: Path) -> int:
    """Bytes held by the header's signal files, after checking that each exists and is not empty."""
    held = 0
    for name in dict.fromkeys(header.file_name or []):
        signal_file = record_path.parent / name
        if not signal_file.is_file():
            raise InputError(f"{shown}: signal file {signal_file.name} named by the header is missing")
        if signal_file.stat().st_size == 0:
            raise InputError(f"{shown}: signal file {signal_file.name} named by the header is empty")
        held += signal_file.stat().st_size
    return held


#: the FLAC-compressed WFDB formats: a file's size does not bound its samples (a flat line packs tight)
FLAC_FORMATS = ("508", "516", "524")


def _check_wfdb_count(header: Any, held: int, shown: Path) -> int:
    """The header's sample count, refusing none and more than its uncompressed signal files can hold."""
    n, n_sig = int(header.sig_len or 0), int(header.n_sig or 0)
    if n <= 0 or n_sig <= 0:
        raise InputError(f"{shown}: WFDB header declares no {'samples' if n_sig else 'signals'}")
    if not set(map(str, header.fmt or [])) & set(FLAC_FORMATS) and n * n_sig > _MAX_SAMPLES_PER_BYTE * held:
        raise InputError(f"{shown}: the header declares {n:,} samples x {n_sig} signal(s), more than its signal "
                         f"file(s) of {held:,} bytes can hold")
    return n


def _header_text(hea: Path, shown: Path) -> str:
    """The header's text, refusing a header with no record line (empty, or comments only)."""
    text = hea.read_text(encoding="ascii", errors="replace")
    if not any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
        size = hea.stat().st_size
        raise InputError(f"{shown}: WFDB header {hea.name} is empty ({'0 bytes' if not size else 'comments only'}): "
                         "expected a record line such as 'NAME 1 300 9000'")
    return text


def _wfdb_source(record_path: Path, shown: Path, fs: float | None) -> SignalSource:
    import wfdb

    text = _header_text(record_path.with_name(record_path.name + ".hea"), shown)
    if is_multi_segment(text):
        return multi_segment_source(record_path, shown, fs)
    stack = contextlib.ExitStack()  # the normalised header's folder lives as long as this reader
    try:
        readable = stack.enter_context(readable_record(record_path))
        header = wfdb.rdheader(str(readable))
        rate = check_fs(shown, float(header.fs), fs)
        if header.sig_len == 0 and set(header.file_name or []) <= {"~"}:
            raise InputError(f"{shown}: the layout segment of a multi-segment record (no samples): give the record's "
                             "master header, the .hea that lists the segments")
        held = _check_signal_files(header, record_path, shown)
        if header.sig_len is None:  # valid WFDB: the count comes from the signal file
            readable = stack.enter_context(readable_record(record_path, samples=_length_from_files(header, readable)))
            header = wfdb.rdheader(str(readable))
        n = _check_wfdb_count(header, held, shown)
        check_truncation(header, record_path.parent, shown)
    except InputError:
        stack.close()
        raise
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types for one meaning
        stack.close()
        raise InputError(f"{shown}: not a readable WFDB header ({first_line(exc)})") from None

    def read(start: int, stop: int) -> np.ndarray:
        _ = stack
        try:
            rec = wfdb.rdrecord(str(readable), sampfrom=start, sampto=stop, physical=True)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{shown}: cannot read samples {start}:{stop}; the signal file may be damaged "
                             f"({first_line(exc)})") from None
        return to_millivolts(rec.p_signal.T, rec.units)

    names = canonical_leads(header.sig_name) if header.sig_name and len(header.sig_name) == header.n_sig else ()
    return SignalSource(shown, rate, int(header.n_sig), n, read, names)


def _array_source(path: Path, arr: np.ndarray, fs: float, layout: str = "auto") -> SignalSource:
    if arr.size == 0:
        raise InputError(f"{path}: the array is empty (shape {arr.shape}): no samples or no leads")
    if arr.ndim == 1:
        return SignalSource(path, fs, 1, arr.shape[0], lambda a, b: arr[None, a:b])
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 1-D signal or a 2-D (leads, samples) array, got shape {arr.shape}")
    if layout == "samples-first" or (layout == "auto" and arr.shape[1] < arr.shape[0]):
        return SignalSource(path, fs, arr.shape[1], arr.shape[0], lambda a, b: arr[a:b].T)
    return SignalSource(path, fs, arr.shape[0], arr.shape[1], lambda a, b: arr[:, a:b])


def _npy_source(path: Path, fs: float | None) -> SignalSource:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes)")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise InputError(f"{path}: not a plain numeric .npy array ({first_line(exc)})") from None
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{path}: expected real numbers, got dtype {arr.dtype}")
    return _array_source(path, arr, check_fs(path, None, fs))


def _mat_source(path: Path, fs: float | None, gain: float | None) -> SignalSource:
    if path.with_suffix(".hea").is_file():
        return _wfdb_source(path.with_suffix(""), path, fs)
    import scipy.io

    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes)")
    try:
        with no_warnings(path):
            data = scipy.io.loadmat(path)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: not a readable MATLAB file ({first_line(exc)})") from None
    arrays = {k: v for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)
              and np.issubdtype(v.dtype, np.number) and not np.issubdtype(v.dtype, np.complexfloating)}
    if "val" in arrays:
        arr = arrays["val"]
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    else:
        raise InputError(f"{path}: expected a variable 'val' or a single numeric array, found {sorted(arrays) or 'none'}")
    if "fs" in arrays and arrays["fs"].size == 1 and "val" in arrays:
        fs = check_fs(path, float(arrays["fs"].item()), fs)
    with no_warnings(path):
        arr = np.asarray(arr, dtype=np.float32).squeeze()
    if gain:
        arr = arr / float(gain)
    return _array_source(path, arr, check_fs(path, None, fs))


def _csv_source(path: Path, fs: float | None) -> SignalSource:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes)")
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text CSV file (not UTF-8: {exc.reason} at byte {exc.start})") from None
    cells = [c.strip().strip('"').lower() for c in first.replace(";", ",").split(",")]
    try:
        [float(c) for c in cells]
        header = None
    except ValueError:
        header = cells
    delimiter = ";" if ";" in first else ","
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            arr = np.loadtxt(path, delimiter=delimiter, skiprows=1 if header else 0, dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: expected numeric CSV columns (one per lead, optional 'time' column first): "
                         f"{first_line(exc)}") from None
    if arr.shape[0] == 0:
        raise InputError(f"{path}: no data rows{' (a header row only)' if header else ''}: the recording is empty")
    stated = None
    if header and header[0] in ("time", "t", "time_s", "seconds"):
        t = arr[:, 0]
        arr = arr[:, 1:]
        with np.errstate(all="ignore"):  # absurd times give inf/NaN steps, refused just below
            steps = np.diff(t)
            uneven = len(steps) == 0 or not np.all(steps > 0) or not np.ptp(steps) <= 1e-3 * steps.mean()
        if uneven:
            raise InputError(f"{path}: the 'time' column is not evenly spaced and increasing; cannot read a sampling rate from it")
        stated = round(1.0 / float(steps.mean()), 6)
    if arr.shape[1] == 0:
        raise InputError(f"{path}: no signal columns")
    if arr.shape[0] < arr.shape[1]:  # fewer samples than leads: the rows are leads, or one lead is one row
        raise InputError(f"{path}: {arr.shape[0]:,} row(s) of {arr.shape[1]:,} values cannot be samples x leads "
                         f"({arr.shape[1]:,} leads of {arr.shape[0]:,} sample(s)); a CSV holds one row per sample and one "
                         "column per lead: write each lead as a column (for one lead, one value per line)")
    with no_warnings(path):  # values beyond float32 (overflow) are an error naming the file
        arr = arr.astype(np.float32)
    source = _array_source(path, arr, check_fs(path, stated, fs), layout="samples-first")
    columns = header[1:] if stated is not None else header
    if columns and len(columns) == source.leads and set(canonical_leads(columns)) <= set(STANDARD_12):
        source.lead_names = canonical_leads(columns)  # only standard lead names: other headers are not lead names
    return source


def select_lead(source: SignalSource, lead: str) -> SignalSource:
    """The one lead `lead` (a lead name the file states, or a 0-based index) of a multi-lead recording."""
    names = list(source.lead_names)
    if canonical_lead_name(lead) in names:
        index = names.index(canonical_lead_name(lead))
    elif lead.lstrip("-").isdigit() and 0 <= int(lead) < source.leads:
        index = int(lead)
    else:
        known = f"names {names} or " if names else ""
        raise InputError(f"{source.path}: no lead {lead!r}; choose one of {known}indices 0-{source.leads - 1}")
    return _with_rows(source, [index], (names[index] if names else str(index),), lead_chosen=True)


def _with_rows(source: SignalSource, rows: list[int], names: tuple[str, ...], lead_chosen: bool = False) -> SignalSource:
    """`source` reading only `rows`, in that order, named `names`."""
    read, index = source._read, np.asarray(rows)
    return dataclasses.replace(source, leads=len(rows), _read=lambda a, b: np.asarray(read(a, b))[index], lead_names=names,
                               lead_chosen=lead_chosen)


def match_leads(source: SignalSource, expected: tuple[str, ...], wanted_by: str) -> tuple[SignalSource, str | None]:
    """`source` with the leads `expected` names, picked by name in that order (`ecgzoo.core.leads.lead_order`),
    and a note saying what moved or was left out (None when the file already has exactly those leads in order).

    A lead the file lacks is an InputError naming it and listing the file's leads.
    """
    try:
        rows = lead_order(expected, source.lead_names, str(source.path), wanted_by)
    except LeadMismatchError as exc:
        raise InputError(str(exc)) from None
    if rows == list(range(source.leads)):
        return source, None
    unused = [n for i, n in enumerate(source.lead_names) if i not in rows]
    note = f"leads matched by name (the file's order: {', '.join(source.lead_names)})"
    note += f"; not used: {', '.join(unused)}" if unused else ""
    return _with_rows(source, rows, canonical_leads(expected)), note


def open_input(path: str | Path, fs: float | None = None, gain: float | None = None) -> SignalSource:
    """A `SignalSource` for one input path (format from its suffix; see the module doc)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hea" or (not suffix and path.with_suffix(".hea").is_file()):
        if not path.with_suffix(".hea").is_file():
            raise InputError(f"{path}: WFDB header not found")
        return _wfdb_source(path.with_suffix(""), path, fs)
    if path.is_dir():
        headers = sorted(path.glob("*.hea"))[:200]
        masters = [p for p in headers if is_multi_segment(p.read_text(encoding="ascii", errors="replace"))]
        inside = (masters or headers)[:3]  # a multi-segment record's master header, not its segments
        hint = f" such as {', '.join(map(str, inside))}" if inside else ""
        raise InputError(f"{path}: is a folder, expected a recording file (a WFDB record .hea, .mat, .npy or .csv); "
                         f"give the recordings in it{hint}")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if suffix == ".npy":
        return _npy_source(path, fs)
    if suffix == ".mat":
        return _mat_source(path, fs, gain)
    if suffix in (".csv", ".txt"):
        return _csv_source(path, fs)
    if suffix == ".dat" and path.with_suffix(".hea").is_file():
        return _wfdb_source(path.with_suffix(""), path, fs)
    raise InputError(f"{path}: unknown input format {suffix or '(no suffix)'}; expected a WFDB record (.hea), .mat, .npy or .csv")
