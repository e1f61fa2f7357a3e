"""Download against a local HTTP server on 127.0.0.1 (no outside network): verify, resume, atomic."""

from __future__ import annotations

import hashlib
import shutil
import zipfile

import pytest
from loopback import RangeHandler, serve

import ecgzoo
from ecgzoo._infra.download import DownloadError, download_file, parse_sha256sums
from ecgzoo_plugins.physionet2017 import fetch_physionet2017

RECORDS = ("A00001", "A00004", "A00005")


@pytest.fixture
def server(sample_dir, tmp_path):
    """Serves training2017.zip (3 sample records), REFERENCE-v3.csv and SHA256SUMS.txt; stops itself."""
    root = tmp_path / "physionet"
    root.mkdir()
    with zipfile.ZipFile(root / "training2017.zip", "w") as z:
        for rid in RECORDS:
            for ext in (".hea", ".mat"):
                z.write(sample_dir / f"{rid}{ext}", f"training2017/{rid}{ext}")
        z.writestr("training2017/REFERENCE.csv", "A00001,N\nA00004,N\nA00005,N\n")
        z.writestr("training2017/RECORDS", "\n".join(RECORDS) + "\n")
    (root / "REFERENCE-v3.csv").write_text("A00001,N\nA00004,A\nA00005,A\n")
    sums = "".join(f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}\n" for n in ("training2017.zip", "REFERENCE-v3.csv"))
    (root / "SHA256SUMS.txt").write_text(sums + f"{'0' * 64}  other/file.dat\n")

    with serve(root) as url:
        yield url, root


def test_dataset_downloads_verifies_unpacks_and_loads(server, tmp_path):
    url, _ = server
    data = ecgzoo.get_dataset("physionet2017", path=str(tmp_path / "data"), url=url)
    assert data.folder == tmp_path / "data" / "training2017"
    assert data.labels_file.name == "REFERENCE-v3.csv" and data.labels() == ["N", "A", "A"]
    assert data.load("A00004").samples == 9000
    assert not list((tmp_path / "data").glob("*.part"))
    # present now: a second construction downloads nothing
    before = len(RangeHandler.sent)
    ecgzoo.get_dataset("physionet2017", path=str(tmp_path / "data"), url=url)
    assert len(RangeHandler.sent) == before


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    url, root = server
    size = (root / "training2017.zip").stat().st_size
    sha = parse_sha256sums((root / "SHA256SUMS.txt").read_text())["training2017.zip"]
    dest = tmp_path / "dl" / "training2017.zip"
    RangeHandler.cut_after = 1000
    with pytest.raises(DownloadError, match="interrupted.*resume"):
        download_file(url + "training2017.zip", dest, sha, progress=False, timeout=5)
    part = dest.with_name("training2017.zip.part")
    assert not dest.exists() and part.is_file() and part.stat().st_size == 1000
    download_file(url + "training2017.zip", dest, sha, progress=False, timeout=5)
    assert RangeHandler.sent[-1] == ("/training2017.zip", size - 1000)  # only the rest was sent
    assert dest.read_bytes() == (root / "training2017.zip").read_bytes() and not part.exists()


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "dl" / "REFERENCE-v3.csv"
    with pytest.raises(DownloadError, match="does not match the published"):
        download_file(url + "REFERENCE-v3.csv", dest, "f" * 64, progress=False, timeout=5)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_missing_file_and_unlisted_checksum_are_clear_errors(server, tmp_path):
    url, root = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(url + "nope.zip", tmp_path / "nope.zip", progress=False, timeout=5)
    (root / "SHA256SUMS.txt").write_text("")
    with pytest.raises(DownloadError, match="does not list training2017.zip"):
        fetch_physionet2017(tmp_path / "d", url, progress=False, timeout=5)
    shutil.rmtree(tmp_path / "d", ignore_errors=True)
