"""Empty and degenerate inputs of every supported format: one line naming the file, exit 2, no warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.io
import wfdb
from run_helpers import cli


def _wfdb(folder, name, sig):
    wfdb.wrsamp(name, fs=300, units=["mV"] * sig.shape[0], sig_name=[f"l{i}" for i in range(sig.shape[0])],
                p_signal=sig.T.astype(np.float64), fmt=["16"] * sig.shape[0], adc_gain=[1000.0] * sig.shape[0],
                baseline=[0] * sig.shape[0], write_dir=str(folder))
    return folder / f"{name}.hea"


def _make(case, d):
    """Write the degenerate input `case` into folder `d`; return (path given to predict, words the error must hold)."""
    sine = np.sin(np.arange(1200) / 10.0)[None].astype(np.float32)
    if case == "empty.npy":
        (d / "x.npy").write_bytes(b"")
        return d / "x.npy", "empty"
    if case == "empty.csv":
        (d / "x.csv").write_text("")
        return d / "x.csv", "empty"
    if case == "empty.mat":
        (d / "x.mat").write_bytes(b"")
        return d / "x.mat", "empty"
    if case == "empty.hea":
        (d / "x.hea").write_text("")
        return d / "x.hea", "WFDB header"
    if case == "header-only.csv":
        (d / "x.csv").write_text("lead1,lead2\n")
        return d / "x.csv", "header row only"
    if case == "header-only-time.csv":
        (d / "x.csv").write_text("time,ecg\n")
        return d / "x.csv", "header row only"
    if case == "empty-column.csv":
        (d / "x.csv").write_text("1.0,\n2.0,\n3.0,\n")
        return d / "x.csv", "numeric CSV"
    if case == "zero-samples.npy":
        np.save(d / "x.npy", np.zeros((1, 0), dtype=np.float32))
        return d / "x.npy", "empty"
    if case == "zero-leads.npy":
        np.save(d / "x.npy", np.zeros((0, 1200), dtype=np.float32))
        return d / "x.npy", "empty"
    if case == "empty-val.mat":
        scipy.io.savemat(d / "x.mat", {"val": np.zeros((1, 0))})
        return d / "x.mat", "empty"
    if case == "complex.npy":
        np.save(d / "x.npy", sine.astype(np.complex64))
        return d / "x.npy", "real numbers"
    if case in ("missing-signal.hea", "empty-signal.hea", "zero-length.hea"):
        hea = _wfdb(d, "w", sine)
        if case == "missing-signal.hea":
            (d / "w.dat").unlink()
            return hea, "w.dat named by the header is missing"
        if case == "empty-signal.hea":
            (d / "w.dat").write_bytes(b"")
            return hea, "w.dat named by the header is empty"
        lines = hea.read_text().splitlines()
        rec = lines[0].split()
        lines[0] = " ".join([*rec[:3], "0"])
        hea.write_text("\n".join(lines) + "\n")
        return hea, "no samples"
    if case == "overflow.csv":  # beyond float32: found by the fuzzing harness
        (d / "x.csv").write_text("".join(f"{v}e60\n" for v in range(1, 1200)))
        return d / "x.csv", "unreadable data (overflow"
    if case == "constant.npy":
        np.save(d / "x.npy", np.full((1, 1200), 0.7, dtype=np.float32))
        return d / "x.npy", "flat signal"
    if case == "constant.csv":
        (d / "x.csv").write_text("0.5\n" * 1200)
        return d / "x.csv", "flat signal"
    if case == "constant.hea":
        return _wfdb(d, "c", np.zeros((1, 1200))), "flat signal"
    raise AssertionError(case)


CASES = ["empty.npy", "empty.csv", "empty.mat", "empty.hea", "header-only.csv", "header-only-time.csv",
         "empty-column.csv", "zero-samples.npy", "zero-leads.npy", "empty-val.mat", "complex.npy",
         "missing-signal.hea", "empty-signal.hea", "zero-length.hea", "overflow.csv", "constant.npy", "constant.csv", "constant.hea"]


@pytest.mark.parametrize("case", CASES)
def test_degenerate_input_is_one_line_naming_the_file(tiny_run, tmp_path, case):
    path, words = _make(case, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = cli("predict", str(tiny_run), str(path), "--fs", "300")
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Warning" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith("ecgzoo predict: error: ") and str(path) in line and words in line, line
    leaked = [w for w in caught if issubclass(w.category, (UserWarning, RuntimeWarning))]
    assert not leaked, [str(w.message) for w in leaked]


@pytest.mark.parametrize("case", ["constant.npy", "empty.csv", "missing-signal.hea"])
def test_explain_refuses_degenerate_input_the_same_way(tiny_run, tmp_path, case):
    path, words = _make(case, tmp_path)
    code, out, err = cli("explain", str(tiny_run), str(path), "--fs", "300", "--out", str(tmp_path / "ex"))
    assert code == 2, (out, err)
    (line,) = err.strip().splitlines()
    assert line.startswith("ecgzoo explain: error: ") and str(path) in line and words in line, line
