"""Reading and validating WFDB records (`.hea` + `.mat`/`.dat`), shared by the WFDB dataset plugins.

Signals are read by the `wfdb` package and returned in physical units (mV for the PhysioNet
2017 data: (adu - baseline) / gain). Before reading, the header is checked against the signal
files so that a broken record is a `RecordError` naming the record and the problem instead of a
library traceback or, worse, a silently shortened signal: missing or truncated signal file,
more samples in the file than the header declares, NaNs, zero-length or too-short records, and
a sampling rate other than the one expected.

Headers in the PhysioNet 2017 sample layout (ISO date on the record line) are read through
`ecgzoo.plugin_api.readable_record`, the one header normaliser `ecgzoo predict` uses as well.
Record ids from a RECORDS or labels file are checked to be paths inside the folder before
they are joined into one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path, PurePosixPath

import numpy as np

from ecgzoo import ConfigError, RecordError
from ecgzoo.plugin_api import (
    BRIDGE_SECONDS,
    BYTES_PER_SAMPLE,
    InputError,
    bridge_gaps,
    is_multi_segment,
    normalize_header,
    read_multi_segment,
    readable_record,
)

_FMT = re.compile(r"^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$")


@dataclasses.dataclass(frozen=True)
class Header:
    """What the validation needs from a header: the record line and each signal's file and format."""

    n_sig: int
    fs: float | None
    sig_len: int | None
    files: tuple[tuple[str, str, int], ...]  # (file name, format, byte offset) per signal
    comments: tuple[str, ...]


def parse_header(text: str, record_id: str) -> Header:
    """The fields of a single-segment header needed to check its signal files."""
    lines = [ln.strip() for ln in text.splitlines()]
    comments = tuple(ln.lstrip("#").strip() for ln in lines if ln.startswith("#"))
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body:
        raise RecordError(record_id, "header is empty")
    rec = body[0].split()
    try:
        name_field = rec[0]
        n_sig = int(rec[1]) if len(rec) > 1 else 0
        fs = float(rec[2].split("/")[0].split("(")[0]) if len(rec) > 2 else None
        sig_len = int(rec[3]) if len(rec) > 3 else None
    except (ValueError, IndexError):
        raise RecordError(record_id, f"cannot parse the header's record line {body[0]!r}") from None
    if "/" in name_field:  # a multi-segment record's master header: segment lines, no signal lines
        return Header(n_sig=n_sig, fs=fs, sig_len=sig_len, files=(), comments=comments)
    if len(body) - 1 < n_sig:
        raise RecordError(record_id, f"header declares {n_sig} signal(s) but has {len(body) - 1} signal line(s)")
    files = []
    for line in body[1 : 1 + n_sig]:
        parts = line.split()
        m = _FMT.match(parts[1]) if len(parts) > 1 else None
        if m is None:
            raise RecordError(record_id, f"cannot parse the header's signal line {line!r}")
        files.append((parts[0], m.group(1), int(m.group(4) or 0)))
    return Header(n_sig=n_sig, fs=fs, sig_len=sig_len, files=tuple(files), comments=tuple(comments))


def read_header(base: Path, record_id: str) -> tuple[str, Header]:
    """(normalised header text, parsed header) of record `base` (path without extension)."""
    hea = base.with_name(base.name + ".hea")
    if not hea.is_file():
        raise RecordError(record_id, f"header file {hea} is missing")
    text = normalize_header(hea.read_text(encoding="ascii", errors="replace"))
    return text, parse_header(text, record_id)


def _check_files(base: Path, header: Header, record_id: str) -> None:
    """Each signal file exists and holds exactly the samples the header declares (known formats)."""
    by_file: dict[str, list[tuple[str, int]]] = {}
    for name, fmt, offset in header.files:
        by_file.setdefault(name, []).append((fmt, offset))
    for name, specs in by_file.items():
        path = base.parent / name
        if not path.is_file():
            raise RecordError(record_id, f"signal file {path} is missing (the header names it)")
        fmts = {f for f, _ in specs}
        if header.sig_len is None or len(fmts) != 1 or next(iter(fmts)) not in BYTES_PER_SAMPLE:
            continue
        offset = specs[0][1]
        need = offset + int(np.ceil(BYTES_PER_SAMPLE[specs[0][0]] * header.sig_len * len(specs)))
        have = path.stat().st_size
        held = int((have - offset) / (BYTES_PER_SAMPLE[specs[0][0]] * len(specs))) if have > offset else 0
        if have < need:
            raise RecordError(record_id, f"signal file {path.name} is truncated: header declares {header.sig_len} samples, "
                                         f"the file holds {held} ({have} of {need} bytes)")
        if have > need and path.suffix == ".mat":
            raise RecordError(record_id, f"header/signal mismatch: header declares {header.sig_len} samples, "
                                         f"{path.name} holds {held}")


