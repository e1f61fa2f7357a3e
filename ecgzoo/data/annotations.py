"""Rhythm annotations of a WFDB record: the episodes its `.atr` file marks (`(AFIB`, `(AFL`, `(N`, ...).

A rhythm annotation (symbol `+`, the rhythm in its aux note, as in the MIT-BIH and CPSC 2021
databases) starts an episode of that rhythm that lasts until the next rhythm annotation or the end of
the record; before the first one the rhythm is not annotated (no episode). Called by
`ecgzoo explain --html` (the viewer's annotation track) and by benchmarks/bench_localisation.py
(annotated AF samples against the maps).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ecgzoo.data.signal_source import InputError

#: the rhythms counted as atrial fibrillation (flutter included, as the CPSC 2021 scoring does)
AF_RHYTHMS = ("AFIB", "AFL")


@dataclasses.dataclass(frozen=True)
class Episode:
    """Samples [start, stop) of the record (at its own rate) in one annotated rhythm (aux note without '(')."""

    start: int
    stop: int
    rhythm: str


def record_base(path: str | Path) -> Path:
    """The WFDB record path without suffix (`dir/rec` for `dir/rec`, `dir/rec.hea` or `dir/rec.dat`)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in (".hea", ".dat", ".mat", ".atr") else path


def rhythm_episodes(path: str | Path, samples: int, extension: str = "atr") -> list[Episode] | None:
    """The annotated rhythm episodes of the record at `path` (`samples` long), or None when it has no
    `.atr` file or that file holds no rhythm annotation."""
    base = record_base(path)
    file = base.with_name(f"{base.name}.{extension}")
    if not file.is_file():
        return None
    import wfdb

    try:
        ann = wfdb.rdann(str(base), extension)
    except Exception as exc:  # wfdb raises bare ValueErrors and IndexErrors on damaged files
        raise InputError(f"{file}: not a readable WFDB annotation file ({exc})") from None
    notes = ann.aux_note or [""] * len(ann.sample)
    marks = [(int(s), str(n).strip().lstrip("(").strip("\x00 "))
             for s, sym, n in zip(ann.sample, ann.symbol, notes, strict=True) if sym == "+" and str(n).startswith("(")]
    if not marks:
        return None
    out = []
    for (start, rhythm), nxt in zip(marks, [*marks[1:], (samples, "")], strict=True):
        a, b = max(0, min(start, samples)), max(0, min(nxt[0], samples))
        if b > a:
            out.append(Episode(a, b, rhythm))
    return out


def rhythm_mask(episodes: list[Episode], samples: int, rhythms: tuple[str, ...] = AF_RHYTHMS) -> np.ndarray:
    """(samples,) bool: True on the samples of an episode of one of `rhythms`."""
    mask = np.zeros(samples, dtype=bool)
    for e in episodes:
        if e.rhythm in rhythms:
            mask[e.start:e.stop] = True
    return mask


def episodes_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """The runs [start, stop) of True in a bool mask, in order."""
    m = np.asarray(mask, dtype=np.int8)
    edges = np.flatnonzero(np.diff(np.r_[0, m, 0]))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
