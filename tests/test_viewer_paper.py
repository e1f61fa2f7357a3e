"""The viewer for clinicians and multi-label 12-lead models: sigmoid probabilities, one timeline track per
label with its threshold, each lead in its own calibrated panel (3 x 4 + II rhythm, or rows), and a trace
drawn as one connected line at every zoom; pixels checked on the canvases Chromium drew."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from scipy import ndimage
from test_viewer import _data, _state

import ecgzoo
from ecgzoo.cli.cmd_explain import view_arguments
from ecgzoo.core.leads import STANDARD_12
from ecgzoo.core.manifest import InputContract
from ecgzoo.core.tasks import Task
from ecgzoo.data.inputs import open_input
from ecgzoo.report.figures_leads import CLINICAL_3X4
from ecgzoo.report.viewer import clinical_rows, write_viewer
from ecgzoo.serving.explain_recording import explain_recording
from ecgzoo.serving.loaded_run import LoadedRun

PX_PER_MV = 10 * 96 / 25.4  # 10 mm/mV at 96 CSS pixels per inch
CLASSES = ["A", "B", "C"]
THRESHOLDS = [0.3, 0.5, 0.7]


def _multi_label_run(tmp_path: Path) -> LoadedRun:
    torch.manual_seed(0)
    model = ecgzoo.create_model("inception1d", num_classes=3, in_leads=12, depth=3, filters=2, bottleneck=2).eval()
    contract = InputContract(fs=100.0, leads=12, lead_names=list(STANDARD_12), window_seconds=2.0,
                             pipeline=[{"name": "zscore"}, {"name": "pad-crop", "seconds": 2.0}])
    return LoadedRun(path=tmp_path, model=model, classes=CLASSES, config={}, input=contract, info={"model": "inception1d"},
                     label="toy-ml:test", task=Task.multi_label(CLASSES), thresholds=THRESHOLDS)


def _twelve_leads(seconds: float, fs: float) -> np.ndarray:
    """Lead j: a 40-ms triangular pulse of (0.2 + 0.1 j) mV every 0.5 s on a flat baseline at 0."""
    period = int(0.5 * fs)
    pulse = np.clip(1 - np.abs(np.arange(int(seconds * fs)) % period - period // 2) / (0.02 * fs), 0, None)
    return np.stack([(0.2 + 0.1 * j) * pulse for j in range(12)]).astype(np.float32)


@pytest.fixture
def multi(tmp_path):
    run = _multi_label_run(tmp_path)
    np.save(tmp_path / "twelve.npy", _twelve_leads(6.0, 100.0) + 0.01 * np.random.default_rng(0).standard_normal((12, 600)))
    done = explain_recording(run, open_input(tmp_path / "twelve.npy", fs=100.0), {"saliency": ecgzoo.create_explainer("saliency")})
    return run, done


def test_multi_label_windows_get_a_sigmoid_per_label_not_a_softmax(multi):
    """Failed before the fix: the viewer's probabilities were a softmax over the labels."""
    run, done = multi
    raw = np.load(run.path / "twelve.npy")
    assert len(done.windows) == 3
    for k, (_, _, probs) in enumerate(done.windows):
        rec = run.pipeline(ecgzoo.Record(raw[:, k * 200:(k + 1) * 200].astype(np.float32), 100.0, "w"))
        with torch.no_grad():
            logits = run.model(torch.from_numpy(rec.signal)[None], valid_length=torch.tensor([200]))[0]
        np.testing.assert_allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-5)
    assert not np.allclose([p.sum() for _, _, p in done.windows], 1.0)


def test_multi_label_view_carries_the_thresholds_and_the_12_lead_layout(multi, tmp_path):
    run, done = multi
    page = write_viewer(tmp_path / "ml.html", **view_arguments(run, done, "twelve.npy", {"saliency": None}))
    data = _data(page.read_text())
    assert data["multi_label"] is True and data["thresholds"] == THRESHOLDS
    assert [lead["name"] for lead in data["leads"]] == list(STANDARD_12)
    assert data["clinical"] == [[STANDARD_12.index(n) for n in row] for row in CLINICAL_3X4] + [[1]]
    assert clinical_rows(["i", "ii", "iii", "AVR", "AVL", "AVF", *[f"v{k}" for k in range(1, 7)]]) == data["clinical"]
    assert clinical_rows(["I", "II"]) is None


