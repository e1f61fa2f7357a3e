"""Broken records (damaged copies of real sample records) are errors naming the record, or skipped and reported."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import ecgzoo
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare

GOOD = ("A00001", "A00004")


def _copy(sample_dir: Path, folder: Path, src: str, dst: str) -> tuple[Path, Path]:
    hea, mat = folder / f"{dst}.hea", folder / f"{dst}.mat"
    hea.write_text((sample_dir / f"{src}.hea").read_text().replace(src, dst))
    shutil.copy(sample_dir / f"{src}.mat", mat)
    return hea, mat


def _set_samples(hea: Path, n: int) -> None:
    lines = hea.read_text().splitlines()
    rec = lines[0].split()
    rec[3] = str(n)
    hea.write_text("\n".join([" ".join(rec), *lines[1:]]) + "\n")


def _break_missing_mat(hea: Path, mat: Path) -> None:
    mat.unlink()


def _break_truncated_mat(hea: Path, mat: Path) -> None:
    mat.write_bytes(mat.read_bytes()[:4000])


def _break_header_mismatch(hea: Path, mat: Path) -> None:
    _set_samples(hea, 6000)  # the .mat holds 9000 samples


def _break_nans(hea: Path, mat: Path) -> None:
    data = bytearray(mat.read_bytes())
    # WFDB format 16's "invalid sample" value, 10 in a row: longer than the 20 ms (6 samples) that are bridged
    data[24 + 2 * 500 : 24 + 2 * 510] = np.int16(-32768).tobytes() * 10
    mat.write_bytes(bytes(data))


def _break_zero_length(hea: Path, mat: Path) -> None:
    _set_samples(hea, 0)
    mat.write_bytes(mat.read_bytes()[:24])


def _break_sub_second(hea: Path, mat: Path) -> None:
    _set_samples(hea, 150)
    mat.write_bytes(mat.read_bytes()[: 24 + 2 * 150])


def _break_rate(hea: Path, mat: Path) -> None:
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join([lines[0].replace(" 300 ", " 250 ", 1), *lines[1:]]) + "\n")


BROKEN = {
    "B00001": (_break_missing_mat, "signal file .*B00001.mat is missing"),
    "B00002": (_break_truncated_mat, "truncated: header declares 9000 samples, the file holds 1988"),
    "B00003": (_break_header_mismatch, "header/signal mismatch: header declares 6000 samples, B00003.mat holds 9000"),
    "B00004": (_break_nans, "10 missing \\(NaN/invalid\\) sample"),
    "B00005": (_break_zero_length, "zero-length"),
    "B00006": (_break_sub_second, r"too short: 0.500 s"),
    "B00007": (_break_rate, "250 Hz, expected 300 Hz"),
}


@pytest.fixture
def broken_dir(sample_dir, tmp_path) -> Path:
    folder = tmp_path / "broken"
    folder.mkdir()
    labels = []
    for rid in GOOD:
        _copy(sample_dir, folder, rid, rid)
        labels.append(f"{rid},N")
    for rid, (damage, _) in BROKEN.items():
        damage(*_copy(sample_dir, folder, "A00001", rid))
        labels.append(f"{rid},N")
    (folder / "REFERENCE.csv").write_text("\n".join(labels) + "\n")
    return folder


@pytest.mark.parametrize("rid", sorted(BROKEN))
def test_each_broken_record_is_an_error_naming_it(broken_dir, rid):
    data = ecgzoo.get_dataset("physionet2017", path=str(broken_dir), download=False)
    with pytest.raises(ecgzoo.RecordError, match=BROKEN[rid][1]) as info:
        data.load(rid)
    assert info.value.record_id == rid and rid in str(info.value)


def test_good_copies_still_load(broken_dir):
    data = ecgzoo.get_dataset("physionet2017", path=str(broken_dir), download=False)
    assert [data.load(r).samples for r in GOOD] == [9000, 9000]


def test_missing_header_is_an_error(broken_dir):
    (broken_dir / "A00004.hea").unlink()
    data = ecgzoo.get_dataset("physionet2017", path=str(broken_dir), download=False)
    with pytest.raises(ecgzoo.RecordError, match="A00004.*header file .* is missing"):
        data.load("A00004")


def test_prepare_raises_by_default_and_skip_reports_why(broken_dir, tmp_path):
    data = ecgzoo.get_dataset("physionet2017", path=str(broken_dir), download=False)
    pipeline = Pipeline([{"name": "pad-crop", "seconds": 31.0}])
    with pytest.raises(ecgzoo.RecordError, match="B00001"):
        prepare(data, pipeline, cache_dir=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []  # a failed strict run caches nothing
    prep = prepare(data, pipeline, cache_dir=tmp_path / "cache", on_error="skip", progress=False)
    assert prep.record_ids == list(GOOD) and prep.signals.shape == (2, 1, 9300)
    assert [r for r, _ in prep.skipped] == sorted(BROKEN)
    for rid, problem in prep.skipped:
        assert re.search(BROKEN[rid][1], problem), (rid, problem)
    report = (prep.cache_path / "skipped.csv").read_text().splitlines()
    assert report[0] == "record,problem" and len(report) == 1 + len(BROKEN) and report[1].startswith("B00001,")
    # the cached entry remembers the skipped records: a strict second run still refuses them
    with pytest.raises(ecgzoo.RecordError, match="B00001"):
        prepare(data, pipeline, cache_dir=tmp_path / "cache", progress=False)


def test_no_beats_is_a_per_record_outcome_in_the_pipeline(sample_dir, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    _copy(sample_dir, folder, "A00001", "A00001")
    hea, mat = _copy(sample_dir, folder, "A00004", "F00001")
    data = bytearray(mat.read_bytes())
    data[24:] = bytes(len(data) - 24)  # a flat line: all samples 0
    mat.write_bytes(bytes(data))
    (folder / "REFERENCE.csv").write_text("A00001,N\nF00001,N\n")
    ds = ecgzoo.get_dataset("physionet2017", path=str(folder), download=False)
    prep = prepare(ds, Pipeline.for_dataset(ds), cache_dir=tmp_path / "cache", on_error="skip", progress=False)
    assert prep.record_ids == ["A00001"]
    assert prep.skipped[0][0] == "F00001" and "beat" in prep.skipped[0][1]
