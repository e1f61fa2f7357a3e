"""The synthetic dataset: deterministic, conformant, and showing the rhythm features of each class."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

import ecgzoo
from ecgzoo.testing import check_dataset_plugin


def test_conformance():
    check_dataset_plugin("synthetic", records=6, seconds=4.0)


def test_deterministic_by_seed_and_independent_of_other_records():
    a = ecgzoo.get_dataset("synthetic", records=6, seconds=4.0, seed=3)
    b = ecgzoo.get_dataset("synthetic", records=50, seconds=4.0, seed=3)
    c = ecgzoo.get_dataset("synthetic", records=6, seconds=4.0, seed=4)
    for rid in a.record_ids():
        np.testing.assert_array_equal(a.load(rid).signal, b.load(rid).signal)
    assert not np.allclose(a.load("S00001").signal, c.load("S00001").signal)


def test_shape_rate_units_and_balanced_labels():
    data = ecgzoo.get_dataset("synthetic", records=7, seconds=5.0)
    rec = data.load("S00000")
    assert rec.signal.shape == (1, 1500) and rec.fs == 300.0 and rec.units == "mV" and rec.signal.dtype == np.float32
    assert data.labels() == ["N", "A", "O", "N", "A", "O", "N"]
    assert tuple(data.classes) == ("N", "A", "O")
    per_class = ecgzoo.get_dataset("synthetic", records_per_class=4, seconds=5.0)
    assert len(per_class) == 12 and per_class.labels().count("A") == 4


def test_unknown_record_is_a_record_error():
    data = ecgzoo.get_dataset("synthetic", records=3)
    with pytest.raises(ecgzoo.RecordError, match="S00003"):
        data.load("S00003")


def _rr_cv(signal: np.ndarray, fs: float) -> float:
    peaks, _ = find_peaks(signal, height=0.5 * signal.max(), distance=int(0.3 * fs))
    rr = np.diff(peaks) / fs
    return float(rr.std() / rr.mean())


def test_af_has_irregular_rr_and_normal_is_regular():
    data = ecgzoo.get_dataset("synthetic", records=30, seconds=20.0, noise=0.0, baseline_wander=0.0)
    cv = {"N": [], "A": []}
    for rid in data.record_ids():
        label = data.label(rid)
        if label in cv:
            cv[label].append(_rr_cv(data.load(rid).signal[0], 300.0))
    assert max(cv["N"]) < 0.12 < min(cv["A"])


def test_amplitudes_are_ecg_like_millivolts():
    rec = ecgzoo.get_dataset("synthetic", records=1, seconds=10.0, noise=0.0, baseline_wander=0.0).load("S00000")
    assert 0.4 < rec.signal.max() < 2.5 and rec.signal.min() > -1.5


@pytest.mark.slow
def test_small_cnnv7_learns_synthetic_well_above_chance_in_a_minute(tmp_path):
    """The synthetic classes are learnable: cnnv7-small on CPU, under a minute, val accuracy >= 0.7 (chance 1/3)."""
    import time

    from ecgzoo.data.pipeline import Pipeline
    from ecgzoo.data.prepared import prepare
    from ecgzoo.data.splits import stratified_split

    if "cnnv7-small" not in ecgzoo.list_models():
        pytest.skip("model plugin cnnv7-small not installed")
    import torch

    torch.manual_seed(0)
    start = time.monotonic()
    data = ecgzoo.get_dataset("synthetic", records=120, seconds=8.0)
    prep = prepare(data, Pipeline([{"name": "bandpass"}, {"name": "zscore"}, {"name": "pad-crop", "seconds": 8.0}]), progress=False)
    train, val = stratified_split(prep.labels, 0.3, seed=0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=3)
    trainer = ecgzoo.create_trainer("trainer", epochs=6, batch_size=8, lr=2e-3, device="cpu", progress=False)
    trainer.train_and_checkpoint(model, prep.torch_dataset(train), prep.torch_dataset(val), prep.classes, tmp_path / "ckpt")
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(prep.signals[val]))
        predicted = model(x).argmax(1).numpy()
    accuracy = float((predicted == prep.labels[val]).mean())
    elapsed = time.monotonic() - start
    assert accuracy >= 0.7, f"val accuracy {accuracy:.2f}"
    assert elapsed < 60 * 2, f"took {elapsed:.0f} s (target: about a minute on 2 CPU cores)"