def _rdrecord(base: Path):
    import wfdb

    with readable_record(base) as path:
        return wfdb.rdrecord(str(path), physical=True, return_res=64)


@dataclasses.dataclass(frozen=True)
class WfdbSignal:
    signal: np.ndarray  # (leads, samples) float32 in physical units
    fs: float
    units: list[str]
    sig_names: list[str]
    comments: tuple[str, ...]

    @property
    def lead_names(self) -> tuple[str, ...] | None:
        """The header's signal names as canonical lead names ('AVR' -> 'aVR'); None unless every signal is named."""
        from ecgzoo.plugin_api import canonical_leads

        return canonical_leads(self.sig_names) if len(self.sig_names) == self.signal.shape[0] else None


def read_record(base: Path, record_id: str, expected_fs: float | None = None, min_seconds: float = 1.0) -> WfdbSignal:
    """Read and validate record `base` (path without extension); every problem is a RecordError."""
    hea = base.with_name(base.name + ".hea")
    if not hea.is_file():
        raise RecordError(record_id, f"header file {hea} is missing")
    text = normalize_header(hea.read_text(encoding="ascii", errors="replace"))
    if is_multi_segment(text):
        return _read_multi_segment(base, record_id, expected_fs, min_seconds)
    header = parse_header(text, record_id)
    if header.n_sig == 0:
        raise RecordError(record_id, "header declares no signals")
    if header.sig_len == 0:
        raise RecordError(record_id, "zero-length record (header declares 0 samples)")
    if expected_fs is not None and header.fs is not None and abs(header.fs - expected_fs) > 1e-6:
        raise RecordError(record_id, f"sampling rate {header.fs:g} Hz, expected {expected_fs:g} Hz")
    _check_files(base, header, record_id)
    try:
        with contextlib.redirect_stdout(None):
            rec = _rdrecord(base)
    except RecordError:
        raise
    except Exception as exc:  # wfdb raises many kinds; the user needs the record and the reason
        raise RecordError(record_id, f"cannot read WFDB record {base}: {_first_line(exc)}") from exc
    sig = rec.p_signal
    if sig is None or sig.size == 0:
        raise RecordError(record_id, "zero-length record (no samples)")
    sig = np.asarray(sig, dtype=np.float64).T
    if header.sig_len is not None and sig.shape[1] != header.sig_len:
        raise RecordError(record_id, f"header/signal mismatch: header declares {header.sig_len} samples, read {sig.shape[1]}")
    return _checked(sig, float(rec.fs), record_id, min_seconds, list(rec.units or []), list(rec.sig_name or []), header.comments)


def _first_line(exc: BaseException) -> str:
    """A library's message without its exception class: the words a user acts on."""
    return (str(exc).strip().splitlines() or ["no detail given"])[0]


def _checked(sig: np.ndarray, fs: float, record_id: str, min_seconds: float, units: list[str], names: list[str],
             comments: tuple[str, ...]) -> WfdbSignal:
    """A read signal with its gaps of missing samples (NaN) up to BRIDGE_SECONDS bridged, refused when
    longer gaps remain or it is shorter than `min_seconds`."""
    bridge_gaps(sig, int(BRIDGE_SECONDS * fs + 1e-9))
    bad = int(np.count_nonzero(~np.isfinite(sig)))
    if bad:
        first = int(np.argwhere(~np.isfinite(sig))[:, 1].min())
        raise RecordError(record_id, f"{bad} missing (NaN/invalid) sample(s) in gaps longer than {BRIDGE_SECONDS * 1000:g} ms, "
                                     f"the first at sample {first}")
    if sig.shape[1] < min_seconds * fs:
        raise RecordError(record_id, f"record too short: {sig.shape[1] / fs:.3f} s (< {min_seconds:g} s)")
    return WfdbSignal(signal=sig.astype(np.float32), fs=fs, units=units, sig_names=names, comments=comments)


def _read_multi_segment(base: Path, record_id: str, expected_fs: float | None, min_seconds: float) -> WfdbSignal:
    """A multi-segment record read whole (its `~` segments and absent signals are missing samples)."""
    try:
        sig, fs, units, names = read_multi_segment(base)
    except InputError as exc:
        raise RecordError(record_id, str(exc).removeprefix(f"{base}: ")) from None
    if expected_fs is not None and abs(fs - expected_fs) > 1e-6:
        raise RecordError(record_id, f"sampling rate {fs:g} Hz, expected {expected_fs:g} Hz")
    comments = tuple(ln.lstrip("#").strip() for ln in base.with_name(base.name + ".hea").read_text(
        encoding="ascii", errors="replace").splitlines() if ln.startswith("#"))
    return _checked(sig, fs, record_id, min_seconds, units, names, comments)


