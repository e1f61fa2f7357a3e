"""WFDB headers as distributed in the wild, made readable by the `wfdb` package.

The PhysioNet 2017 *sample* set writes the record line's base date/time as `2014-05-08
05:05:15` (ISO date first), which the WFDB format (and the `wfdb` parser) does not accept
(`05:05:15 8/05/2014`, time first). `normalize_header` rewrites that layout; `readable_record`
gives a path `wfdb` can read: the record itself when its header needs no change, else a private
temporary folder holding the rewritten header next to links to the untouched signal files.
Both the dataset plugins and `ecgzoo predict`/`explain` inputs go through here.

A header may leave out the sample count (the WFDB format allows it: the length follows from the
signal file's size); `samples_in_file` computes it for the fixed-width storage formats.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo.data.signal_source import InputError

_ISO_DATETIME = re.compile(r"\s(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?)\s*$")
#: bytes per sample of the WFDB storage formats whose size follows from the sample count
BYTES_PER_SAMPLE = {"8": 1.0, "16": 2.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5, "24": 3.0, "32": 4.0}


def normalize_header(text: str) -> str:
    """The header text with an ISO `YYYY-MM-DD hh:mm:ss` record-line date rewritten as WFDB's `hh:mm:ss DD/MM/YYYY`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            m = _ISO_DATETIME.search(line)
            if m:
                year, month, day, time = m.groups()
                lines[i] = line[: m.start()] + f" {time} {day}/{month}/{year}"
            break
    return "\n".join(lines) + "\n"


def is_multi_segment(text: str) -> bool:
    """True for a multi-segment (master) header: its record line names the record as `NAME/SEGMENTS`."""
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return "/" in line.split()[0]
    return False


def signal_files(text: str) -> list[str]:
    """File names of the signal lines of a single-segment header (in order, repeats kept)."""
    body = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        return []
    try:
        n_sig = int(body[0][1]) if len(body[0]) > 1 else 0
    except ValueError:
        return []
    return [parts[0] for parts in body[1 : 1 + n_sig] if parts]


def with_sample_count(text: str, samples: int) -> str:
    """The header with `samples` as the record line's sample count when the line has none.

    wfdb reads such a record whole but not in stretches (`sampto` needs the count).
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            if len(line.split()) == 3:
                lines[i] = f"{line.rstrip()} {int(samples)}"
            break
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def readable_record(base: Path, samples: int | None = None) -> Iterator[Path]:
    """A record path (no extension) `wfdb.rdrecord` reads: `base` itself, or a normalised copy of its header
    (`samples` fills in a missing sample count).

    The copy lives until the `with` block ends; signal files are linked, never copied.
    """
    hea = base.with_name(base.name + ".hea")
    original = hea.read_text(encoding="ascii", errors="replace")
    text = normalize_header(original)
    if samples is not None:
        text = with_sample_count(text, samples)
    if text == original or text == original + "\n":
        yield base
        return
    with tempfile.TemporaryDirectory(prefix="ecgzoo-wfdb-") as tmp:
        (Path(tmp) / hea.name).write_text(text, encoding="ascii")
        for name in set(signal_files(text)):
            target = (base.parent / name).resolve()
            if target.is_file():
                os.symlink(target, Path(tmp) / name)
        yield Path(tmp) / base.name


def samples_in_file(path: Path, fmts: Sequence[str], byte_offset: int = 0) -> int | None:
    """Samples per signal held by one signal file storing `len(fmts)` interleaved signals.

    None when the formats differ or are not fixed-width (the caller then reads the record).
    """
    if len(set(fmts)) != 1 or fmts[0] not in BYTES_PER_SAMPLE:
        return None
    size = path.stat().st_size - byte_offset
    return max(0, int(size // (BYTES_PER_SAMPLE[fmts[0]] * len(fmts))))


def check_truncation(header: Any, folder: Path, shown: Path) -> None:
    """Refuse a fixed-width signal file shorter than the header's sample count, saying by how much."""
    by_file: dict[str, list[int]] = {}
    for i, name in enumerate(header.file_name or []):
        by_file.setdefault(name, []).append(i)
    for name, signals in by_file.items():
        fmts = {str(header.fmt[i]) for i in signals}
        frames = sum(int((header.samps_per_frame or [1] * len(header.fmt))[i] or 1) for i in signals)
        if len(fmts) != 1 or next(iter(fmts)) not in BYTES_PER_SAMPLE:
            continue
        per_sample = BYTES_PER_SAMPLE[next(iter(fmts))] * frames
        offset = int((header.byte_offset or [0] * len(header.fmt))[signals[0]] or 0)
        need, have = offset + int(np.ceil(per_sample * header.sig_len)), (folder / name).stat().st_size
        if have < need:
            held = max(0, int((have - offset) // per_sample))
            raise InputError(f"{shown}: signal file {name} is truncated: it holds {held:,} of the {header.sig_len:,} samples "
                             f"per signal the header declares ({header.sig_len - held:,} missing; {have:,} of {need:,} bytes)")
