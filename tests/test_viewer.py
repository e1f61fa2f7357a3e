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
from run_helpers import cli
from test_predict import _toy, tiny  # noqa: F401 (fixtures: the toy plugin, the shared tiny run)

import ecgzoo
from ecgzoo.explain_recording import explain_recording
from ecgzoo.inputs import open_input
from ecgzoo.run_dir import load_run


def _holter(run, tmp_path: Path, windows: int = 3) -> Path:
    data = ecgzoo.get_dataset("synthetic", records=24)
    n = run.input_samples
    parts = [data.load(data.record_ids()[i]).signal[:, :n] for i in range(windows)]
    np.save(tmp_path / "holter.npy", np.concatenate(parts, axis=1))
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
        np.testing.assert_allclose(done.signal[:, k * n:(k + 1) * n], rec.signal, atol=1e-6)
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