def check_record_id(record_id: str, where: str) -> str:
    """`record_id` when it names a path inside the data folder; a ConfigError naming `where` otherwise.

    Ids come from RECORDS and label files and are joined into paths: an absolute id or one
    with `..` would read (and report on) files outside the data set.
    """
    parts = PurePosixPath(record_id.replace("\\", "/")).parts
    if not parts or record_id.startswith(("/", "\\")) or ".." in parts or ":" in parts[0] or "\0" in record_id:
        raise ConfigError(f"{where}: record id {record_id!r} is not a path inside the data folder "
                         "(expected a name such as A00001 or sub/A00001, without .. or a leading /)")
    return record_id


def read_labels_csv(path: Path) -> dict[str, str]:
    """`record,label` lines (no header row needed; a `record,label` header row is skipped)."""
    import csv

    labels: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not row[0].strip() or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{lineno}: expected 'record,label', got {','.join(row)!r}")
            rid, label = row[0].strip(), row[1].strip()
            if lineno == 1 and rid.lower() in ("record", "record_id", "id", "name"):
                continue
            labels[check_record_id(rid, f"{path}:{lineno}")] = label
    return labels


def read_multilabel_csv(path: Path) -> dict[str, list[str]]:
    """{record: its labels} from `record,label[,label...]` lines, or from a header row
    `record,<class>,...` with one 0/1 column per class (a column is 1 where the record has it)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and r[0].strip() and not r[0].startswith("#")]
    if not rows:
        return {}
    head = [c.strip() for c in rows[0]]
    body = rows[1:] if head[0].lower() in ("record", "record_id", "id", "name") else rows
    one_hot = body is not rows and len(head) > 2 and all(
        len(r) == len(head) and all(v.strip() in ("0", "1") for v in r[1:]) for r in body)
    labels: dict[str, list[str]] = {}
    for lineno, row in enumerate(body, start=2 if body is not rows else 1):
        if one_hot:
            labels[row[0].strip()] = [c for c, v in zip(head[1:], row[1:], strict=True) if v.strip() == "1"]
        elif len(row) < 2:
            raise ValueError(f"{path}:{lineno}: expected 'record,label[,label...]', got {','.join(row)!r}")
        else:
            labels[row[0].strip()] = [v for v in row[1:] if v.strip()]
    return labels


def wfdb_record_ids(folder: Path, recursive: bool = False) -> list[str]:
    """Records of a folder: those in its RECORDS file when present, else every `.hea` (sorted)."""
    listing = folder / "RECORDS"
    if listing.is_file() and not recursive:
        lines = listing.read_text().splitlines()
        return [check_record_id(ln.strip(), f"{listing}:{i}") for i, ln in enumerate(lines, start=1) if ln.strip()]
    pattern = "**/*.hea" if recursive else "*.hea"
    headers = sorted(folder.glob(pattern))
    parts = {p.parent / name for p in headers for name in segment_names(p)}  # segments, not records of their own
    return [str(p.relative_to(folder).with_suffix("")) for p in headers if p.with_suffix("") not in parts]


def segment_names(hea: Path) -> list[str]:
    """The segments (layout included, `~` gaps left out) a multi-segment master header names; [] for other headers."""
    text = hea.read_text(encoding="ascii", errors="replace")
    if not is_multi_segment(text):
        return []
    body = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [line[0] for line in body[1:] if line and line[0] != "~"]


class LabelledWfdbFolder:
    """Mixin for datasets of labelled WFDB records in one folder: ids, labels and validated reads.

    Subclasses set `folder`, `_labels` ({record id: label}, in order), `_missing` (why an id is
    unknown) and `config` (with `fs` and `min_seconds`).
    """

    folder: Path
    _labels: dict[str, str] | dict[str, tuple[str, ...]]
    _missing: str = "no such record"

    def record_ids(self) -> list[str]:
        return list(self._labels)

    def label(self, record_id: str) -> str | tuple[str, ...]:
        try:
            return self._labels[record_id]
        except KeyError:
            raise RecordError(record_id, self._missing) from None

    def _read(self, record_id: str) -> tuple[str | tuple[str, ...], WfdbSignal]:
        label = self.label(record_id)
        config = self.config  # type: ignore[attr-defined]
        return label, read_record(self.folder / record_id, record_id, config.fs, config.min_seconds)
