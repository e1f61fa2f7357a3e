"""Per-segment marks for maps that are constant over each beat (the `beat-removal` explainer).

Such a map's colour already shades each beat by its score; these marks add what a colour cannot say
precisely: a tick at every cut between beats and each beat's value written in it, with the units in
the axis label. `mark_strip` draws them on the attribution strip of
`ecgzoo.report.figures.plot_attribution`,
`mark_paper` on each lead's stretch of the ECG paper of `ecgzoo.report.figures_leads.plot_leads`.
Callers pass the cuts (`bounds`, samples, from the explainer's `segment_bounds`); the value of a
segment is read from the map at the segment's first sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def segment_values(attribution: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Each segment's value (n,) of a (T,) map constant over the segments of `bounds` (n + 1,)."""
    bounds = np.asarray(bounds, dtype=np.int64)
    if bounds.ndim != 1 or len(bounds) < 2 or np.any(np.diff(bounds) <= 0) or bounds[-1] > len(attribution):
        raise ValueError(f"segment bounds must rise within the map's {len(attribution)} samples, got {bounds.tolist()}")
    return np.asarray(attribution, dtype=np.float64)[bounds[:-1]]


def _label(value: float) -> str:
    return f"{value:+.2g}" if abs(value) >= 0.01 or value == 0 else f"{value:+.1e}"


def mark_strip(ax: Any, attribution: np.ndarray, bounds: np.ndarray | None, fs: float, units: str) -> None:
    """Ticks at the cuts and each segment's value (rotated) on a strip whose y axis spans 0..1; nothing when
    `bounds` is None."""
    if bounds is None:
        return
    values = segment_values(attribution, bounds)
    ax.vlines(np.asarray(bounds[1:-1]) / fs, 0, 1, colors="0.25", linewidth=0.5, zorder=3)
    for a, b, v in zip(bounds[:-1], bounds[1:], values, strict=True):
        ax.text((a + b) / 2 / fs, 0.5, _label(v), rotation=90, ha="center", va="center", fontsize=6, zorder=4)
    ax.set_ylabel(f"per beat:\n{units}", rotation=0, ha="right", va="center", fontsize=7)


def mark_cell(ax: Any, x0: float, a: int, b: int, attribution: np.ndarray, bounds: np.ndarray, fs: float,
              y: float, height: float) -> None:
    """Marks of the segments starting within samples [a, b) of one lead drawn from time `x0` (s): a tick of
    `height` at each cut and the value at height `y` in the middle of the segment's part in the cell."""
    values = segment_values(attribution, bounds)
    for s, e, v in zip(bounds[:-1], bounds[1:], values, strict=True):
        lo, hi = max(int(s), a), min(int(e), b)
        if lo >= hi:
            continue
        if s >= a:
            ax.vlines(x0 + (s - a) / fs, y - height / 2, y + height / 2, colors="0.3", linewidth=0.5, zorder=4)
        ax.text(x0 + ((lo + hi) / 2 - a) / fs, y, _label(v), ha="center", va="center", fontsize=5.5, zorder=5)


def mark_paper(ax: Any, cells: list[tuple[int, int, int, int]], attribution: np.ndarray, bounds: np.ndarray | None,
               fs: float, units: str, row_height: float) -> None:
    """`mark_cell` for every (row, lead, a, b) cell of the paper (a lead's samples [a, b) drawn from 0.4 + a / fs s
    on row `row`, baseline -row x row_height), under each trace, and the units once at the bottom left; nothing
    when `bounds` is None."""
    if bounds is None:
        return
    for row, lead, a, b in cells:
        baseline = -row * row_height
        mark_cell(ax, 0.4 + a / fs, a, b, attribution[lead], bounds, fs, baseline - 0.38 * row_height, 0.2 * row_height)
    bottom = -(1 + max(r for r, *_ in cells) - 0.5) * row_height
    ax.text(0.4, bottom + 0.05 * row_height, f"numbers under each lead: {units}, per beat", fontsize=7, zorder=5)
