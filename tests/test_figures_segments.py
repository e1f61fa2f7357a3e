"""Per-beat marks on the attribution strip and on ECG paper: a tick at each cut, each beat's value written."""

from __future__ import annotations

import numpy as np
import pytest

from ecgzoo.report.figures import axes_by_label, plot_attribution
from ecgzoo.report.figures_leads import plot_leads
from ecgzoo.report.figures_segments import segment_values

BOUNDS = np.array([0, 120, 250, 400])
VALUES = [0.5, -0.25, 0.003]


def _map(leads: int = 1) -> np.ndarray:
    attr = np.zeros((leads, 500), np.float32)
    for lead in range(leads):
        for a, b, v in zip(BOUNDS[:-1], BOUNDS[1:], VALUES, strict=True):
            attr[lead, a:b] = v * (lead + 1)
    return attr


def test_the_strip_writes_each_beats_value_ticks_each_cut_and_states_the_units():
    sig = np.sin(np.arange(500) / 10).astype(np.float32)
    fig = plot_attribution(sig, 100.0, _map()[0], valid_length=400, segments=BOUNDS, segment_units="drop of the class logit")
    (strip,) = axes_by_label(fig, "attribution strip")
    assert [t.get_text() for t in strip.texts] == ["+0.5", "-0.25", "+3.0e-03"]  # padding is not drawn (nor labelled)
    assert [t.get_position()[0] for t in strip.texts] == pytest.approx([0.6, 1.85, 3.25])  # beat middles (s)
    ticks = strip.collections[-1].get_segments()
    assert [s[0][0] for s in ticks] == pytest.approx([1.2, 2.5])  # the cuts between beats, not the ends
    assert "drop of the class logit" in strip.get_ylabel()


def test_ecg_paper_writes_every_leads_value_under_each_beat():
    fig = plot_leads(np.zeros((2, 500), np.float32), 100.0, _map(2), ["I", "II"], layout="rows", valid_length=400,
                     segments=BOUNDS, segment_units="drop of the class logit")
    (ax,) = axes_by_label(fig, "ecg paper")
    texts = [t.get_text() for t in ax.texts]
    assert ["+0.5", "-0.25", "+3.0e-03", "+1", "-0.5", "+6.0e-03"] == [t for t in texts if t[0] in "+-"]
    assert any("drop of the class logit, per beat" in t for t in texts)


def test_bounds_outside_the_map_are_refused():
    with pytest.raises(ValueError, match="must rise within the map's 500 samples"):
        segment_values(np.zeros(500), np.array([0, 300, 600]))
