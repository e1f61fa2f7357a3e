"""Reading recordings for `ecgzoo predict`: every format, rates stated or given, never misread."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import wfdb

from ecgzoo.data.inputs import open_input
from ecgzoo.data.signal_source import InputError, MissingSamples


def _signal(leads: int = 1, n: int = 900) -> np.ndarray:
    t = np.arange(n) / 300.0
    return np.stack([np.sin(2 * np.pi * (k + 1) * t) * (k + 1) for k in range(leads)]).astype(np.float32)


def test_npy_is_memory_mapped_and_needs_a_rate(tmp_path):
    sig = _signal(2, 1200)
    np.save(tmp_path / "a.npy", sig)
    with pytest.raises(InputError, match=r"a\.npy.*--fs"):
        open_input(tmp_path / "a.npy")
    src = open_input(tmp_path / "a.npy", fs=300)
    assert (src.fs, src.leads, src.samples) == (300.0, 2, 1200)
    np.testing.assert_array_equal(src.read(100, 250), sig[:, 100:250])
    # samples-first layout (samples, leads) is recognised by its short second axis
    np.save(tmp_path / "b.npy", sig.T.copy())
    src = open_input(tmp_path / "b.npy", fs=300)
    assert (src.leads, src.samples) == (2, 1200)
    np.testing.assert_array_equal(src.read(0, 1200), sig)


def test_npy_read_does_not_load_the_whole_file(tmp_path):
    np.save(tmp_path / "long.npy", np.zeros((1, 50_000), dtype=np.float32))
    src = open_input(tmp_path / "long.npy", fs=300)
    sliced = [c.cell_contents for c in src._read.__closure__]  # the array the reader slices
    assert any(isinstance(a, np.memmap) for a in sliced)


def test_csv_rate_from_time_column_and_conflict_with_fs(tmp_path):
    sig = _signal(1, 600)[0]
    t = np.arange(600) / 250.0
    path = tmp_path / "rec.csv"
    path.write_text("time,ecg\n" + "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(t, sig, strict=True)))
    src = open_input(path)
    assert src.fs == pytest.approx(250.0)
    np.testing.assert_allclose(src.read(0, 600)[0], sig, atol=1e-6)
    with pytest.raises(InputError, match=r"says 250 Hz but --fs 300"):
        open_input(path, fs=300)


def test_csv_without_time_needs_fs_and_reads_leads_as_columns(tmp_path):
    sig = _signal(2, 300)
    path = tmp_path / "two.csv"
    path.write_text("".join(f"{a},{b}\n" for a, b in sig.T))
    with pytest.raises(InputError, match="--fs"):
        open_input(path)
    src = open_input(path, fs=300)
    assert (src.leads, src.samples) == (2, 300)
    np.testing.assert_allclose(src.read(0, 300), sig, atol=1e-6)


def test_bad_csv_names_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ecg\n1.0\nabc\n")
    with pytest.raises(InputError, match=r"bad\.csv.*numeric"):
        open_input(path, fs=300)


def test_wfdb_record_rate_and_millivolts_from_header(tmp_path):
    sig = _signal(1, 900)
    wfdb.wrsamp("rec", fs=300, units=["mV"], sig_name=["ECG"], p_signal=sig.T.astype(np.float64),
                fmt=["16"], adc_gain=[1000.0], baseline=[0], write_dir=str(tmp_path))
    for given in (tmp_path / "rec.hea", tmp_path / "rec"):
        src = open_input(given)
        assert (src.fs, src.leads, src.samples) == (300.0, 1, 900)
        np.testing.assert_allclose(src.read(300, 600), sig[:, 300:600], atol=1e-3)
    with pytest.raises(InputError, match="says 300 Hz"):
        open_input(tmp_path / "rec.hea", fs=500)


def test_plain_mat_val_with_gain(tmp_path):
    sig = _signal(1, 600)
    scipy.io.savemat(tmp_path / "x.mat", {"val": (sig * 1000).astype(np.int16)})
    src = open_input(tmp_path / "x.mat", fs=300, gain=1000)
    np.testing.assert_allclose(src.read(0, 600), sig, atol=2e-3)
    with pytest.raises(InputError, match="--fs"):
        open_input(tmp_path / "x.mat")


def test_physionet_mat_reads_through_its_header(sample_dir):
    src = open_input(sample_dir / "A00001.mat")
    assert src.fs == 300.0 and src.leads == 1
    raw = scipy.io.loadmat(sample_dir / "A00001.mat")["val"][0]  # header: 1000 adu/mV, baseline 0
    np.testing.assert_allclose(src.read(0, 1000)[0], raw[:1000] / 1000.0, atol=1e-6)
    assert src.samples == raw.shape[0]


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "x.edf").write_bytes(b"0")
    with pytest.raises(InputError, match=r"unknown input format \.edf"):
        open_input(tmp_path / "x.edf")
    with pytest.raises(InputError, match="not found"):
        open_input(tmp_path / "nothing.npy", fs=300)


def test_non_finite_values_short_gaps_bridged_long_ones_and_inf_refused_with_position(tmp_path):
    sig = _signal(1, 400)
    sig[0, 50] = np.nan  # one missing sample: bridged by linear interpolation
    sig[0, 123:133] = np.nan  # 10 samples = 33 ms at 300 Hz, longer than the 20 ms (6 samples) bridged
    np.save(tmp_path / "n.npy", sig)
    src = open_input(tmp_path / "n.npy", fs=300)
    out, bridged = src.read_bridged(0, 100)
    assert bridged == 1 and out[0, 50] == pytest.approx((sig[0, 49] + sig[0, 51]) / 2, abs=1e-6)
    with pytest.raises(MissingSamples, match=r"not analysed: 10 missing samples \(the first at sample 123\)"):
        src.read(0, 400)
    sig[0, 123:133] = 0.0
    sig[0, 200] = np.inf
    np.save(tmp_path / "n.npy", sig)
    with pytest.raises(InputError, match="infinite value at sample 200"):
        open_input(tmp_path / "n.npy", fs=300).read(0, 400)
