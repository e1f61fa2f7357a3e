"""The viewer's gap track: windows not analysed for missing samples are drawn as a distinct band with
their text ("not analysed: N missing samples"), checked in the embedded data and, with a Chromium, as drawn."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import wfdb_fixtures as fx
from run_helpers import cli
from test_viewer import _state

from ecgzoo.report.viewer import viewer_html
from ecgzoo.serving.explain_recording import gap_track

GAP = "not analysed: 1200 missing samples"


@pytest.fixture
def tiny(tiny_run):
    return tiny_run


def _data(page: str) -> dict:
    match = re.search(r'<script id="ecgdata" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no inlined data"
    return json.loads(match.group(1))


def test_gap_track_has_one_band_per_window_with_missing_samples():
    windows = [(0.0, 4.0, [0.5, 0.5]), (4.0, 8.0, None), (8.0, 12.0, None), (12.0, 16.0, None)]
    problems = [None, GAP, "not analysed: 7 missing samples", "the model's output is not finite"]
    assert gap_track(windows, problems) == [{"start": 4.0, "end": 8.0, "text": GAP},
                                            {"start": 8.0, "end": 12.0, "text": "not analysed: 7 missing samples"}]
    page = viewer_html(title="t", signal=np.zeros((1, 1600)), fs=100.0, units="mV", maps={}, classes=["N", "A"],
                       windows=windows, facts={}, problems=problems, gaps=gap_track(windows, problems))
    data = _data(page)
    assert [w["problem"] for w in data["windows"]] == problems
    assert [g["text"] for g in data["gaps"]] == [GAP, "not analysed: 7 missing samples"]  # not-finite is no gap
    with pytest.raises(ValueError, match="3 window problems for 4 windows"):
        viewer_html(title="t", signal=np.zeros((1, 1600)), fs=100.0, units="mV", maps={}, classes=["N", "A"],
                    windows=windows, facts={}, problems=problems[:3])


@pytest.fixture
def gapped_view(tiny, tmp_path):
    """explain --html of a multi-segment record with a 4-s `~` gap and 8 s where lead II is absent."""
    hea = fx.variable_layout_record(tmp_path / "rec")
    code, out, err = cli("explain", str(tiny), str(hea), "--lead", "II", "--html", "--out", str(tmp_path / "v"))
    assert code == 0, err
    return tmp_path / "v" / "vrec.html"


def test_explain_html_embeds_the_gap_windows_with_their_text(gapped_view):
    data = _data(gapped_view.read_text())
    assert [(g["start"], g["end"], g["text"]) for g in data["gaps"]] == [(8.0, 12.0, GAP), (20.0, 24.0, GAP), (24.0, 28.0, GAP)]
    assert [w["p"] is None for w in data["windows"]] == [False, False, True, False, False, True, True]
    assert all(w["problem"] is None for w in data["windows"] if w["p"] is not None)


def test_chromium_draws_the_gap_track_on_the_trace_and_the_timeline(gapped_view):
    state = _state(gapped_view, "all")
    assert "error" not in state
    assert [(g["start_s"], g["text"]) for g in state["gaps"]] == [(8.0, GAP), (20.0, GAP), (24.0, GAP)]
    assert [g["start_s"] for g in state["timeline_gaps"]] == [8.0, 20.0, 24.0]
    first = state["gaps"][0]
    assert first["x1"] - first["x0"] > 20  # a band of its own, 4 of the 28 s
    state = _state(gapped_view, "jump:10")  # the gap window fills the view: its text is written in the band
    (band,) = state["gaps"]
    assert band["text_shown"] and band["text"] == GAP and band["x0"] == 0