def _png(url: str) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1])), format="png")[..., :3]


def test_chromium_draws_one_timeline_track_per_label_with_its_threshold(multi, tmp_path):
    run, done = multi
    page = write_viewer(tmp_path / "ml.html", **view_arguments(run, done, "twelve.npy", {"saliency": None}))
    state = _state(page, "snapshot")
    img, tracks = _png(state["snapshots"][0]["timeline"]), state["snapshots"][0]["tracks"]
    assert [t["label"] for t in tracks] == CLASSES and [t["threshold"] for t in tracks] == THRESHOLDS
    width = img.shape[1]
    for k, track in enumerate(tracks):
        top, h = track["top"], track["height"]
        line = top + h - round(THRESHOLDS[k] * h)
        assert (img[line, width // 2] < 0.05).all(), f"no threshold line for {track['label']}"
        for w, (start, end, p) in enumerate(done.windows):
            x = int((start + end) / 2 / 6.0 * width)
            coloured = np.abs(img[top:top + h, x] - 0xF3 / 255).max(axis=1) > 0.02  # the track's grey where no bar
            coloured[line - top] = False  # the threshold line
            bar = h - int(np.argmax(coloured)) if coloured.any() else 0
            assert abs(bar - round(p[k] * h)) <= 1, (track["label"], w, bar, p[k])
    p = done.windows[0][2]  # the view (10 s) is centred in the first window: its labels at or above their thresholds
    above = sorted((k for k in range(3) if p[k] >= THRESHOLDS[k]), key=lambda k: -p[k])
    assert state["view"]["window_class"] == (",".join(CLASSES[k] for k in above) or "-")


def _dark(img: np.ndarray) -> np.ndarray:
    return img.max(axis=-1) < 0.4


def test_chromium_draws_each_lead_in_its_own_calibrated_panel(tmp_path):
    signal = _twelve_leads(10.0, 250.0)
    page = write_viewer(tmp_path / "p.html", title="12 leads", signal=signal, fs=250.0, units="mV", maps={}, classes=["N", "A"],
                        windows=[(0.0, 10.0, [0.5, 0.5])], facts={}, lead_names=list(STANDARD_12))
    clinical, rows = _state(page, "snapshot,layout:rows,snapshot")["snapshots"]
    assert clinical["view"]["layout"] == "3x4" and rows["view"]["layout"] == "rows"
    _check_panels(clinical, [list(r) for r in CLINICAL_3X4] + [["II"]])
    _check_panels(rows, [[n] for n in STANDARD_12])


def _check_panels(snapshot: dict, expected: list[list[str]]) -> None:
    """Each cell of the layout holds its own lead's pulse: baseline mid-panel, height in mV at 10 mm/mV."""
    img, rows = _png(snapshot["main"]), snapshot["layout"]["rows"]
    assert snapshot["layout"]["px_per_mv"] == pytest.approx(PX_PER_MV)
    assert [[c["lead"] for c in row["cells"]] for row in rows] == expected
    for row in rows:
        for cell in row["cells"]:
            dark = _dark(img[row["top"] + 1:row["top"] + row["height"] - 1, cell["x0"] + 3:cell["x1"] - 3])
            ys = np.flatnonzero(dark.any(axis=1))
            assert ys.size, f"panel of {cell['lead']} is empty"
            baseline, peak = row["height"] / 2 - 1, (0.2 + 0.1 * STANDARD_12.index(cell["lead"])) * PX_PER_MV
            assert abs(ys.max() - baseline) <= 2, (cell["lead"], ys.max(), baseline)  # flat baseline on the panel's middle
            assert abs((ys.max() - ys.min()) - peak) <= 2.5, (cell["lead"], ys.max() - ys.min(), peak)  # its own pulse, in mV


def _qrs_recording(seconds: float = 60.0, fs: float = 300.0) -> np.ndarray:
    """A beat every 0.8 s: R of 1.5 mV reached in 5 samples, S of -0.4 mV, small T wave and noise."""
    n = int(seconds * fs)
    x = 0.1 * np.sin(2 * np.pi * np.arange(n) / (0.8 * fs)) + 0.005 * np.random.default_rng(1).standard_normal(n)
    qrs = np.interp(np.arange(16), [0, 5, 10, 15], [0.0, 1.5, -0.4, 0.0])
    for a in range(60, n - 16, int(0.8 * fs)):
        x[a:a + 16] += qrs
    return x[None].astype(np.float32)


def test_chromium_draws_the_trace_as_one_connected_line(tmp_path):
    """Failed before the fix: zoomed out, the QRS up- and down-strokes were broken into dashes."""
    page = write_viewer(tmp_path / "q.html", title="QRS", signal=_qrs_recording(), fs=300.0, units="mV", maps={},
                        classes=["N", "A"], windows=[(0.0, 60.0, [0.9, 0.1])], facts={})
    snapshots = _state(page, "snapshot,paper,snapshot,all,snapshot,zoomin,zoomin,zoomin,zoomin,snapshot")["snapshots"]
    spans = [s["view"]["end_s"] - s["view"]["start_s"] for s in snapshots]
    width = _png(snapshots[0]["main"]).shape[1]
    assert spans[0] == 10 and spans[1] == pytest.approx(width / (96 / 25.4) / 25, abs=0.01) and spans[2] == 60
    assert spans[3] * 300 / width < 1.5  # zoomed in far enough to draw every sample
    for snapshot, span in zip(snapshots, spans, strict=True):  # min/max columns at 10 s, 25 mm/s and 60 s; the line at 3.75 s
        img, row = _png(snapshot["main"]), snapshot["layout"]["rows"][0]
        dark = _dark(img[row["top"] + 1:row["top"] + row["height"] - 1, 1:-1])
        count = ndimage.label(dark, structure=np.ones((3, 3)))[1]
        assert count == 1, f"{span:g}-s view: the trace is drawn in {count} pieces"
        ys = np.flatnonzero(dark.any(axis=1))
        assert ys.max() - ys.min() >= 1.9 * PX_PER_MV - 3  # R to S, 1.9 mV, reached by the one line


def test_a_500_hz_12_lead_record_is_drawn_as_recorded_at_the_models_rate(tmp_path):
    from conftest import SHARED_DATA
    from scipy.signal import resample_poly

    record = SHARED_DATA / "cinc2021-sample" / "E07500.hea"
    if not record.is_file():
        pytest.skip(f"{record.parent} not found (the CinC 2021 sample)")
    run, source = _multi_label_run(tmp_path), open_input(record)
    done = explain_recording(run, source, {"saliency": ecgzoo.create_explainer("saliency")})
    assert done.fs == 100.0 and done.source_fs == 500.0 and done.signal.shape == (12, 1000) and len(done.windows) == 5
    assert done.lead_names == list(STANDARD_12) and any("resampled to 100 Hz" in note for note in done.notes)
    raw = source.read(0, source.samples).astype(np.float64)
    np.testing.assert_allclose(done.signal[:, 100:-100], resample_poly(raw, 1, 5, axis=1)[:, 100:-100], atol=0.01)
    assert all(p is not None and not np.isclose(p.sum(), 1.0) for _, _, p in done.windows)


def test_the_viewer_matches_a_12_lead_recordings_leads_by_name_as_predict_does(tmp_path):
    """explain --html had its own lead check (count only), so a 12-lead file in another order was refused after
    preprocessing, where predict and the PNG path of explain match the leads by name."""
    from test_predict_12lead import _write

    signal = np.concatenate([_twelve_leads(2.0, 100.0), _twelve_leads(2.0, 100.0)[:, ::-1]], axis=1).T  # (samples, leads)
    names = list(STANDARD_12)
    original = _write(tmp_path, "orig", signal, names, fs=100)
    order = list(range(11, -1, -1))
    reordered = _write(tmp_path, "rev", signal[:, order], [names[i].upper() for i in order], fs=100)
    run, cam = _multi_label_run(tmp_path), {"saliency": ecgzoo.create_explainer("saliency")}
    by_order, by_name = explain_recording(run, open_input(original), cam), explain_recording(run, open_input(reordered), cam)
    for (_, _, p), (_, _, q) in zip(by_order.windows, by_name.windows, strict=True):
        np.testing.assert_allclose(q, p, atol=1e-5)
    assert any("matched by name" in note for note in by_name.notes)
