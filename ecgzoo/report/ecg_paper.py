"""ECG paper: the 1-mm / 5-mm grid of a printout and the units it is calibrated in.

Who calls: `ecgzoo.report.figures` (one-lead pictures) and `ecgzoo.report.figures_leads` (the calibrated 12-lead
printout). The grid is a ruler in the trace's own data units: minor lines every 0.04 s and 0.1 mV
(1 mm at 25 mm/s and 10 mm/mV), major lines every 0.2 s and 0.5 mV (5 mm); it is only drawn for a
trace in mV, which `mv_factor` tells from the units a record carries.
"""

from __future__ import annotations

import numpy as np

#: grey rather than the printout's pink, so the attribution colours stay readable on it
GRID_MINOR, GRID_MAJOR = "#e4e4e4", "#bdbdbd"


def paper_grid(ax, t_max: float, y_min: float, y_max: float, *, zorder: float = 0) -> None:
    """ECG paper on `ax` from 0 to `t_max` s and `y_min` to `y_max` mV: minor lines every 0.04 s / 0.1 mV,
    major every 0.2 s / 0.5 mV."""
    for step, colour, width in ((0.04, GRID_MINOR, 0.3), (0.2, GRID_MAJOR, 0.6)):
        ax.vlines(np.arange(0.0, t_max + 1e-9, step), y_min, y_max, colors=colour, linewidth=width, zorder=zorder)
    for step, colour, width in ((0.1, GRID_MINOR, 0.3), (0.5, GRID_MAJOR, 0.6)):
        start = np.ceil(y_min / step) * step
        ax.hlines(np.arange(start, y_max + 1e-9, step), 0.0, t_max, colors=colour, linewidth=width, zorder=zorder)


def mv_factor(units: str) -> float | None:
    """How many signal units make one mV: 1 for "mV", F for "mV x F"; None for other units (e.g. "a.u.")."""
    head, _, tail = units.partition(" x ")
    if head.strip() != "mV":
        return None
    try:
        return float(tail) if tail else 1.0
    except ValueError:
        return None
