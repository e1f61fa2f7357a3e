"""The CSV files ecgzoo writes (skipped records, predictions), through one writer.

Record ids and problem messages come from users' files and may hold commas, quotes or line
breaks; the csv module quotes them so every reader (`csv.reader`, pandas, a spreadsheet) gets
the same cells back. Hand-joined lines would split such a cell in two.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

import numpy as np


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document (header row, then `rows`), quoted where a cell needs it, `\\n` line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def skipped_csv(skipped: Iterable[tuple[str, str]]) -> str:
    """`record,problem`: the records a preparation left out, and why."""
    return csv_text(("record", "problem"), skipped)


def predictions_csv(record_ids: Sequence[str], labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> str:
    """One row per record: id, true class, predicted class and the class probabilities (5 decimals)."""
    rows = (
        [rid, classes[int(y)], classes[int(p.argmax())], *(f"{v:.5f}" for v in p)]
        for rid, y, p in zip(record_ids, labels, probs, strict=True)
    )
    return csv_text(["record", "true", "predicted", *(f"p_{c}" for c in classes)], rows)
