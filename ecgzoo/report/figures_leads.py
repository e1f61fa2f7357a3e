"""Per-lead attribution maps drawn as a clinical 12-lead ECG: calibrated paper, standard layout.

The usual printout: paper speed 25 mm/s and gain 10 mm/mV, a 1-mm grid (0.04 s, 0.1 mV) with a
5-mm grid (0.2 s, 0.5 mV) over it, a 1-mV calibration pulse at the start of each row, and the
leads in the 3 x 4 layout (I II III | aVR aVL aVF | V1 V2 V3 | V4 V5 V6, each column a quarter
of the record) with lead II as a rhythm strip underneath; or all leads in rows (`layout="rows"`).
The figure is sized so that the printed page keeps that calibration (one second is 25 mm).

Each lead's trace is coloured by its own attribution (leads, T): explainers that tell leads
apart (gradients, Integrated Gradients) show which lead mattered; a map shared by all leads
(CAM, Grad-CAM: their feature maps mix the leads) colours every lead alike, and the title says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ecgzoo.core.leads import STANDARD_12, canonical_leads
from ecgzoo.explain.beats import BeatTemplates
from ecgzoo.report.ecg_paper import mv_factor, paper_grid
from ecgzoo.report.figures import attribution_norm, compose_title, padding_note
from ecgzoo.report.figures_segments import mark_paper
from ecgzoo.report.map_units import map_share

MM_PER_S, MM_PER_MV = 25.0, 10.0
ROW_MV = 3.5  # vertical space of one row
CLINICAL_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
def _trace(ax, t: np.ndarray, y: np.ndarray, values: np.ndarray, norm, cmap: str) -> LineCollection:
    points = np.stack([t, y], axis=1)
    segments = np.stack([points[:-1], points[1:]], axis=1)
    lines = LineCollection(segments, cmap=cmap, norm=norm, linewidth=1.1, zorder=3)
    lines.set_array(0.5 * (values[:-1] + values[1:]))
    ax.add_collection(lines)
    ax.plot(t, y, color="black", linewidth=0.25, zorder=2)  # thin black core: the waveform stays readable
    return lines


def _pulse(ax, x0: float, baseline: float) -> None:
    """1 mV x 0.2 s calibration pulse."""
    ax.plot([x0, x0, x0 + 0.2, x0 + 0.2], [baseline, baseline + 1.0, baseline + 1.0, baseline], color="black",
            linewidth=0.8, zorder=3)


def _cells(names: tuple[str, ...], samples: int, layout: str) -> list[tuple[int, int, int, int]]:
    """(row, lead index, first sample, end sample) of every drawn cell."""
    if layout == "3x4" and set(STANDARD_12) <= set(names):
        quarter = samples // 4
        cells = [(r, names.index(lead), c * quarter, samples if c == 3 else (c + 1) * quarter)
                 for r, row in enumerate(CLINICAL_3X4) for c, lead in enumerate(row)]
        return cells + [(3, names.index(RHYTHM_LEAD), 0, samples)]
    return [(i, i, 0, samples) for i in range(len(names))]


def _checked_leads(signal: np.ndarray, attribution: np.ndarray, lead_names: Sequence[str] | None, layout: str,
                   per_lead: bool) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], bool]:
    """(signal, attribution (leads, T), lead names, per_lead) of `plot_leads`, after checking shapes and layout."""
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2:
        raise ValueError(f"signal must be (leads, T), got shape {sig.shape}")
    leads, samples = sig.shape
    attr = np.asarray(attribution, dtype=np.float64)
    if attr.shape == (samples,):
        attr, per_lead = np.broadcast_to(attr, sig.shape), False
    if attr.shape != sig.shape:
        raise ValueError(f"attribution must be (T,) or (leads, T) = {sig.shape}, got {attr.shape}")
    if layout not in ("3x4", "rows"):
        raise ValueError(f"layout must be '3x4' or 'rows', got {layout!r}")
    names = canonical_leads(lead_names) if lead_names is not None else tuple(f"lead {i + 1}" for i in range(leads))
    if len(names) != leads:
        raise ValueError(f"{len(names)} lead names {list(names)} for {leads} leads")
    return sig, attr, names, per_lead


def _paper_axes(ax: Any, t_max: float, y_range: tuple[float, float], seconds: float, label: str) -> None:
    """Limits, the 25 mm/s : 10 mm/mV aspect, one tick a second (after the calibration pulse) and the axis label."""
    ax.set_xlim(0, t_max)
    ax.set_ylim(*y_range)
    ax.set_aspect(MM_PER_MV / MM_PER_S)  # 1 mV is 10 mm where 1 s is 25 mm
    ax.set_yticks([])
    ticks = np.arange(0.0, seconds + 1e-9, 1.0)
    ax.set_xticks(0.4 + ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(label)


def _paper_figure(t_max: float, y_min: float, y_max: float) -> tuple[Figure, Any, tuple[float, float, float, float]]:
    """A figure whose paper axes are printed at 25 mm/s and 10 mm/mV, the grid drawn; and the colour bar's box."""
    width_mm, height_mm = t_max * MM_PER_S, (y_max - y_min) * MM_PER_MV
    fig_w, fig_h = width_mm / 25.4 + 1.6, height_mm / 25.4 + 1.0  # inches: 0.4 left, 1.2 right for the colour bar
    left, bottom, w, h = 0.4 / fig_w, 0.5 / fig_h, width_mm / 25.4 / fig_w, height_mm / 25.4 / fig_h
    fig = Figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((left, bottom, w, h))
    ax.set_label("ecg paper")
    paper_grid(ax, t_max, y_min, y_max)
    return fig, ax, (left + w + 0.1 / fig_w, bottom + 0.2 * h, 0.12 / fig_w, 0.6 * h)


