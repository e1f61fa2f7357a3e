"""Pictures of attributions: where the network looked, drawn so a clinician can read them.

Every function returns a matplotlib `Figure` built without pyplot: no display is needed and the
process's backend (a notebook's inline one, say) is left alone; save it with `fig.savefig(path)`
or `ecgzoo._infra.files.save_figure`, or show it in a notebook by leaving it as a cell's value. Time axes are in seconds (or ms around
an R-peak), amplitudes in the record's units (mV on an ECG-paper grid where the units are mV);
only the recorded part is drawn: padding added for the model is said in the title, never drawn.
Maps are drawn in one unit for every explainer, a share per second (`ecgzoo.report.map_units`), named
on the colour bar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ecgzoo.explain.beats import BeatTemplates
from ecgzoo.report.ecg_paper import mv_factor, paper_grid
from ecgzoo.report.figures_segments import mark_strip
from ecgzoo.report.map_units import map_share


def _as_leads(signal: np.ndarray) -> np.ndarray:
    sig = np.asarray(signal, dtype=np.float32)
    if sig.ndim == 1:
        sig = sig[None, :]
    if sig.ndim != 2:
        raise ValueError(f"signal must be (T,) or (leads, T), got shape {sig.shape}")
    return sig


def _check_attribution(attribution: np.ndarray, samples: int) -> np.ndarray:
    attr = np.asarray(attribution, dtype=np.float32)
    if attr.ndim == 2 and attr.shape[0] == 1:
        attr = attr[0]
    if attr.shape != (samples,):
        raise ValueError(f"attribution must be one value per sample, shape ({samples},), got {attr.shape}")
    return attr


def _valid(valid_length: int | None, samples: int) -> int:
    if valid_length is None:
        return samples
    vl = int(valid_length)
    if not 0 < vl <= samples:
        raise ValueError(f"valid_length {vl} outside 1..{samples} samples")
    return vl


def attribution_norm(values: np.ndarray) -> tuple[Normalize, str]:
    """Colour scale: diverging around zero for signed maps, sequential from zero otherwise."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    if lo < 0:
        m = max(abs(lo), abs(hi)) or 1.0
        return Normalize(-m, m), "RdBu_r"
    return Normalize(0.0, hi if hi > 0 else 1.0), "Reds"


def compose_title(
    title: str = "",
    true_label: str | None = None,
    predicted_label: str | None = None,
    probabilities: Mapping[str, float] | None = None,
) -> str:
    """'<title>  true N | predicted A | N 0.10, A 0.85, ...' (parts left out when not given)."""
    parts = [title] if title else []
    if true_label is not None:
        parts.append(f"true {true_label}")
    if predicted_label is not None:
        parts.append(f"predicted {predicted_label}")
    if probabilities:
        parts.append(", ".join(f"{k} {float(v):.2f}" for k, v in probabilities.items()))
    return " | ".join(parts)


def padding_note(valid: int, samples: int, fs: float) -> str:
    """'' when nothing was padded, else the sentence the titles carry about the padding."""
    if valid >= samples:
        return ""
    return f"recorded {valid / fs:g} s, padded to {samples / fs:g} s for the model; only the recorded part is drawn"


def _heading(fig: Figure, heading: str, note: str) -> None:
    text = "\n".join(t for t in (heading, note) if t)
    if text:
        fig.suptitle(text, fontsize=10)


def _draw_trace(ax, sig: np.ndarray, attr: np.ndarray, fs: float, valid: int, norm: Normalize, cmap: str,
                paper: bool) -> None:
    """Trace of the recorded part over a colour band of the map; on ECG paper when `paper` (mV)."""
    t = np.arange(valid) / fs
    seg = sig[:valid]
    lo, hi = float(seg.min()), float(seg.max())
    margin = 0.08 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - margin, hi + margin
    ax.imshow(attr[None, :valid], aspect="auto", extent=(0, valid / fs, lo, hi), origin="lower",
              cmap=cmap, norm=norm, alpha=0.55, interpolation="nearest", zorder=0)
    if paper:
        paper_grid(ax, valid / fs, lo, hi, zorder=1)
    else:
        ax.grid(True, color="0.8", linewidth=0.4, zorder=1)
    ax.plot(t, seg, color="black", linewidth=0.7, zorder=2)
    ax.set_xlim(0, valid / fs)
    ax.set_ylim(lo, hi)


