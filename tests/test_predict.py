"""`ecgzoo predict`: every input format gives the model's own answer; long recordings go window by window."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import torch
import wfdb
from run_helpers import cli, register_toy, shared_run

import ecgzoo
from ecgzoo.data.inputs import open_input
from ecgzoo.serving.loaded_run import load_run
from ecgzoo.serving.predict import format_time, predict_source, window_bounds


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


@pytest.fixture
def tiny(tmp_path_factory):
    return shared_run(tmp_path_factory)[0]


def _record(index: int = 0):
    data = ecgzoo.get_dataset("synthetic", records=24)
    return data.load(data.record_ids()[index])


def _direct_probs(run, signal: np.ndarray, fs: float) -> np.ndarray:
    rec = run.pipeline(ecgzoo.Record(signal.astype(np.float32), fs, "direct"))
    with torch.no_grad():
        logits = run.model(torch.from_numpy(rec.signal)[None], valid_length=torch.tensor([rec.valid_length]))
    return torch.softmax(logits, 1)[0].numpy()


def _predict_json(*argv: str) -> dict:
    code, out, err = cli("predict", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_every_format_gives_the_models_answer(tiny, tmp_path):
    run = load_run(tiny)
    rec = _record(0)
    sig = rec.signal[:, : run.input_samples]  # one window's worth
    expected = _direct_probs(run, sig, rec.fs)
    np.save(tmp_path / "r.npy", sig)
    scipy.io.savemat(tmp_path / "r.mat", {"val": sig})
    (tmp_path / "r.csv").write_text("".join(f"{v:.7f}\n" for v in sig[0]))
    wfdb.wrsamp("w", fs=rec.fs, units=["mV"], sig_name=["ECG"], p_signal=sig.T.astype(np.float64),
                fmt=["32"], adc_gain=[1e6], baseline=[0], write_dir=str(tmp_path))
    got = _predict_json(str(tiny), *(str(tmp_path / f) for f in ("r.npy", "r.mat", "r.csv", "w.hea")), "--fs", str(rec.fs))
    assert got["classes"] == run.classes
    for result in got["results"]:
        probs = np.array([result["probabilities"][c] for c in run.classes])
        np.testing.assert_allclose(probs, expected, atol=1e-3, err_msg=result["input"])
        assert result["class"] == run.classes[int(expected.argmax())]
        assert len(result["windows"]) == 1


def test_text_output_names_class_and_probabilities(tiny, tmp_path):
    run = load_run(tiny)
    rec = _record(1)
    np.save(tmp_path / "one.npy", rec.signal[:, : run.input_samples])
    code, out, err = cli("predict", str(tiny), str(tmp_path / "one.npy"), "--fs", str(rec.fs))
    assert code == 0, err
    expected = _direct_probs(run, rec.signal[:, : run.input_samples], rec.fs)
    assert out.startswith(f"{tmp_path / 'one.npy'}: {run.classes[int(expected.argmax())]}  (")
    for c, p in zip(run.classes, expected, strict=True):
        assert f"{c} {p:.3f}" in out


def test_window_bounds_cover_the_recording():
    assert window_bounds(500, 1200) == [(0, 500)]
    assert window_bounds(2400, 1200) == [(0, 1200), (1200, 2400)]
    assert window_bounds(2900, 1200) == [(0, 1200), (1200, 2400), (1700, 2900)]  # short tail moved back
    assert window_bounds(3300, 1200) == [(0, 1200), (1200, 2400), (2400, 3300)]


def test_long_recording_is_classified_window_by_window_reading_only_windows(tiny, tmp_path):
    run = load_run(tiny)
    n = run.input_samples
    parts = [_record(i).signal[:, :n] for i in range(3)]
    long = np.concatenate(parts, axis=1)
    np.save(tmp_path / "holter.npy", long)
    src = open_input(tmp_path / "holter.npy", fs=run.input_fs)
    spans = []
    inner = src._read
    src._read = lambda a, b: spans.append(b - a) or inner(a, b)
    pred = predict_source(run, src, batch_size=2)
    # never more than one window read at a time, plus the context that shows a short gap whole (bridging)
    assert max(spans) <= n + 2 * (src.bridge_limit + 1) and len(spans) == 3
    assert [(w.start_s, w.end_s) for w in pred.windows] == [(i * n / run.input_fs, (i + 1) * n / run.input_fs) for i in range(3)]
    for w, part in zip(pred.windows, parts, strict=True):
        np.testing.assert_allclose(w.probabilities, _direct_probs(run, part, run.input_fs), atol=1e-5)
    np.testing.assert_allclose(pred.probabilities, np.mean([w.probabilities for w in pred.windows], axis=0))
    code, out, err = cli("predict", str(tiny), str(tmp_path / "holter.npy"), "--fs", str(run.input_fs))
    assert code == 0, err
    assert "3 windows" in out and "timeline" in out
    segments = pred.segments()
    assert segments[0][0] == 0 and segments[-1][1] == pytest.approx(3 * n / run.input_fs)
    assert sum(s[3] for s in segments) == 3
    for start, end, cls, count in segments:
        assert f"{format_time(start)}-{format_time(end)}  {cls}  ({count} window" in out


def test_other_rate_is_resampled_with_a_note(tiny, tmp_path):
    run = load_run(tiny)
    from scipy.signal import resample_poly

    sig = _record(0).signal[:, : run.input_samples]
    np.save(tmp_path / "fast.npy", resample_poly(sig, 2, 1, axis=1).astype(np.float32))
    got = _predict_json(str(tiny), str(tmp_path / "fast.npy"), "--fs", str(2 * run.input_fs))
    (result,) = got["results"]
    assert any(f"resampled to {run.input_fs:g} Hz" in n for n in result["notes"])
    assert len(result["windows"]) == 1 and result["duration_s"] == pytest.approx(run.input_samples / run.input_fs)


def test_input_mistakes_are_clear_errors(tiny, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 1200), dtype=np.float32))
    code, _, err = cli("predict", str(tiny), str(tmp_path / "x.npy"))
    assert code == 2 and "--fs" in err and "Traceback" not in err
    code, _, err = cli("predict", str(tiny), str(tmp_path / "x.npy"), "--fs", "300")
    assert code == 2 and "2 lead(s)" in err and "takes 1" in err
    code, _, err = cli("predict", str(tmp_path), str(tmp_path / "x.npy"), "--fs", "300")
    assert code == 2 and "not an ecgzoo run directory" in err


def test_a_recording_shorter_than_the_models_input_is_said_to_be_padded(tiny, tmp_path):
    """Human output and JSON say the record was padded, and by how much; a full-length one says nothing."""
    run = load_run(tiny)
    rec = _record(2)
    short = run.input_samples // 3
    np.save(tmp_path / "short.npy", rec.signal[:, :short])
    np.save(tmp_path / "full.npy", rec.signal[:, : run.input_samples])
    fs = run.input_fs
    got = _predict_json(str(tiny), str(tmp_path / "short.npy"), str(tmp_path / "full.npy"), "--fs", str(fs))
    padded, full = got["results"]
    assert padded["padded_s"] == pytest.approx((run.input_samples - short) / fs, abs=1e-3)
    assert padded["windows"][0]["padded_s"] == padded["padded_s"]
    note = next(n for n in padded["notes"] if n.startswith("padded:"))
    assert f"({short / fs:g} s) is shorter than the model's input ({run.input_samples / fs:g} s)" in note
    assert full["padded_s"] == 0 and "padded_s" not in full["windows"][0]
    assert not any(n.startswith("padded:") for n in full["notes"])
    code, out, err = cli("predict", str(tiny), str(tmp_path / "short.npy"), "--fs", str(fs))
    assert code == 0, err
    assert f"note: padded: the recording ({short / fs:g} s)" in out
