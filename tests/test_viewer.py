"""The interactive viewer: a whole recording explained window by window into one offline HTML file,
checked for its data and, where a Chromium is installed, loaded, drawn and driven in a real browser."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from run_helpers import cli
from test_predict import _toy, tiny  # noqa: F401 (fixtures: the toy plugin, the shared tiny run)

import ecgzoo
from ecgzoo.data.inputs import open_input
from ecgzoo.serving.explain_recording import explain_recording
from ecgzoo.serving.loaded_run import load_run


def _recording(run, windows: int) -> np.ndarray:
    """`windows` model inputs' worth of synthetic ECG, one record after another."""
    data = ecgzoo.get_dataset("synthetic", records=24)
    return np.concatenate([data.load(data.record_ids()[i]).signal[:, : run.input_samples] for i in range(windows)], axis=1)


def _holter(run, tmp_path: Path, windows: int = 3) -> Path:
    np.save(tmp_path / "holter.npy", _recording(run, windows))
    return tmp_path / "holter.npy"


def test_recording_maps_are_each_windows_own_explanation(tiny, tmp_path):
    run = load_run(tiny)
    path = _holter(run, tmp_path)
    cam = ecgzoo.create_explainer("cam")
    done = explain_recording(run, open_input(path, fs=run.input_fs), {"cam": cam}, target=1, batch_size=2)
    n = run.input_samples
    assert done.signal.shape == (1, 3 * n) and done.maps["cam"].shape == (3 * n,) and done.target == 1
    raw = np.load(path)
    for k, (start, end, probs) in enumerate(done.windows):
        assert (start, end) == (k * n / run.input_fs, (k + 1) * n / run.input_fs)
        rec = run.pipeline(ecgzoo.Record(raw[:, k * n:(k + 1) * n].astype(np.float32), run.input_fs, "w"))
        x = torch.from_numpy(rec.signal)[None]
        with torch.no_grad():
            expected_p = torch.softmax(run.model(x, valid_length=torch.tensor([rec.valid_length])), 1)[0].numpy()
        np.testing.assert_allclose(probs, expected_p, atol=1e-5)
        np.testing.assert_allclose(done.signal[:, k * n:(k + 1) * n], raw[:, k * n:(k + 1) * n], atol=1e-6)  # as recorded
        expected_map = cam.explain(run.model, x, torch.tensor([1]), torch.tensor([rec.valid_length]))[0].numpy()
        np.testing.assert_allclose(done.maps["cam"][k * n:(k + 1) * n], expected_map, atol=1e-5)


