"""Multi-label datasets: cinc2021 on the shared real records, ptbxl on a fabricated tree in the
published layout, and PTB-XL's checksummed, resumable download from a loopback server."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import SHARED_DATA
from loopback import RangeHandler, serve
from ptbxl_fixtures import write_ptbxl_tree

import ecgzoo
from ecgzoo.testing import check_dataset_plugin

CINC_SAMPLE = SHARED_DATA / "cinc2021-sample"
TWELVE = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@pytest.fixture
def cinc_dir():
    if not (CINC_SAMPLE / "E07500.hea").is_file():
        pytest.skip(f"shared CinC 2021 sample not found at {CINC_SAMPLE} (set ECGZOO_SHARED_DATA)")
    return CINC_SAMPLE


def test_cinc2021_reads_the_real_records_with_scored_classes_and_equivalences(cinc_dir):
    data = check_dataset_plugin("cinc2021", path=str(cinc_dir), max_records=3)
    assert len(data) == 25 and len(data.classes) == 26 and data.task.multi
    assert data.task.name("164889003") == "AF (atrial fibrillation)"
    # E07501: Dx 253352002 (LAA, unscored), 427084000 (STach) -> only STach is a scored class
    assert data.label("E07501") == ("427084000",) and data.codes("E07501") == ("253352002", "427084000")
    # a record coded 59118001 (RBBB) has the class of its equivalent 713427006 (CRBBB)
    rbbb = [r for r in data.record_ids() if "59118001" in (cinc_dir / f"{r}.hea").read_text()]
    assert rbbb and all("713427006" in data.label(r) for r in rbbb)
    rec = data.load("E07500")
    assert rec.signal.shape == (12, 5000) and rec.fs == 500.0 and rec.lead_names == TWELVE
    assert rec.meta["dx"] == ["67741000119109", "426177001"] and rec.label == ("426177001",)


def test_cinc2021_all_codes_and_dropping_unlabelled_records(cinc_dir):
    every = ecgzoo.get_dataset("cinc2021", path=str(cinc_dir), classes="all")
    assert "253352002" in every.classes and "59118001" not in every.classes  # merged into 713427006
    scored_only = ecgzoo.get_dataset("cinc2021", path=str(cinc_dir), drop_unlabelled=True)
    assert 0 < len(scored_only) < 25 and all(scored_only.label(r) for r in scored_only.record_ids())


def test_cinc2021_bad_dx_is_a_record_error(tmp_path, cinc_dir):
    for ext in (".hea", ".mat"):
        shutil.copy(cinc_dir / f"E07500{ext}", tmp_path / f"E07500{ext}")
    hea = tmp_path / "E07500.hea"
    hea.write_text(hea.read_text().replace("# Dx: 67741000119109,426177001", "# Dx: AF"))
    with pytest.raises(ecgzoo.RecordError, match="E07500.*SNOMED CT codes, got 'AF'"):
        ecgzoo.get_dataset("cinc2021", path=str(tmp_path))


@pytest.fixture(scope="module")
def ptbxl_tree(tmp_path_factory):
    return write_ptbxl_tree(tmp_path_factory.mktemp("ptbxl"), records=30)


def test_ptbxl_reads_the_published_layout(ptbxl_tree):
    data = check_dataset_plugin("ptbxl", path=str(ptbxl_tree), download=False, max_records=2)
    assert len(data) == 30 and data.label("2") == ("ASMI", "IMI", "SR")  # every statement, any likelihood
    rec = data.load("2")
    assert rec.signal.shape == (12, 1000) and rec.fs == 100.0 and rec.lead_names == TWELVE
    hr = ecgzoo.get_dataset("ptbxl", path=str(ptbxl_tree), download=False, fs=500).load("2")
    assert hr.signal.shape == (12, 5000)
    np.testing.assert_allclose(hr.signal[:, ::5].std(), rec.signal.std(), rtol=0.2)


@pytest.mark.parametrize("task, classes, records", [
    ("superdiag", ("CD", "HYP", "MI", "NORM", "STTC"), 30),
    ("subdiag", ("AMI", "IMI", "IRBBB", "LAFB/LPFB", "LVH", "NORM", "STTC"), 30),
    ("diag", ("ASMI", "IMI", "IRBBB", "LAFB", "LVH", "NDT", "NORM"), 30),
    ("form", ("LVOLT", "NDT", "PVC"), 15),  # records without a form statement are left out
    ("rhythm", ("AFIB", "SR", "STACH"), 30),
])
def test_ptbxl_tasks_of_strodthoff_et_al(ptbxl_tree, task, classes, records):
    data = ecgzoo.get_dataset("ptbxl", path=str(ptbxl_tree), download=False, task=task)
    assert data.classes == classes and len(data) == records
    if task == "superdiag":
        assert data.label("3") == ("HYP",) and data.task.name("MI") == "myocardial infarction"


def test_ptbxl_default_split_is_folds_1_to_8_9_10(ptbxl_tree):
    data = ecgzoo.get_dataset("ptbxl", path=str(ptbxl_tree), download=False)
    split = data.default_split()
    assert {data.fold(r) for r in split["train"]} == set(range(1, 9))
    assert {data.fold(r) for r in split["val"]} == {9} and {data.fold(r) for r in split["test"]} == {10}
    assert sorted(split["train"] + split["val"] + split["test"], key=int) == data.record_ids()
    other = ecgzoo.get_dataset("ptbxl", path=str(ptbxl_tree), download=False, val_folds=[7], test_folds=[8]).default_split()
    assert len(other["val"]) == 3 and "7" in other["val"] and "8" in other["test"]


def test_ptbxl_absent_and_offline_says_what_to_put_where(tmp_path):
    with pytest.raises(ecgzoo.ConfigError, match=r"(?s)PTB-XL not found at .*empty.*download = false.*records100/"):
        ecgzoo.get_dataset("ptbxl", path=str(tmp_path / "empty"), download=False)


def test_ptbxl_downloads_tables_and_records_of_one_rate_verified_and_resumable(tmp_path, ptbxl_tree):
    dest = tmp_path / "cache"
    with serve(ptbxl_tree) as url:
        RangeHandler.cut_after = 20_000  # the first signal file (24 kB) arrives cut short; the listing (12 kB) does not
        with pytest.raises(ecgzoo.ConfigError, match="download failed.*interrupted"):
            ecgzoo.get_dataset("ptbxl", path=str(dest), url=url)
        data = ecgzoo.get_dataset("ptbxl", path=str(dest), url=url)  # resumes: only what is missing
        assert len(data) == 30 and data.load("30").signal.shape == (12, 1000)
        assert not (dest / "records500").exists()  # only the rate asked for
        needed = [p for p in ptbxl_tree.rglob("*") if p.is_file() and not p.relative_to(ptbxl_tree).as_posix().startswith(
            ("records500", "SHA256SUMS"))]
        data_bytes = sum(n for path, n in RangeHandler.sent if path != "/SHA256SUMS.txt")
        assert data_bytes == sum(p.stat().st_size for p in needed)  # the cut file was resumed, nothing fetched twice
        before = len(RangeHandler.sent)
        ecgzoo.get_dataset("ptbxl", path=str(dest), url=url)
        assert len(RangeHandler.sent) == before  # found locally: nothing fetched
        assert ecgzoo.get_dataset("ptbxl", path=str(dest), url=url, fs=500).load("1").signal.shape == (12, 5000)
        bad = tmp_path / "bad"
        (ptbxl_tree / "scp_statements.csv").write_text((ptbxl_tree / "scp_statements.csv").read_text() + "X,x,,,,,,,,,,,\n")
        with pytest.raises(ecgzoo.ConfigError, match="scp_statements.csv: SHA-256 .* does not match"):
            ecgzoo.get_dataset("ptbxl", path=str(bad), url=url)


def test_default_preprocessing_gives_one_shape_for_the_models(cinc_dir, ptbxl_tree):
    from ecgzoo.data.pipeline import Pipeline

    cinc = ecgzoo.get_dataset("cinc2021", path=str(cinc_dir))
    rec = Pipeline(cinc.default_preprocessing)(cinc.load("E07500"))
    assert rec.signal.shape == (12, 1000) and rec.fs == 100.0 and rec.lead_names == TWELVE
    ptbxl = ecgzoo.get_dataset("ptbxl", path=str(ptbxl_tree), download=False)
    assert Pipeline(ptbxl.default_preprocessing)(ptbxl.load("1")).signal.shape == (12, 1000)