def plot_attribution(
    signal: np.ndarray,
    fs: float,
    attribution: np.ndarray,
    *,
    valid_length: int | None = None,
    title: str = "",
    units: str = "mV",
    true_label: str | None = None,
    predicted_label: str | None = None,
    probabilities: Mapping[str, float] | None = None,
    explainer: str | None = None,
    sums_to: str | None = None,
    width: float | None = None,
    segments: np.ndarray | None = None,
    segment_units: str = "attribution",
) -> Figure:
    """Waveform against time with the map under it as colour and as a strip with a colour bar.

    signal (T,) or (leads, T); attribution (T,) raw, drawn in % per second (`ecgzoo.report.map_units`;
    `sums_to`: what a complete map sums to). Only the first `valid_length` samples (the recorded part)
    are drawn; a padded record says so in the title. mV ("mV x F": divided by F) is drawn on ECG paper.
    `segments`: beat cuts, marked with each beat's raw value in `segment_units` (`figures_segments`).
    """
    if not fs > 0:
        raise ValueError(f"sampling rate fs must be positive, got {fs}")
    sig = _as_leads(signal)
    leads, samples = sig.shape
    valid = _valid(valid_length, samples)
    raw = _check_attribution(attribution, samples)
    share = map_share(raw, fs, valid, sums_to=sums_to, explainer=explainer)
    attr = share.values
    factor = mv_factor(units)
    sig, units = (sig / factor, "mV") if factor else (sig, units)
    norm, cmap = attribution_norm(attr[:valid])
    duration = valid / fs
    fig = Figure(figsize=(width or float(np.clip(4 + duration * 0.4, 8, 20)), 1.9 * leads + 1.8), layout="constrained")
    grid = fig.add_gridspec(leads + 1, 2, height_ratios=[3] * leads + [0.7], width_ratios=[60, 1])
    trace_axes = []
    for lead in range(leads):
        ax = fig.add_subplot(grid[lead, 0], sharex=trace_axes[0] if trace_axes else None)
        ax.set_label(f"signal lead {lead}")
        _draw_trace(ax, sig[lead], attr, fs, valid, norm, cmap, paper=factor is not None)
        ax.set_ylabel(f"lead {lead + 1} ({units})" if leads > 1 else f"amplitude ({units})")
        ax.tick_params(labelbottom=False)
        trace_axes.append(ax)
    strip = fig.add_subplot(grid[leads, 0], sharex=trace_axes[0])
    strip.set_label("attribution strip")
    image = strip.imshow(attr[None, :valid], aspect="auto", extent=(0, duration, 0, 1), cmap=cmap, norm=norm,
                         interpolation="nearest")
    strip.set_xlim(0, duration)
    strip.set_yticks([])
    strip.set_xlabel("time (s)" + ("   ECG paper: small squares 0.04 s x 0.1 mV, large 0.2 s x 0.5 mV" if factor else ""))
    strip.set_ylabel("map", rotation=0, ha="right", va="center")
    mark_strip(strip, raw, segments, fs, segment_units)  # each beat's own value in its units; nothing without segments
    cax = fig.add_subplot(grid[:, 1])
    cax.set_label("colorbar")
    fig.colorbar(image, cax=cax).set_label(share.label)
    _heading(fig, compose_title(title, true_label, predicted_label, probabilities), padding_note(valid, samples, fs))
    return fig


def axes_by_label(fig: Figure, label: str):
    """The axes of `fig` whose label starts with `label` (for tests and further drawing)."""
    return [ax for ax in fig.axes if ax.get_label().startswith(label)]


def plot_deletion_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    aucs: Mapping[str, float] | None = None,
    *,
    title: str = "Deletion curves (lower area = more faithful map)",
    random_name: str = "random",
) -> Figure:
    """Target-class probability against the fraction of signal deleted, one line per explainer."""
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.set_label("deletion")
    for name, (fraction, probability) in curves.items():
        label = f"{name} (AUC {aucs[name]:.3f})" if aucs and name in aucs else name
        style = {"color": "0.4", "linestyle": "--"} if name == random_name else {}
        ax.plot(np.asarray(fraction) * 100, probability, label=label, linewidth=1.6, **style)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("signal deleted, most-attributed windows first (%)")
    ax.set_ylabel("target-class probability")
    ax.grid(True, color="0.85", linewidth=0.5)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def _band(ax, offsets_ms: np.ndarray, values: np.ndarray, lo: float, hi: float, norm: Normalize, cmap: str) -> None:
    step = float(offsets_ms[1] - offsets_ms[0]) if len(offsets_ms) > 1 else 1.0
    ax.imshow(values[None, :], aspect="auto", extent=(offsets_ms[0], offsets_ms[-1] + step, lo, hi), origin="lower",
              cmap=cmap, norm=norm, alpha=0.5, interpolation="nearest", zorder=0)


