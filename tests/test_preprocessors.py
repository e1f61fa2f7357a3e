"""Preprocessor plugins: conformance and behaviour against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

import ecgzoo
from ecgzoo.testing import check_preprocessor_plugin


def _record(samples: int = 900, fs: float = 300.0, leads: int = 1, seed: int = 0, **kw) -> ecgzoo.Record:
    rng = np.random.default_rng(seed)
    return ecgzoo.Record(signal=rng.normal(0.2, 0.5, (leads, samples)).astype(np.float32), fs=fs, record_id="R1", label="N", **kw)


def test_pad_crop_default_is_60_s_zero_padded_with_valid_length():
    rec = _record(900)
    out = check_preprocessor_plugin("pad-crop", rec)
    assert out.signal.shape == (1, 18000) and out.valid_length == 900
    np.testing.assert_array_equal(out.signal[:, :900], rec.signal)
    assert not out.signal[:, 900:].any()


def test_pad_crop_crops_long_records_and_uses_the_record_rate():
    rec = _record(3000, fs=100.0, leads=2)
    out = ecgzoo.create_preprocessor("pad-crop", seconds=10.0)(rec)
    assert out.signal.shape == (2, 1000) and out.valid_length == 1000
    np.testing.assert_array_equal(out.signal, rec.signal[:, :1000])
    out = ecgzoo.create_preprocessor("pad-crop", samples=1200)(rec)
    assert out.signal.shape == (2, 1200)


def test_pad_crop_repads_from_the_valid_part_only():
    rec = _record(1000).replace(valid_length=600)
    out = ecgzoo.create_preprocessor("pad-crop", samples=800)(rec)
    assert out.valid_length == 600 and not out.signal[:, 600:].any()


def test_zscore_matches_hand_computation_on_valid_part():
    rec = _record(1000, leads=2).replace(valid_length=700)
    out = check_preprocessor_plugin("zscore", rec)
    v = rec.signal[:, :700].astype(np.float64)
    np.testing.assert_allclose(out.signal[:, :700], (v - v.mean(1, keepdims=True)) / v.std(1, keepdims=True), atol=1e-5)
    assert not out.signal[:, 700:].any() and out.units == "a.u."


def test_zscore_flat_lead_is_a_record_error():
    rec = ecgzoo.Record(signal=np.ones((1, 500), np.float32), fs=300.0, record_id="FLAT", label="N")
    with pytest.raises(ecgzoo.RecordError, match="FLAT.*flat"):
        ecgzoo.create_preprocessor("zscore")(rec)


def _sine(freq: float, seconds: float = 20.0, fs: float = 300.0) -> ecgzoo.Record:
    t = np.arange(int(seconds * fs)) / fs
    return ecgzoo.Record(np.sin(2 * np.pi * freq * t).astype(np.float32)[None], fs, "SINE", "N")


def _rms_gain(freq: float, **config) -> float:
    rec = _sine(freq)
    out = ecgzoo.create_preprocessor("bandpass", **config)(rec).signal[0, 600:-600].astype(np.float64)
    return float(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(rec.signal[0, 600:-600].astype(np.float64) ** 2)))


@pytest.mark.parametrize("freq", [6.0, 10.0, 17.0, 30.0, 40.0])
def test_bandpass_passes_in_band_sines_within_1_percent(freq):
    assert abs(_rms_gain(freq) - 1.0) < 0.01


@pytest.mark.parametrize("freq", [0.3, 1.0, 55.0, 100.0])
def test_bandpass_attenuates_out_of_band_sines(freq):
    assert _rms_gain(freq) < 0.05


def test_bandpass_is_zero_phase_and_conformant():
    rec = _sine(10.0)
    out = check_preprocessor_plugin("bandpass", rec)
    # zero phase: the filtered sine lines up with the input sample for sample (no delay)
    np.testing.assert_allclose(out.signal[0, 600:-600], rec.signal[0, 600:-600], atol=0.01)


def test_bandpass_rejects_cutoff_above_nyquist():
    with pytest.raises(ecgzoo.RecordError, match="SINE.*half the sampling rate"):
        ecgzoo.create_preprocessor("bandpass", high_hz=45.0)(_sine(5.0, fs=80.0))
    with pytest.raises(ecgzoo.ConfigError, match="low_hz"):
        ecgzoo.create_preprocessor("bandpass", low_hz=50.0, high_hz=40.0)


def _synthetic(label_index: int = 0, seconds: float = 10.0) -> ecgzoo.Record:
    data = ecgzoo.get_dataset("synthetic", records=3, seconds=seconds, noise=0.01, baseline_wander=0.0)
    return data.load(data.record_ids()[label_index])


def test_rpeaks_finds_the_beats_of_a_synthetic_record():
    rec = _synthetic(0)
    out = check_preprocessor_plugin("rpeaks", rec)
    peaks = out.meta["rpeaks"]
    # ground truth: local maxima of the noise-free R waves (amplitude > half the maximum)
    from scipy.signal import find_peaks

    truth, _ = find_peaks(rec.signal[0], height=0.5 * rec.signal[0].max(), distance=90)
    assert peaks.dtype == np.int64 and abs(len(peaks) - len(truth)) <= 1
    matched = [np.min(np.abs(truth - p)) <= 3 for p in peaks]
    assert np.mean(matched) >= 0.95
    np.testing.assert_array_equal(out.signal, rec.signal)


def test_rpeaks_on_a_flat_record_is_a_clear_record_error():
    rec = ecgzoo.Record(np.zeros((1, 3000), np.float32), 300.0, "FLAT", "N")
    with pytest.raises(ecgzoo.RecordError, match="FLAT.*beat"):
        ecgzoo.create_preprocessor("rpeaks")(rec)


def test_rpeak_normalize_divides_by_median_r_amplitude():
    rec = _synthetic(0).replace(meta={"rpeaks": np.array([100, 400, 700])})
    amplitude = np.median(np.abs(rec.signal[0, [100, 400, 700]]))
    out = check_preprocessor_plugin("rpeak-normalize", rec)
    np.testing.assert_allclose(out.signal, rec.signal / amplitude, rtol=1e-5)
    assert out.units == "a.u."
    with pytest.raises(ecgzoo.RecordError, match="put the 'rpeaks' step before"):
        ecgzoo.create_preprocessor("rpeak-normalize")(_synthetic(0))


def test_default_pipeline_normalises_r_peaks_to_one():
    from ecgzoo.data.pipeline import Pipeline

    data = ecgzoo.get_dataset("synthetic", records=3)
    out = Pipeline.for_dataset(data)(_synthetic(0, seconds=20.0))
    assert out.signal.shape == (1, 18000) and out.valid_length == 6000
    assert np.median(np.abs(out.signal[0, out.meta["rpeaks"]])) == pytest.approx(1.0, rel=1e-5)


def test_resample_changes_rate_length_and_keeps_sines():
    rec = _sine(5.0, seconds=4.0, fs=500.0).replace(meta={"rpeaks": np.array([500, 1000])})
    out = check_preprocessor_plugin("resample", rec, fs=300.0)
    assert out.fs == 300.0 and out.signal.shape == (1, 1200) and out.valid_length == 1200
    t = np.arange(1200) / 300.0
    np.testing.assert_allclose(out.signal[0, 50:-50], np.sin(2 * np.pi * 5.0 * t)[50:-50], atol=2e-3)
    assert out.meta["rpeaks"].tolist() == [300, 600]


def test_fast_local_peaks_equals_wfdb_including_ties():
    from wfdb.processing.peaks import find_local_peaks as wfdb_version

    from ecgzoo_plugins.rpeaks import find_local_peaks

    rng = np.random.default_rng(0)
    for _ in range(200):
        radius = int(rng.integers(1, 30))
        sig = np.round(rng.normal(size=int(rng.integers(2 * radius + 2, 500))), int(rng.integers(0, 3)))  # rounding: ties
        np.testing.assert_array_equal(find_local_peaks(sig, radius), wfdb_version(sig, radius))


def test_detector_gives_wfdb_xqrs_peaks_on_real_records(sample_dir):
    import contextlib
    import io

    from wfdb import processing

    from ecgzoo_plugins.rpeaks import detect

    data = ecgzoo.get_dataset("physionet2017", path=str(sample_dir), download=False)
    bandpass = ecgzoo.create_preprocessor("bandpass")
    for rid in data.record_ids()[:12]:
        x = bandpass(data.load(rid)).signal[0].astype(np.float64)
        with contextlib.redirect_stdout(io.StringIO()):
            xqrs = processing.XQRS(sig=x, fs=300.0)
            xqrs.detect(verbose=False)  # wfdb's own, unpatched
        expected = np.unique(processing.correct_peaks(x, np.asarray(xqrs.qrs_inds, dtype=np.int64), search_radius=15,
                                                      smooth_window_size=45, peak_dir="compare"))
        np.testing.assert_array_equal(detect(x, 300.0), expected[(expected >= 0) & (expected < x.size)])


def test_rpeaks_falls_back_to_gqrs_after_an_early_artefact():
    rec = _synthetic(0, seconds=20.0)
    truth = len(ecgzoo.create_preprocessor("rpeaks")(rec).meta["rpeaks"])
    x = rec.signal.copy()
    x[0, 150:450] += 10 * np.sin(2 * np.pi * 8 * np.arange(300) / 300)  # a 10 mV burst in the first 1.5 s
    damaged = rec.replace(signal=x)
    out = ecgzoo.create_preprocessor("rpeaks", min_beats=10)(damaged)
    assert out.meta["rpeak_detector"] == "gqrs" and abs(len(out.meta["rpeaks"]) - truth) <= 2
    with pytest.raises(ecgzoo.RecordError, match="need 10; XQRS\\)"):
        ecgzoo.create_preprocessor("rpeaks", min_beats=10, fallback="none")(damaged)


def test_scale_removes_each_leads_mean_and_multiplies_by_the_factor():
    rec = _record(1000, fs=100.0, leads=3).replace(valid_length=800)
    out = check_preprocessor_plugin("scale", rec, factor=4.0)
    valid = rec.signal[:, :800].astype(np.float64)
    np.testing.assert_allclose(out.signal[:, :800], (valid - valid.mean(axis=1, keepdims=True)) * 4.0, rtol=1e-5, atol=1e-6)
    assert not out.signal[:, 800:].any() and out.units == "mV x 4"


def test_scale_keeps_relative_voltages_and_flat_leads():
    """Unlike zscore, a lead of twice the voltage stays twice as large, and a flat lead is no error."""
    sig = np.zeros((3, 500), dtype=np.float32)
    sig[0] = np.sin(np.arange(500) / 10.0) + 1.0
    sig[1] = 2.0 * np.sin(np.arange(500) / 10.0)
    out = ecgzoo.create_preprocessor("scale")(ecgzoo.Record(signal=sig, fs=100.0, record_id="R", label=None))
    np.testing.assert_allclose(out.signal[1], 2.0 * out.signal[0], atol=1e-4)
    assert not out.signal[2].any()
