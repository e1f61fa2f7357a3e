"""physionet2017: every sample record loads, signals equal a direct .mat read, labels, data location."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
import scipy.io

import ecgzoo
from ecgzoo.testing import check_dataset_plugin


def test_conformance(sample_dir):
    check_dataset_plugin("physionet2017", path=str(sample_dir), download=False)


def test_every_sample_record_loads_at_300_hz_in_mv(sample_dir):
    data = ecgzoo.get_dataset("physionet2017", path=str(sample_dir), download=False)
    assert len(data) == 240
    counts = {c: 0 for c in data.classes}
    for rid in data.record_ids():
        rec = data.load(rid)
        assert rec.fs == 300.0 and rec.leads == 1 and rec.units == "mV" and rec.samples >= 9 * 300
        counts[rec.label] += 1
    assert counts == {"N": 120, "A": 40, "O": 56, "~": 24}


def _header_gain_baseline(hea_text: str) -> tuple[float, int]:
    sig = hea_text.splitlines()[1].split()
    gain = float(sig[2].split("/")[0].split("(")[0])
    baseline = int(sig[2].split("(")[1].split(")")[0]) if "(" in sig[2] else int(sig[4])  # WFDB: baseline defaults to ADC zero
    return gain, baseline


@pytest.mark.parametrize("rid", ["A00001", "A00004", "A00005", "A00008", "A00022"])
def test_signal_equals_direct_mat_read_scaled_by_header(sample_dir, rid):
    data = ecgzoo.get_dataset("physionet2017", path=str(sample_dir), download=False)
    if rid not in data.record_ids():
        pytest.skip(f"{rid} not in this sample")
    val = scipy.io.loadmat(sample_dir / f"{rid}.mat")["val"].astype(np.float64)
    gain, baseline = _header_gain_baseline((sample_dir / f"{rid}.hea").read_text())
    expected = ((val - baseline) / gain).astype(np.float32)
    np.testing.assert_array_equal(data.load(rid).signal, expected)


def test_iso_dated_sample_headers_and_standard_headers_both_parse(sample_dir, tmp_path):
    assert "2014-" in (sample_dir / "A00001.hea").read_text()  # the sample set's own layout
    folder = tmp_path / "std"
    folder.mkdir()
    shutil.copy(sample_dir / "A00001.mat", folder)
    (folder / "A00001.hea").write_text("A00001 1 300 9000 05:05:15 1/05/2000\nA00001.mat 16+24 1000/mV 16 0 -127 0 0 ECG\n")
    (folder / "REFERENCE.csv").write_text("A00001,N\n")
    std = ecgzoo.get_dataset("physionet2017", path=str(folder), download=False).load("A00001")
    iso = ecgzoo.get_dataset("physionet2017", path=str(sample_dir), download=False).load("A00001")
    np.testing.assert_array_equal(std.signal, iso.signal)


def _mini(sample_dir, folder, rids=("A00001", "A00004"), labels=None):
    folder.mkdir(parents=True)
    for rid in rids:
        for ext in (".hea", ".mat"):
            shutil.copy(sample_dir / f"{rid}{ext}", folder)
    ref = {r: lab for r, lab in (ln.split(",") for ln in (sample_dir / "REFERENCE.csv").read_text().split())}
    (folder / "REFERENCE.csv").write_text("".join(f"{r},{(labels or ref)[r]}\n" for r in rids))
    return folder


def test_v3_labels_preferred_and_classes3_drops_noisy(sample_dir, tmp_path):
    folder = _mini(sample_dir, tmp_path / "training2017", labels={"A00001": "~", "A00004": "A"})
    data = ecgzoo.get_dataset("physionet2017", path=str(folder), download=False)
    assert data.labels_file.name == "REFERENCE.csv" and data.label("A00001") == "~"
    (folder / "REFERENCE-v3.csv").write_text("A00001,N\nA00004,~\n")
    data = ecgzoo.get_dataset("physionet2017", path=str(folder), download=False)
    assert data.labels() == ["N", "~"]
    three = ecgzoo.get_dataset("physionet2017", path=str(folder), download=False, classes3=True)
    assert three.record_ids() == ["A00001"] and tuple(three.classes) == ("N", "A", "O")
    original = ecgzoo.get_dataset("physionet2017", path=str(folder), download=False, reference="original")
    assert original.label("A00001") == "~"


def test_unknown_label_names_the_record(sample_dir, tmp_path):
    folder = _mini(sample_dir, tmp_path / "d", labels={"A00001": "N", "A00004": "X"})
    with pytest.raises(ecgzoo.RecordError, match="A00004.*unknown label 'X'"):
        ecgzoo.get_dataset("physionet2017", path=str(folder), download=False)


def test_zip_and_env_var_locations(sample_dir, tmp_path, monkeypatch):
    folder = _mini(sample_dir, tmp_path / "src" / "training2017")
    archive = tmp_path / "env" / "training2017.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"training2017/{f.name}")
    monkeypatch.setenv("ECGZOO_DATA", str(archive.parent))
    data = ecgzoo.get_dataset("physionet2017", download=False)
    assert data.folder == archive.parent / "training2017" and len(data) == 2
    # explicit path beats the environment variable
    assert ecgzoo.get_dataset("physionet2017", path=str(folder), download=False).folder == folder


def test_absent_data_offline_fails_fast_saying_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ECGZOO_DATA", raising=False)
    with pytest.raises(ecgzoo.ConfigError) as info:
        ecgzoo.get_dataset("physionet2017", download=False)
    message = str(info.value)
    assert str(tmp_path / "cache" / "ecgzoo" / "physionet2017") in message
    assert "training2017.zip" in message and "REFERENCE-v3.csv" in message and "ECGZOO_DATA" in message
    # with download on but the server unreachable (a closed loopback port), it still fails fast
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ecgzoo.ConfigError, match="not reachable"):
        ecgzoo.get_dataset("physionet2017", url=f"http://127.0.0.1:{port}/files/")
    assert time.monotonic() - start < 10