def _data(page: str) -> dict:
    match = re.search(r'<script id="ecgdata" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no inlined data"
    return json.loads(match.group(1))


@pytest.fixture
def viewer(tiny, tmp_path) -> tuple[Path, object]:
    run = load_run(tiny)
    path = _holter(run, tmp_path)
    code, out, err = cli("explain", str(tiny), str(path), "--fs", str(run.input_fs), "--html",
                         "--compare", "cam,gradcam", "--out", str(tmp_path / "views"))
    assert code == 0, err
    page = tmp_path / "views" / "holter.html"
    assert f"wrote {page}" in out
    return page, run


def test_html_is_self_contained_with_the_data_inlined(viewer):
    page, run = viewer
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the viewer must not load anything"
    data = _data(text)
    assert [m["name"] for m in data["maps"]] == ["cam", "gradcam"]
    assert data["fs"] == run.input_fs and data["samples"] == 3 * run.input_samples and len(data["windows"]) == 3
    lead = data["leads"][0]
    decoded = np.frombuffer(base64.b64decode(lead["data"]), dtype="<i2") * lead["scale"]
    done = explain_recording(run, open_input(page.parent.parent / "holter.npy", fs=run.input_fs),
                             {"cam": ecgzoo.create_explainer("cam")})
    np.testing.assert_allclose(decoded, done.signal[0], atol=lead["scale"] * 0.51)  # int16 quantisation
    recorded = np.load(page.parent.parent / "holter.npy")[0]  # the recording as given, not the normalised model input
    np.testing.assert_allclose(decoded, recorded, atol=lead["scale"] * 0.51)
    assert data["units"] == "mV" and "not drawn" in data["facts"]["trace"]
    for key in ("rate", "leads", "units", "model", "preprocessing", "explained class"):
        assert key in data["facts"], key


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium found on PATH (apt-get install chromium); the browser checks of the viewer need one")


def _browser(*args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=10000", "--window-size=1200,900", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _state(page: Path, actions: str) -> dict:
    done = _browser("--dump-dom", f"{page.as_uri()}?action={actions}")
    match = re.search(r'<pre id="state">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no state in the dumped DOM; chromium said: {done.stderr[-500:]}"
    return json.loads(html.unescape(match.group(1)))


def test_chromium_draws_the_trace_and_runs_zoom_and_jump(viewer):
    page, run = viewer
    window_s = run.input_samples / run.input_fs
    state = _state(page, "all")
    assert "error" not in state and state["actions"] == ["all"]
    assert state["view"]["start_s"] == 0 and state["view"]["end_s"] == pytest.approx(3 * window_s)
    assert state["dark_pixels_in_trace"] > 200 and state["drawn"] > 0
    state = _state(page, f"all,zoomin,right,jump:{1.5 * window_s},zoomin")
    assert "error" not in state and len(state["actions"]) == 5
    assert state["view"]["start_s"] == pytest.approx(1.25 * window_s, abs=0.01)  # the middle window, halved
    assert state["view"]["end_s"] == pytest.approx(1.75 * window_s, abs=0.01)
    assert state["view"]["window_class"] in run.classes


def test_chromium_screenshot_shows_the_trace(viewer, tmp_path):
    import matplotlib.image

    page, _ = viewer
    shot = tmp_path / "shot.png"
    done = _browser(f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), done.stderr[-500:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    band = pixels[200:500]  # the main canvas lies below the facts table
    dark = (band.max(axis=-1) < 0.4).mean()
    assert dark > 0.002, f"the plot area is blank ({dark:.4%} dark pixels)"


def test_a_record_shorter_than_the_window_is_drawn_unpadded_and_said_padded(tiny, tmp_path):
    run = load_run(tiny)
    short = _recording(run, 1)[:, : int(0.6 * run.input_samples)]
    np.save(tmp_path / "short.npy", short)
    done = explain_recording(run, open_input(tmp_path / "short.npy", fs=run.input_fs), {"cam": ecgzoo.create_explainer("cam")})
    assert done.signal.shape == short.shape and done.maps["cam"].shape == (short.shape[1],)
    np.testing.assert_allclose(done.signal, short, atol=1e-6)
    assert any("padded for the model; only the recorded part is drawn" in note for note in done.notes), done.notes


def test_html_honours_lead_and_a_lead_count_error_names_the_model(tiny, tmp_path):
    run = load_run(tiny)
    one = _recording(run, 2)
    np.save(tmp_path / "two.npy", np.concatenate([np.zeros_like(one), one]))
    args = ("explain", str(tiny), str(tmp_path / "two.npy"), "--fs", str(run.input_fs), "--html", "--out", str(tmp_path / "v"))
    code, out, err = cli(*args)
    assert code != 0 and f"2 lead(s), the model of {run.label} takes 1 (choose one with --lead" in err, err
    code, out, err = cli(*args, "--lead", "1")
    assert code == 0, err
    lead = _data((tmp_path / "v" / "two.html").read_text())["leads"][0]
    np.testing.assert_allclose(np.frombuffer(base64.b64decode(lead["data"]), dtype="<i2") * lead["scale"], one[0],
                               atol=lead["scale"] * 0.51)


def test_the_shipped_one_lead_model_on_a_12_lead_record_with_lead(tmp_path):
    from scipy.signal import resample_poly

    record = SHARED_DATA / "cinc2021-sample" / "E07500.hea"
    if not record.is_file():
        pytest.skip(f"{record.parent} not found (the CinC 2021 sample)")
    args = ("explain", "cnnv7-s8:physionet2017", str(record), "--html", "--out", str(tmp_path))
    code, out, err = cli(*args)
    assert code != 0 and "the model of cnnv7-s8:physionet2017 takes 1" in err and "weights" not in err, err
    code, out, err = cli(*args, "--lead", "II")
    assert code == 0, err
    data = _data((tmp_path / "E07500.html").read_text())
    assert data["fs"] == 300 and data["samples"] == 3000  # 10 s drawn at the model's rate, not the 60-s padded input
    assert "padded for the model" in data["facts"]["notes"] and "recorded at 500 Hz" in data["facts"]["rate"]
    lead = data["leads"][0]
    assert lead["name"] == "II"
    drawn = np.frombuffer(base64.b64decode(lead["data"]), dtype="<i2") * lead["scale"]
    source = open_input(record)
    expected = resample_poly(source.read(0, source.samples)[source.lead_names.index("II")].astype(np.float64), 3, 5)
    np.testing.assert_allclose(drawn[300:-300], expected[300:-300], atol=0.01)  # mV as recorded, resampled only
