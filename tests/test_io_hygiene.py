"""Files, streams and global state a user meets: CSV quoting, file names, matplotlib's backend,
wfdb's module, cuDNN flags, record ids from listings, closed pipes, WFDB headers without a count."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import ecgzoo
from ecgzoo._infra.csv_files import predictions_csv, skipped_csv
from ecgzoo._infra.files import safe_filename
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.prepared import prepare

REPO = Path(__file__).resolve().parent.parent
BAD_ID = 'rec,"7"'
BAD_PROBLEM = 'header says "16+24", expected 16\nsecond line, with a comma'


class _Listing(ecgzoo.Dataset):
    """Two records; the second fails with a message full of CSV metacharacters."""

    classes = ("N", "A")

    def record_ids(self) -> list[str]:
        return ["good", BAD_ID]

    def label(self, record_id: str) -> str:
        return "N"

    def load(self, record_id: str) -> ecgzoo.Record:
        if record_id == BAD_ID:
            raise ecgzoo.RecordError(record_id, BAD_PROBLEM)
        return ecgzoo.Record(signal=np.ones((1, 600), np.float32), fs=300.0, record_id=record_id, label="N")


def test_skipped_csv_keeps_commas_quotes_and_line_breaks_in_their_cells(tmp_path):
    prep = prepare(_Listing(), Pipeline([{"name": "pad-crop", "seconds": 2.0}]), cache_dir=tmp_path, on_error="skip",
                   progress=False)
    rows = list(csv.reader(io.StringIO((prep.cache_path / "skipped.csv").read_text(encoding="utf-8"))))
    assert rows == [["record", "problem"], [BAD_ID, prep.skipped[0][1]]]
    assert BAD_PROBLEM in rows[1][1]


def test_predictions_csv_reads_back_cell_for_cell():
    probs = np.array([[0.25, 0.75], [0.9, 0.1]])
    text = predictions_csv([BAD_ID, "plain"], np.array([1, 0]), probs, ["N", "A,x"])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["record"] for r in rows] == [BAD_ID, "plain"]
    assert rows[0]["true"] == "A,x" and rows[0]["predicted"] == "A,x" and rows[1]["predicted"] == "N"
    assert float(rows[0]["p_A,x"]) == 0.75
    assert skipped_csv([]) == "record,problem\n"


def test_safe_filename_keeps_distinct_names_distinct_and_inside_the_folder():
    assert safe_filename("A00001") == "A00001" and safe_filename("cam.v2") == "cam.v2"
    names = [safe_filename(t) for t in ("~", "?", "a/b", "a\\b", "..", "", ".hidden")]
    assert len(set(names)) == len(names)
    assert all("/" not in n and "\\" not in n and not n.startswith(".") and n for n in names)


def test_figures_leave_the_matplotlib_backend_alone():
    """A notebook picks its own backend; importing and drawing must not switch it to Agg."""
    code = textwrap.dedent("""
        import matplotlib
        matplotlib.use("pdf")
        import numpy as np
        import ecgzoo.report.figures, ecgzoo.report.report
        fig = ecgzoo.report.figures.plot_attribution(np.zeros((1, 300)), 300.0, np.zeros(300))
        fig2 = ecgzoo.report.report.plot_confusion({"confusion": [[1, 0], [0, 1]], "classes": ["N", "A"]})
        import sys
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported (it would pick a backend)"
        print(matplotlib.get_backend())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "pdf"


def test_rpeaks_never_modifies_wfdb_while_detecting(monkeypatch):
    """The vectorised peak search reaches XQRS without patching wfdb's module (other callers keep wfdb's)."""
    from wfdb.processing import qrs

    import ecgzoo_plugins.rpeaks as rpeaks

    original, seen = qrs.find_local_peaks, []
    fast = rpeaks.find_local_peaks

    def spy(sig, radius):
        seen.append(qrs.find_local_peaks)
        return fast(sig, radius)

    monkeypatch.setattr(rpeaks, "find_local_peaks", spy)
    t = np.arange(3000) / 300.0
    signal = np.sin(2 * np.pi * 1.2 * t) ** 63  # sharp peaks at 1.2 Hz
    peaks = rpeaks.detect(signal, 300.0)
    assert len(peaks) >= 5 and seen, "XQRS did not use the vectorised search"
    assert all(f is original for f in seen) and qrs.find_local_peaks is original