def plot_leads(
    signal: np.ndarray,
    fs: float,
    attribution: np.ndarray,
    lead_names: Sequence[str] | None = None,
    *,
    layout: str = "3x4",
    valid_length: int | None = None,
    title: str = "",
    predicted_label: str | None = None,
    probabilities: Mapping[str, float] | None = None,
    explainer: str | None = None,
    per_lead: bool = True,
    units: str = "mV",
    sums_to: str | None = None,
    segments: np.ndarray | None = None, segment_units: str = "attribution",
) -> Figure:
    """A calibrated ECG printout of `signal` (leads, T) in mV, each lead coloured by its map.

    attribution: (leads, T), or (T,) for a map shared by all leads. layout: "3x4" (clinical;
    needs the 12 standard leads, otherwise rows are used) or "rows". units: the signal's units;
    "mV x F" (the `scale` step's output) is drawn divided by F, so the paper's 10 mm/mV holds; any
    other non-mV unit is drawn as given and the axis says it is not calibrated. Maps in % per second of
    the sum over every lead (`ecgzoo.report.map_units`; `sums_to` as in `plot_attribution`); only the
    recorded `valid_length` samples are drawn. `segments`: beat cuts, marked with raw values in `segment_units`.
    """
    sig, attr, names, per_lead = _checked_leads(signal, attribution, lead_names, layout, per_lead)
    factor = mv_factor(units)
    sig = sig / factor if factor else sig
    samples = sig.shape[1]
    valid = samples if valid_length is None else int(valid_length)
    share = map_share(attr if per_lead else attr[0], fs, valid, sums_to=sums_to, explainer=explainer)
    raw, attr = attr, np.broadcast_to(share.values, sig.shape)
    cells = _cells(names, valid, layout)
    rows = 1 + max(r for r, *_ in cells)
    norm, cmap = attribution_norm(attr[:, :valid])
    t_max = valid / fs + 0.4  # room for the calibration pulse
    y_min, y_max = -(rows - 0.5) * ROW_MV, 0.5 * ROW_MV
    fig, ax, bar_box = _paper_figure(t_max, y_min, y_max)
    lines = None
    for row, lead, a, b in cells:
        baseline = -row * ROW_MV
        x0 = 0.4 + a / fs
        seg = sig[lead, a:b] - np.median(sig[lead, :valid])  # centre each lead on its row
        lines = _trace(ax, x0 + np.arange(b - a) / fs, baseline + seg, attr[lead, a:b], norm, cmap)
        ax.text(x0 + 0.04, baseline + 0.35 * ROW_MV, names[lead], fontsize=8, fontweight="bold", zorder=4)
        if a == 0:
            _pulse(ax, 0.1, baseline)
    mark_paper(ax, cells, raw, segments, fs, segment_units, ROW_MV)  # nothing without segments
    _paper_axes(ax, t_max, (y_min, y_max), valid / fs,
                "time (s)   25 mm/s, 10 mm/mV" if factor else f"time (s)   25 mm/s; amplitude in {units}, not calibrated")
    if lines is not None:
        bar = fig.colorbar(lines, cax=fig.add_axes(bar_box))
        bar.set_label(share.label + (" (per lead)" if per_lead else " (one map for all leads)"), fontsize=7)
    text = "\n".join(t for t in (compose_title(title, None, predicted_label, probabilities),
                                  padding_note(valid, samples, fs)) if t)
    if text:
        fig.suptitle(text, fontsize=9)
    return fig


