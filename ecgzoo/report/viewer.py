"""One self-contained HTML file per recording: the ECG, its attribution maps and the per-window timeline.

No server, no network: the data is inlined (signal as 16-bit integers per lead with a scale,
maps as 8-bit integers, base64) and drawn by hand-written JavaScript on canvases
(`viewer_template.html`). Hand-written rather than a plotting library: the file must open offline
from one HTML file, the charting libraries we could inline (plotly.js, 3.5 MB) draw every point
they are given and would need the same min/max decimation written around them to stay
responsive on 26 million samples, and none draws ECG paper (25 mm/s, 10 mm/mV).

The trace is drawn on calibrated paper (10 mm/mV at 96 CSS pixels per inch whatever the zoom;
the `25 mm/s` button sets the time scale of the printout), each lead in its own panel: one row
per lead, or for the standard 12 leads the clinical 3 x 4 layout with a lead II rhythm strip
(`ecgzoo.report.figures_leads.CLINICAL_3X4`). Multi-label runs show one timeline track per label
(its probability per window against its threshold); single-label runs one stacked bar per window.

Zoomed out, each pixel column shows the min and max of its samples and of the last sample of the
column before (so steep QRS strokes stay one connected line), through a 256-sample block pyramid
built when the file opens, so a 24-hour recording draws as fast as 10 seconds; zoomed in, the line
through every sample, rasterised the same way. Maps of very long recordings are stored every `step`
samples (mean over the step) to keep the file size near that of the signal; the facts table says so.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo._infra.files import write_atomic
from ecgzoo.core.leads import canonical_leads
from ecgzoo.report.figures_leads import CLINICAL_3X4, RHYTHM_LEAD

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


def clinical_rows(names: Sequence[str]) -> list[list[int]] | None:
    """Lead indices row by row in the clinical 3 x 4 layout plus the lead II rhythm strip, or None
    unless the leads include the standard 12 (names compared after `canonical_leads`)."""
    names = list(canonical_leads(names))
    if not all(lead in names for row in CLINICAL_3X4 for lead in row):
        return None
    return [[names.index(lead) for lead in row] for row in CLINICAL_3X4] + [[names.index(RHYTHM_LEAD)]]


def viewer_html(*, title: str, signal: np.ndarray, fs: float, units: str, maps: Mapping[str, np.ndarray],
                classes: Sequence[str], windows: Sequence[tuple[float, float, Sequence[float] | None]],
                facts: Mapping[str, Any], lead_names: Sequence[str] | None = None, multi_label: bool = False,
                thresholds: Sequence[float] | None = None, problems: Sequence[str | None] | None = None,
                gaps: Sequence[Mapping[str, Any]] = (), annotations: Sequence[tuple[float, float, str]] | None = None) -> str:
    """The HTML text of the viewer for one recording: `signal` (leads, T) in `units` (drawn at
    10 mm/mV when `units` is mV), maps (T,) by explainer name, `windows` = (start_s, end_s, class
    probabilities or None) for the timeline; `multi_label`: the probabilities are independent per
    label, decided at `thresholds` (0.5 each where None). `problems`: per window, why it has no
    class (None where it has one). `gaps`: the gap track, {"start", "end" (s), "text"} per stretch
    not analysed for missing samples (`ecgzoo.serving.explain_recording.gap_track`), drawn over the
    trace and the timeline as a hatched band with its text. `annotations`: the record's annotated
    rhythm episodes (start_s, end_s, rhythm), drawn as a track under the maps and on the timeline."""
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    n = signal.shape[-1]
    problems = list(problems) if problems is not None else [None] * len(windows)
    if len(problems) != len(windows):
        raise ValueError(f"viewer: {len(problems)} window problems for {len(windows)} windows")
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
        "clinical": clinical_rows(names), "multi_label": bool(multi_label),
        "thresholds": [float(t) for t in thresholds] if thresholds is not None else [0.5] * len(classes) if multi_label else None,
        "windows": [{"start": float(a), "end": float(b), "p": None if p is None else [round(float(v), 4) for v in p],
                     "problem": problem} for (a, b, p), problem in zip(windows, problems, strict=True)],
        "gaps": [{"start": float(g["start"]), "end": float(g["end"]), "text": str(g["text"])} for g in gaps],
        "annotations": [{"start": float(a), "end": float(b), "rhythm": str(r)} for a, b, r in annotations or ()],
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    template = TEMPLATE.read_text(encoding="utf-8")
    return template.replace("__TITLE__", _html_escape(title)).replace("__DATA__", payload)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_viewer(path: str | Path, **kwargs: Any) -> Path:
    """`viewer_html(**kwargs)` written atomically to `path`."""
    return write_atomic(path, viewer_html(**kwargs))