def test_cudnn_flags_are_restored_after_the_block_and_the_trainer():
    from ecgzoo.plugin_api import cudnn_flags_restored
    from ecgzoo_plugins.trainer import ReferenceTrainer

    cudnn = torch.backends.cudnn
    saved = (cudnn.benchmark, cudnn.deterministic)
    try:
        cudnn.benchmark, cudnn.deterministic = True, False

        @cudnn_flags_restored()
        def training():
            cudnn.benchmark, cudnn.deterministic = False, True

        training()
        assert (cudnn.benchmark, cudnn.deterministic) == (True, False)
        assert hasattr(ReferenceTrainer.train_and_checkpoint, "__wrapped__")  # the reference trainer trains inside the guard
    finally:
        cudnn.benchmark, cudnn.deterministic = saved


@pytest.mark.parametrize("bad", ["../outside", "/etc/passwd", "sub/../../x"])
def test_record_ids_that_leave_the_folder_are_refused_naming_the_file(tmp_path, bad):
    import wfdb

    wfdb.wrsamp("rec0", fs=300, units=["mV"], sig_name=["I"], p_signal=np.zeros((600, 1)), fmt=["16"], write_dir=str(tmp_path))
    (tmp_path / "RECORDS").write_text(f"rec0\n{bad}\n")
    (tmp_path / "labels.csv").write_text("rec0,N\n")
    with pytest.raises(ecgzoo.ConfigError, match=r"RECORDS:2: record id .* not a path inside the data folder"):
        ecgzoo.get_dataset("wfdb-folder", path=str(tmp_path))
    (tmp_path / "RECORDS").unlink()
    (tmp_path / "labels.csv").write_text(f"rec0,N\n{bad},A\n")
    with pytest.raises(ecgzoo.ConfigError, match=r"labels.csv:2: record id"):
        ecgzoo.get_dataset("wfdb-folder", path=str(tmp_path))


def test_a_closed_pipe_ends_the_command_quietly():
    """`ecgzoo info cnnv7 | head`: the reader is gone before the first write (deterministic EPIPE)."""
    code = "import sys; from ecgzoo.cli import main; sys.exit(main(['info', 'cnnv7']))"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141


def _record_without_sample_count(folder: Path) -> np.ndarray:
    import wfdb

    signal = np.round(np.sin(np.arange(900) / 20.0)[:, None] * np.array([[1.0, -0.5]]), 3)
    wfdb.wrsamp("nocount", fs=300, units=["mV", "mV"], sig_name=["I", "II"], p_signal=signal, fmt=["16", "16"],
                adc_gain=[1000, 1000], baseline=[0, 0], write_dir=str(folder))
    hea = folder / "nocount.hea"
    lines = hea.read_text().splitlines()
    lines[0] = " ".join(lines[0].split()[:3])  # "nocount 2 300": valid WFDB, the length follows from the .dat size
    hea.write_text("\n".join(lines) + "\n")
    return signal.T


def test_wfdb_header_without_a_sample_count_is_read_by_predict_inputs_and_datasets(tmp_path):
    from ecgzoo.data.inputs import open_input

    expected = _record_without_sample_count(tmp_path)
    src = open_input(tmp_path / "nocount.hea")
    assert (src.leads, src.samples, src.fs) == (2, 900, 300.0)
    np.testing.assert_allclose(src.read(100, 400), expected[:, 100:400], atol=1e-6)
    (tmp_path / "labels.csv").write_text("nocount,N\n")
    record = ecgzoo.get_dataset("wfdb-folder", path=str(tmp_path)).load("nocount")
    np.testing.assert_allclose(record.signal, expected, atol=1e-6)


def test_benchmark_machine_fields_are_measured():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import machine
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    info = machine.machine_info()
    import os

    assert info["cpu_cores"] == os.cpu_count() and info["machine"].startswith(f"{os.cpu_count()}-core CPU (")
    assert info["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
    for script in (REPO / "benchmarks").glob("bench_*.py"):
        text = script.read_text()
        assert "none lent" not in text and "-core CPU, shared" not in text, script.name
        if '"machine"' in text or "machine_info" in text:
            assert "**machine_info()" in text, script.name