def plot_lead_beats(templates: Sequence[BeatTemplates], lead_names: Sequence[str] | None = None, *, title: str = "",
                    units: str = "mV", explainer: str | None = None) -> Figure:
    """The beat-template view per lead: each lead's beats (grey), mean beat (black) and mean map (colour band),
    panels in the clinical order for the 12 standard leads; one colour scale for all leads.

    Build `templates` with `ecgzoo.explain.beats.lead_templates` (beats cut at the same R-peaks in every lead).
    """
    names = canonical_leads(lead_names) if lead_names is not None else tuple(f"lead {i + 1}" for i in range(len(templates)))
    if len(names) != len(templates) or not templates:
        raise ValueError(f"{len(names)} lead names for {len(templates)} leads' templates")
    if templates[0].count == 0:
        raise ValueError(f"record {templates[0].record_id or '?'}: no complete beat to draw")
    standard = set(STANDARD_12) <= set(names)
    order = [names.index(n) for row in CLINICAL_3X4 for n in row] if standard else list(range(len(names)))
    columns = 4 if len(order) >= 4 else len(order)
    rows = -(-len(order) // columns)
    norm, cmap = attribution_norm(np.concatenate([t.mean_attribution() for t in templates]))
    fig = Figure(figsize=(3.2 * columns, 2.3 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True)
    t = templates[0].offsets_ms
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(order):
            ax.set_visible(False)
            continue
        lead = templates[order[k]]
        lo, hi = float(lead.signal.min()), float(lead.signal.max())
        margin = 0.08 * (hi - lo) if hi > lo else 0.5
        image = ax.imshow(lead.mean_attribution()[None], aspect="auto", extent=(t[0], t[-1], lo - margin, hi + margin),
                          origin="lower", cmap=cmap, norm=norm, alpha=0.6, interpolation="nearest", zorder=0)
        ax.plot(t, lead.signal.T, color="0.6", linewidth=0.4, alpha=0.5, zorder=1)
        ax.plot(t, lead.mean_signal(), color="black", linewidth=1.6, zorder=2)
        ax.set_ylim(lo - margin, hi + margin)
        ax.set_title(names[order[k]], fontsize=9, fontweight="bold")
        ax.axvline(0, color="0.3", linewidth=0.6, linestyle=":")
        if k % columns == 0:
            ax.set_ylabel(units)
        if k >= (rows - 1) * columns:
            ax.set_xlabel("ms from R-peak")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label=f"{explainer or 'attribution'} (mean over beats, scaled)")
    fig.suptitle(f"{title + ' | ' if title else ''}{templates[0].count} beats per lead, aligned on one lead's R-peaks",
                 fontsize=10)
    return fig
