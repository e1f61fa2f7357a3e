"""Pictures of attributions: where the network looked, drawn so a clinician can read them.

Every function returns a matplotlib Figure (Agg backend, no display needed); save it with
`fig.savefig(path)` or `ecgzoo.run_dir.save_figure`. Time axes are in seconds (or ms around
an R-peak), amplitudes in the record's units; padding is shaded and labelled, never drawn
as signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PADDING_COLOUR = "0.88"


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


def _draw_trace(ax, sig: np.ndarray, attr: np.ndarray, fs: float, valid: int, norm: Normalize, cmap: str) -> None:
    """Trace of the valid part over a colour band of the attribution; padding shaded."""
    samples = sig.shape[-1]
    t = np.arange(valid) / fs
    seg = sig[:valid]
    lo, hi = float(seg.min()), float(seg.max())
    margin = 0.08 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - margin, hi + margin
    ax.imshow(attr[None, :valid], aspect="auto", extent=(0, valid / fs, lo, hi), origin="lower",
              cmap=cmap, norm=norm, alpha=0.55, interpolation="nearest", zorder=0)
    ax.plot(t, seg, color="black", linewidth=0.7, zorder=2)
    _shade_padding(ax, valid, samples, fs)
    ax.set_xlim(0, samples / fs)
    ax.set_ylim(lo, hi)


def _shade_padding(ax, valid: int, samples: int, fs: float) -> None:
    if valid >= samples:
        return
    ax.axvspan(valid / fs, samples / fs, facecolor=PADDING_COLOUR, edgecolor="0.6", hatch="//", linewidth=0, zorder=1)
    ax.text((valid + samples) / 2 / fs, 0.5, "padding", transform=ax.get_xaxis_transform(),
            ha="center", va="center", color="0.35", fontsize=9, zorder=3,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7})


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
    width: float | None = None,
) -> Figure:
    """Waveform against time with the attribution under it as colour and as a strip with a colour bar.

    signal (T,) or (leads, T); attribution (T,), one value per sample. The colour scale is set
    from the valid part only, so padding cannot wash out the map.
    """
    if not fs > 0:
        raise ValueError(f"sampling rate fs must be positive, got {fs}")
    sig = _as_leads(signal)
    leads, samples = sig.shape
    attr = _check_attribution(attribution, samples)
    valid = _valid(valid_length, samples)
    norm, cmap = attribution_norm(attr[:valid])
    duration = samples / fs
    fig = plt.figure(figsize=(width or float(np.clip(4 + duration * 0.4, 8, 20)), 1.9 * leads + 1.6),
                     layout="constrained")
    grid = fig.add_gridspec(leads + 1, 2, height_ratios=[3] * leads + [0.7], width_ratios=[60, 1])
    trace_axes = []
    for lead in range(leads):
        ax = fig.add_subplot(grid[lead, 0], sharex=trace_axes[0] if trace_axes else None)
        ax.set_label(f"signal lead {lead}")
        _draw_trace(ax, sig[lead], attr, fs, valid, norm, cmap)
        ax.set_ylabel(f"lead {lead + 1} ({units})" if leads > 1 else f"amplitude ({units})")
        ax.tick_params(labelbottom=False)
        ax.grid(True, color="0.8", linewidth=0.4, zorder=1)
        trace_axes.append(ax)
    strip = fig.add_subplot(grid[leads, 0], sharex=trace_axes[0])
    strip.set_label("attribution strip")
    image = strip.imshow(attr[None, :valid], aspect="auto", extent=(0, valid / fs, 0, 1), cmap=cmap, norm=norm,
                         interpolation="nearest")
    _shade_padding(strip, valid, samples, fs)
    strip.set_xlim(0, duration)
    strip.set_yticks([])
    strip.set_xlabel("time (s)")
    strip.set_ylabel("map", rotation=0, ha="right", va="center")
    cax = fig.add_subplot(grid[:, 1])
    cax.set_label("colorbar")
    bar = fig.colorbar(image, cax=cax)
    bar.set_label(f"{explainer} attribution" if explainer else "attribution")
    heading = compose_title(title, true_label, predicted_label, probabilities)
    if heading:
        fig.suptitle(heading, fontsize=10)
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
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
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
