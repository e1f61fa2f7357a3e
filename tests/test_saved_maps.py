"""`ecgzoo explain --save-maps`: every class's map of a whole (long, two-lead) WFDB recording at its own rate,
written window by window in bounded memory; rhythm annotations read from `.atr` and shown by the viewer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import wfdb
from run_helpers import cli
from test_predict import _toy, tiny  # noqa: F401 (fixtures: the toy plugin, the shared tiny run)

import ecgzoo
from ecgzoo.data.annotations import Episode, episodes_of, rhythm_episodes, rhythm_mask
from ecgzoo.data.inputs import open_input, select_lead
from ecgzoo.serving.loaded_run import load_run
from ecgzoo.serving.predict import pipeline_for
from ecgzoo.serving.saved_maps import save_recording_maps, to_source_rate

FS = 200.0  # the recording's rate; the tiny run's model runs at another


def _long_record(run, folder: Path, windows: float, name: str = "holter", rhythm: bool = True) -> Path:
    """A two-lead WFDB record `windows` model inputs long at 200 Hz (lead 1 the ECG, lead 0 its negative),
    with an AF episode annotated over its second quarter when `rhythm`."""
    data = ecgzoo.get_dataset("synthetic", records=24, fs=FS)
    seconds = run.input_samples / run.input_fs
    n = int(windows * seconds * FS)
    ecg = np.concatenate([data.load(data.record_ids()[i % 24]).signal[0] for i in range(int(np.ceil(n / (30 * FS))) + 1)])[:n]
    wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["I", "II"], p_signal=np.stack([-ecg, ecg], 1).astype(np.float64),
                fmt=["16", "16"], adc_gain=[1000, 1000], baseline=[0, 0], write_dir=str(folder))
    if rhythm:
        marks = [0, n // 4, n // 2]
        wfdb.wrann(name, "atr", np.array(marks), symbol=["+"] * 3, aux_note=["(N", "(AFIB", "(N"], write_dir=str(folder))
    return folder / f"{name}.hea"


def test_the_saved_maps_are_each_windows_maps_for_every_class_at_the_recordings_rate(tiny, tmp_path):
    run = load_run(tiny)
    record = _long_record(run, tmp_path, 2.3)  # a 0.3-window tail: moved back to full length
    code, out, err = cli("explain", str(tiny), str(record), "--lead", "II", "--explainer", "cam", "--compare", "cam,gradcam",
                         "--save-maps", str(tmp_path / "maps"))
    assert code == 0, err
    source = select_lead(open_input(record), "II")
    maps = np.load(tmp_path / "maps" / "holter_cam.npy")
    meta = json.loads((tmp_path / "maps" / "holter_cam.json").read_text())
    assert maps.dtype == np.float32 and maps.shape == (len(run.classes), source.samples)
    assert meta["classes"] == run.classes and meta["fs"] == FS and meta["explainer"] == "cam" and meta["shape"] == list(maps.shape)
    assert meta["model"] == run.label and len(meta["windows"]) == 3 and (tmp_path / "maps" / "holter_gradcam.npy").is_file()
    assert not list((tmp_path / "maps").glob(".*part"))  # written in place of temporary files only when complete
    window = int(round(run.input_samples / run.input_fs * FS))
    pipeline = pipeline_for(run, FS)[0]
    expected = np.full_like(maps, np.nan)
    for k, (a, b) in enumerate([(0, window), (window, 2 * window), (source.samples - window, source.samples)]):
        rec = pipeline(ecgzoo.Record(source.read(a, b), FS, "w"))  # the last window moved back to full length
        x, vl = torch.from_numpy(rec.signal)[None], torch.tensor([rec.valid_length])
        for c in range(len(run.classes)):
            cam = ecgzoo.create_explainer("cam").explain(run.model, x, torch.tensor([c]), vl)[0].numpy()
            expected[c, a:b] = np.interp(np.arange(b - a) * run.input_fs / FS, np.arange(rec.valid_length), cam[:rec.valid_length])
        with torch.no_grad():
            p = run.task.probabilities(run.model(x, valid_length=vl))[0].numpy()
        np.testing.assert_allclose(meta["windows"][k]["probabilities"], p, atol=1e-4)
    np.testing.assert_allclose(maps, expected, atol=1e-5)  # the last window's map over its overlap with the one before


def test_memory_holds_a_batch_of_windows_never_the_recording(tiny, tmp_path, monkeypatch):
    import weakref

    import ecgzoo.serving.saved_maps

    run = load_run(tiny)
    refs: list[weakref.ref] = []
    most = []
    prepare = ecgzoo.serving.saved_maps.prepare_window

    def counted(*args):
        out = prepare(*args)
        refs.append(weakref.ref(out[2]))
        most.append(sum(r() is not None for r in refs))
        return out

    monkeypatch.setattr(ecgzoo.serving.saved_maps, "prepare_window", counted)
    source = select_lead(open_input(_long_record(run, tmp_path, 40, "long", rhythm=False)), "II")
    save_recording_maps(run, source, {"cam": ecgzoo.create_explainer("cam")}, tmp_path / "maps", batch_size=3)
    assert len(most) == 40 and max(most) <= 2 * 3  # the batch being explained and the next one being read
    maps = np.load(tmp_path / "maps" / "long_cam.npy", mmap_mode="r")
    assert isinstance(maps, np.memmap) and maps.shape[1] == source.samples and np.isfinite(maps).all()


def test_to_source_rate_interpolates_linearly_and_keeps_the_rate_when_equal():
    v = np.array([[0.0, 3.0, 6.0]])
    np.testing.assert_allclose(to_source_rate(v, 300.0, 200.0, 3), [[0.0, 4.5, 6.0]])  # positions 0, 1.5, 3 (held)
    np.testing.assert_array_equal(to_source_rate(v, 200.0, 200.0, 2), [[0.0, 3.0]])


def test_rhythm_episodes_run_from_each_rhythm_mark_to_the_next_and_the_end(tmp_path):
    wfdb.wrann("r", "atr", np.array([100, 250, 300, 400]), symbol=["+", "N", "+", "+"], aux_note=["(N", "", "(AFIB", "(AFL"],
               write_dir=str(tmp_path))
    episodes = rhythm_episodes(tmp_path / "r.hea", 1000)
    assert episodes == [Episode(100, 300, "N"), Episode(300, 400, "AFIB"), Episode(400, 1000, "AFL")]
    mask = rhythm_mask(episodes, 1000)
    assert mask.sum() == 700 and episodes_of(mask) == [(300, 1000)]
    assert rhythm_episodes(tmp_path / "none.hea", 1000) is None


def test_the_viewer_carries_and_draws_the_annotated_rhythm(tiny, tmp_path):
    run = load_run(tiny)
    record = _long_record(run, tmp_path, 2.0)
    code, out, err = cli("explain", str(tiny), str(record), "--lead", "1", "--html", "--out", str(tmp_path / "v"))
    assert code == 0, err
    page = (tmp_path / "v" / "holter.html").read_text()
    data = json.loads(re.search(r'<script id="ecgdata" type="application/json">(.*?)</script>', page, re.S).group(1))
    n = open_input(record).samples
    assert [(a["rhythm"], a["start"], a["end"]) for a in data["annotations"]] == [
        ("N", 0.0, n // 4 / FS), ("AFIB", n // 4 / FS, n // 2 / FS), ("N", n // 2 / FS, n / FS)]
    assert "drawAnnotations(" in page


def test_chromium_draws_the_annotation_track(tiny, tmp_path):
    from test_viewer import _state

    run = load_run(tiny)
    record = _long_record(run, tmp_path, 2.0)
    assert cli("explain", str(tiny), str(record), "--lead", "1", "--html", "--out", str(tmp_path / "v"))[0] == 0
    state = _state(tmp_path / "v" / "holter.html", "all")
    assert "error" not in state and state["annotations_drawn"] == 3


def test_a_recording_without_annotations_has_no_track(tiny, tmp_path):
    run = load_run(tiny)
    record = _long_record(run, tmp_path, 1.0, rhythm=False)
    assert cli("explain", str(tiny), str(record), "--lead", "1", "--html", "--out", str(tmp_path / "v"))[0] == 0
    page = (tmp_path / "v" / "holter.html").read_text()
    assert json.loads(re.search(r'application/json">(.*?)</script>', page, re.S).group(1))["annotations"] == []


def test_a_damaged_annotation_file_is_named_in_the_error(tiny, tmp_path):
    run = load_run(tiny)
    record = _long_record(run, tmp_path, 1.0, rhythm=False)
    (tmp_path / "holter.atr").write_bytes(b"\xff" * 7)
    code, _, err = cli("explain", str(tiny), str(record), "--lead", "1", "--html", "--out", str(tmp_path / "v"))
    assert code != 0 and "holter.atr: not a readable WFDB annotation file" in err, err
