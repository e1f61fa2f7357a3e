"""The CSV files ecgzoo writes (skipped records; predictions: `ecgzoo.evaluation.task_scoring`), through one writer.

Record ids and problem messages come from users' files and may hold commas, quotes or line
breaks; the csv module quotes them so every reader (`csv.reader`, pandas, a spreadsheet) gets
the same cells back. Hand-joined lines would split such a cell in two.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence


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