def _beat_map_and_rhythm(fig: Figure, ax_map: Any, ax_rr: Any, templates: BeatTemplates, step: float, norm: Normalize,
                         cmap: Any) -> None:
    """The beat-by-beat map (one row per beat) with its colour bar, and the RR interval before each beat."""
    t = templates.offsets_ms
    image = ax_map.imshow(templates.attribution, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest",
                          extent=(t[0], t[-1] + step, templates.count - 0.5, -0.5))
    ax_map.set_ylabel("beat (in order)")
    ax_map.set_title("map, beat by beat", fontsize=9)
    fig.colorbar(image, ax=ax_map, location="bottom", shrink=0.8, label="attribution")
    ax_rr.plot(templates.rr_s * 1000.0, np.arange(templates.count), "o-", color="tab:blue", markersize=3)
    ax_rr.set_xlabel("RR before (ms)")
    ax_rr.set_title("rhythm", fontsize=9)
    ax_rr.tick_params(labelleft=False)


def plot_beat_templates(
    templates: BeatTemplates,
    *,
    title: str = "",
    units: str = "mV",
    explainer: str | None = None,
) -> Figure:
    """Overlaid beats of signal and map with their means, a beat-by-beat map and the RR intervals.

    Build `templates` with `ecgzoo.explain.beats.cut_templates` or `record_templates`.
    """
    if templates.count == 0:
        raise ValueError(f"record {templates.record_id or '?'}: no complete beat to draw (R-peaks too close to the ends?)")
    t = templates.offsets_ms
    norm, cmap = attribution_norm(templates.attribution)
    fig = Figure(figsize=(12, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=[1.2, 1.2, 0.35])
    ax_sig = fig.add_subplot(grid[0, 0])
    ax_att = fig.add_subplot(grid[1, 0], sharex=ax_sig)
    ax_map = fig.add_subplot(grid[:, 1])
    ax_rr = fig.add_subplot(grid[:, 2], sharey=ax_map)
    ax_sig.set_label("beat signal")
    ax_att.set_label("beat attribution")
    ax_map.set_label("beat map")
    ax_rr.set_label("beat rr")

    lo, hi = float(templates.signal.min()), float(templates.signal.max())
    margin = 0.08 * (hi - lo) if hi > lo else 0.5
    _band(ax_sig, t, templates.mean_attribution(), lo - margin, hi + margin, norm, cmap)
    ax_sig.plot(t, templates.signal.T, color="0.55", linewidth=0.5, alpha=0.5, zorder=1)
    ax_sig.plot(t, templates.mean_signal(), color="black", linewidth=2, zorder=2, label="mean beat")
    ax_sig.set_ylim(lo - margin, hi + margin)
    ax_sig.set_ylabel(f"amplitude ({units})")
    ax_sig.legend(loc="upper right", fontsize=8)

    ax_att.plot(t, templates.attribution.T, color="tab:red", linewidth=0.5, alpha=0.35)
    ax_att.plot(t, templates.mean_attribution(), color="darkred", linewidth=2, label="mean map")
    ax_att.axhline(0, color="0.5", linewidth=0.5)
    ax_att.set_ylabel(f"{explainer} attribution" if explainer else "attribution")
    ax_att.legend(loc="upper right", fontsize=8)

    step = float(t[1] - t[0]) if len(t) > 1 else 1.0
    _beat_map_and_rhythm(fig, ax_map, ax_rr, templates, step, norm, cmap)
    for ax in (ax_att, ax_map):
        ax.set_xlabel("time from R-peak (ms)")
    for ax in (ax_sig, ax_att, ax_map):
        ax.axvline(0, color="0.3", linewidth=0.6, linestyle=":")
        ax.set_xlim(t[0], t[-1] + step)
    ax_sig.tick_params(labelbottom=False)
    heading = f"{title} | " if title else ""
    fig.suptitle(f"{heading}{templates.count} beats, -{-t[0]:.0f} to +{t[-1] + step:.0f} ms around each R-peak", fontsize=10)
    return fig


def plot_class_average(
    per_class: Mapping[str, BeatTemplates],
    *,
    title: str = "",
    units: str = "mV",
    explainer: str | None = None,
) -> Figure:
    """Mean beat (with spread) and mean normalised map of each class, side by side on shared axes.

    `per_class` maps class name to the pooled templates of its records (`ecgzoo.explain.beats.pool`).
    """
    names = [c for c, tpl in per_class.items() if tpl.count > 0]
    if not names:
        raise ValueError("no class has any beat template to average")
    fig = Figure(figsize=(3.6 * len(names) + 1, 5.5), layout="constrained")
    axes = fig.subplots(2, len(names), sharex=True, sharey="row", squeeze=False)
    all_mean = np.concatenate([per_class[c].mean_attribution() for c in names])
    norm, cmap = attribution_norm(all_mean)
    spreads = [(per_class[c].mean_signal(), per_class[c].signal.std(axis=0)) for c in names]
    lo, hi = min(float((m - s).min()) for m, s in spreads), max(float((m + s).max()) for m, s in spreads)
    margin = 0.05 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - margin, hi + margin
    for j, name in enumerate(names):
        tpl = per_class[name]
        t = tpl.offsets_ms
        mean, std = tpl.mean_signal(), tpl.signal.std(axis=0)
        ax, ax2 = axes[0, j], axes[1, j]
        ax.set_label(f"class {name} signal")
        ax2.set_label(f"class {name} attribution")
        _band(ax, t, tpl.mean_attribution(), lo, hi, norm, cmap)
        ax.set_ylim(lo, hi)
        ax.fill_between(t, mean - std, mean + std, color="0.6", alpha=0.4, zorder=1, label="±1 sd")
        ax.plot(t, mean, color="black", linewidth=1.8, zorder=2, label="mean beat")
        records = len({r for r in tpl.record_id.split(",") if r})
        ax.set_title(f"{name}: {records} record{'s' if records != 1 else ''}, {tpl.count} beats", fontsize=9)
        mean_attr = tpl.mean_attribution()
        ax2.plot(t, mean_attr, color="darkred", linewidth=1.8)
        ax2.fill_between(t, mean_attr - tpl.attribution.std(axis=0), mean_attr + tpl.attribution.std(axis=0),
                         color="tab:red", alpha=0.2)
        ax2.axhline(0, color="0.5", linewidth=0.5)
        ax2.set_xlabel("time from R-peak (ms)")
        for a in (ax, ax2):
            a.axvline(0, color="0.3", linewidth=0.6, linestyle=":")
            a.set_xlim(t[0], t[-1])
    axes[0, 0].set_ylabel(f"amplitude ({units})")
    axes[1, 0].set_ylabel("normalised " + (f"{explainer} " if explainer else "") + "attribution")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.suptitle(title or "Class-average beat and map", fontsize=10)
    return fig


def plot_side_by_side(
    signal: np.ndarray,
    fs: float,
    attributions: Mapping[str, np.ndarray],
    *,
    valid_length: int | None = None,
    title: str = "",
    units: str = "mV",
    lead: int = 0,
    true_label: str | None = None,
    predicted_label: str | None = None,
    probabilities: Mapping[str, float] | None = None,
    sums_to: Mapping[str, str | None] | None = None,
) -> Figure:
    """One row per explainer: the same trace (one lead, recorded part) under each map, each with its
    own colour bar in % per second (`sums_to`: explainer -> what its map sums to, as `plot_attribution`)."""
    if not attributions:
        raise ValueError("no attributions to compare")
    sig = _as_leads(signal)[lead]
    samples = sig.shape[0]
    valid = _valid(valid_length, samples)
    factor = mv_factor(units)
    sig, units = (sig / factor, "mV") if factor else (sig, units)
    rows = len(attributions)
    duration = valid / fs
    fig = Figure(figsize=(float(np.clip(4 + duration * 0.4, 8, 20)), 1.7 * rows + 1.2), layout="constrained")
    grid = fig.add_gridspec(rows, 2, width_ratios=[60, 1])
    first = None
    for i, (name, attribution) in enumerate(attributions.items()):
        share = map_share(_check_attribution(attribution, samples), fs, valid, sums_to=(sums_to or {}).get(name), explainer=name)
        norm, cmap = attribution_norm(share.values[:valid])
        ax = fig.add_subplot(grid[i, 0], sharex=first)
        first = first or ax
        ax.set_label(f"explainer {name}")
        _draw_trace(ax, sig, share.values, fs, valid, norm, cmap, paper=factor is not None)
        ax.set_ylabel(f"{name}\n({units})")
        ax.tick_params(labelbottom=i == rows - 1)
        cax = fig.add_subplot(grid[i, 1])
        cax.set_label(f"colorbar {name}")
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax).set_label(share.label, fontsize=7)
    ax.set_xlabel("time (s)")
    _heading(fig, compose_title(title, true_label, predicted_label, probabilities), padding_note(valid, samples, fs))
    return fig
