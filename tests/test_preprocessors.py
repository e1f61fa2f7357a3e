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
