"""wfdb-folder: any leads / rate, labels from CSV or header comments, and the docs example runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import wfdb
from doc_blocks import doc_block

import ecgzoo
from ecgzoo.testing import check_dataset_plugin


def _write(folder: Path, name: str, label: str, fs: int = 500, leads: int = 2, seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    sig = np.stack([np.sin(2 * np.pi * (1 + k) * t) + 0.01 * rng.normal(size=t.size) for k in range(leads)], axis=1)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * leads, sig_name=[f"L{k}" for k in range(leads)], p_signal=sig,
                fmt=["16"] * leads, adc_gain=[1000.0] * leads, baseline=[0] * leads,
                comments=[f"Dx: {label}", "age: 60"], write_dir=str(folder))
    return sig


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "my_ecgs"
    d.mkdir()
    for i, label in enumerate(["AF", "SR", "SR", "AF"]):
        _write(d, f"rec{i}", label, seed=i)
    (d / "labels.csv").write_text("record,label\nrec0,AF\nrec1,SR\nrec2,SR\nrec3,AF\n")
    return d


def test_conformance_csv_labels_any_leads_and_rate(folder):
    data = check_dataset_plugin("wfdb-folder", path=str(folder))
    assert tuple(data.classes) == ("AF", "SR") and data.labels() == ["AF", "SR", "SR", "AF"]
    rec = data.load("rec0")
    assert rec.signal.shape == (2, 2000) and rec.fs == 500.0 and rec.units == "mV"
    t = np.arange(2000) / 500
    np.testing.assert_allclose(rec.signal[1], np.sin(2 * np.pi * 2 * t), atol=0.05)


def test_labels_from_header_comment_and_explicit_classes(folder):
    (folder / "labels.csv").unlink()
    data = ecgzoo.get_dataset("wfdb-folder", path=str(folder), label_comment="Dx", classes=["SR", "AF"])
    assert tuple(data.classes) == ("SR", "AF") and data.label("rec3") == "AF"
    with pytest.raises(ecgzoo.RecordError, match="rec0.*'# Sex: <label>'"):
        ecgzoo.get_dataset("wfdb-folder", path=str(folder), label_comment="Sex")


def test_the_folder_declares_its_scored_classes_the_core_has_no_default(folder):
    """A folder labelled like PhysioNet 2017 is scored like it (N, A, O; `~` classified, not averaged):
    wfdb-folder's own default; other labels average every class; an explicit list wins."""
    assert ecgzoo.get_dataset("wfdb-folder", path=str(folder)).scored_classes is None
    (folder / "labels.csv").write_text("record,label\nrec0,N\nrec1,A\nrec2,~\nrec3,N\n")
    assert ecgzoo.get_dataset("wfdb-folder", path=str(folder)).scored_classes == ("N", "A")
    assert ecgzoo.get_dataset("wfdb-folder", path=str(folder), scored_classes=["~"]).scored_classes == ("~",)


def test_missing_labels_and_bad_folder_are_clear_errors(folder, tmp_path):
    (folder / "labels.csv").write_text("rec0,AF\nrec1,SR\n")
    with pytest.raises(ecgzoo.RecordError, match="rec2.*no label"):
        ecgzoo.get_dataset("wfdb-folder", path=str(folder))
    with pytest.raises(ecgzoo.ConfigError, match="not a folder"):
        ecgzoo.get_dataset("wfdb-folder", path=str(tmp_path / "nope"))
    with pytest.raises(ecgzoo.ConfigError, match="set `path`"):
        ecgzoo.get_dataset("wfdb-folder")


def test_expected_rate_mismatch_is_a_record_error(folder):
    data = ecgzoo.get_dataset("wfdb-folder", path=str(folder), fs=300.0)
    with pytest.raises(ecgzoo.RecordError, match="rec1.*500 Hz, expected 300 Hz"):
        data.load("rec1")


def test_docs_wfdb_folder_example_runs(folder, monkeypatch):
    code, filename = doc_block("wfdb-folder-example")
    monkeypatch.chdir(folder.parent)
    namespace: dict = {}
    exec(compile(code, filename, "exec"), namespace)
    prepared = namespace["prepared"]
    assert prepared.signals.shape == (4, 2, 9000) and prepared.fs == 300.0
    assert os.path.isdir(folder.parent / "cache")


def test_multi_label_from_header_comments(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    for i, dx in enumerate(["164889003,59118001", "426783006", "59118001, 426783006"]):
        _write(d, f"m{i}", dx, seed=i)
    data = check_dataset_plugin("wfdb-folder", path=str(d), label_comment="Dx", multi_label=True)
    assert data.task.multi and data.classes == ("164889003", "426783006", "59118001")
    assert data.label("m0") == ("164889003", "59118001") and data.label("m2") == ("426783006", "59118001")
    assert data.load("m1").lead_names == ("L0", "L1")


def test_multi_label_csv_as_label_lists_or_one_hot_columns(tmp_path, folder):
    (folder / "labels.csv").write_text('record,labels\nrec0,"AF,RBBB"\nrec1,SR\nrec2,SR,RBBB\nrec3,\n')
    data = ecgzoo.get_dataset("wfdb-folder", path=str(folder), multi_label=True)
    assert [data.label(r) for r in data.record_ids()] == [("AF", "RBBB"), ("SR",), ("RBBB", "SR"), ()]
    (folder / "labels.csv").write_text("record,AF,RBBB,SR\nrec0,1,1,0\nrec1,0,0,1\nrec2,0,1,1\nrec3,0,0,0\n")
    one_hot = ecgzoo.get_dataset("wfdb-folder", path=str(folder), multi_label=True)
    assert one_hot.classes == ("AF", "RBBB", "SR")
    assert [one_hot.label(r) for r in one_hot.record_ids()] == [("AF", "RBBB"), ("SR",), ("RBBB", "SR"), ()]
    with pytest.raises(ecgzoo.RecordError, match="'SR' is not one of the configured classes"):
        ecgzoo.get_dataset("wfdb-folder", path=str(folder), multi_label=True, classes=["AF", "RBBB"])
