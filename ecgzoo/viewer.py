"""One self-contained HTML file per recording: the ECG, its attribution maps and the per-window timeline.

No server, no network: the data is inlined (signal as 16-bit integers per lead with a scale,
maps as 8-bit integers, base64) and drawn by hand-written JavaScript on canvases
(`viewer_template.html`). Hand-written rather than a plotting library: the file must open offline
from one HTML file, the charting libraries we could inline (plotly.js, 3.5 MB) draw every point
they are given and would need the same min/max decimation written around them to stay
responsive on 26 million samples, and none draws ECG paper (25 mm/s, 10 mm per unit).

Zoomed out, each pixel column shows the min and max of its samples (through a 256-sample block
pyramid built when the file opens), so a 24-hour recording draws as fast as 10 seconds; zoomed in,
every sample. Maps of very long recordings are stored every `step` samples (mean over the step)
to keep the file size near that of the signal; the facts table says so.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo.run_dir import write_atomic

TEMPLATE = Path(__file__).with_name("viewer_template.html")
#: maps longer than this many samples are stored at a coarser step (file size; a 24-h map at 300 Hz
#: is 26 million samples, the display never has more than a few thousand columns)
MAX_MAP_SAMPLES = 4_000_000


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode("ascii")


def _int16(x: np.ndarray) -> tuple[str, float]:
    """Base64 of x as int16 and the scale that turns the integers back into the signal's units."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    scale = peak / 32000 if peak > 0 else 1.0
    return _b64(np.round(x / scale).astype(np.int16)), scale


def _map_entry(name: str, values: np.ndarray) -> dict[str, Any]:
    """A map as int8 (every `step` samples, mean over each step) with its scale and display norm."""
    values = np.asarray(values, dtype=np.float64)
    step = max(1, math.ceil(len(values) / MAX_MAP_SAMPLES))
    if step > 1:
        pad = (-len(values)) % step
        values = np.concatenate([values, np.full(pad, values[-1])]).reshape(-1, step).mean(axis=1)
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    scale = peak / 127 if peak > 0 else 1.0
    norm = float(np.percentile(np.abs(values), 99)) or peak or 1.0
    return {"name": name, "data": _b64(np.round(values / scale).astype(np.int8)), "scale": scale, "step": step, "norm": norm}


def viewer_html(*, title: str, signal: np.ndarray, fs: float, units: str, maps: Mapping[str, np.ndarray],
                classes: Sequence[str], windows: Sequence[tuple[float, float, Sequence[float] | None]],
                facts: Mapping[str, Any], lead_names: Sequence[str] | None = None) -> str:
    """The HTML text of the viewer for one recording: `signal` (leads, T) in `units`, maps (T,) by
    explainer name, `windows` = (start_s, end_s, class probabilities or None) for the timeline."""
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    n = signal.shape[-1]
    for name, m in maps.items():
        if np.shape(m) != (n,):
            raise ValueError(f"viewer: map {name!r} has shape {np.shape(m)}, the signal has {n} samples")
    names = list(lead_names or [f"lead {i + 1}" for i in range(signal.shape[0])])
    leads = []
    for name, row in zip(names, signal, strict=True):
        data, scale = _int16(row)
        leads.append({"name": name, "data": data, "scale": scale})
    entries = [_map_entry(k, v) for k, v in maps.items()]
    steps = {e["step"] for e in entries if e["step"] > 1}
    facts = dict(facts)
    if steps:
        facts["attribution storage"] = f"mean over every {max(steps)} samples ({max(steps) / fs:.3f} s); the trace is full resolution"
    data = {
        "title": title, "fs": float(fs), "samples": int(n), "units": units, "leads": leads, "maps": entries,
        "classes": list(classes), "facts": {k: str(v) for k, v in facts.items()},
        "windows": [{"start": float(a), "end": float(b), "p": None if p is None else [round(float(v), 4) for v in p]}
                    for a, b, p in windows],
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    template = TEMPLATE.read_text(encoding="utf-8")
    return template.replace("__TITLE__", _html_escape(title)).replace("__DATA__", payload)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_viewer(path: str | Path, **kwargs: Any) -> Path:
    """`viewer_html(**kwargs)` written atomically to `path`."""
    return write_atomic(path, viewer_html(**kwargs))
