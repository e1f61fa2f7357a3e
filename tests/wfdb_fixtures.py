"""Real-world kinds of WFDB record, built in a folder with wfdb's writers (and headers by hand where
wfdb has no writer): multi-segment records in both layouts with a `~` gap, gaps of missing samples,
a skew, FLAC, and broken inputs (a truncated format-212 file, an empty header, a one-row CSV).

Used by the tests (in tmp_path) and by `benchmarks/bench_wfdb_samples.py`; every builder returns
the path to give to `ecgzoo predict`. Signals are ECG-like (a 1-mV R wave every 0.8 s on a slow
wander), in mV, written in format 16 at 200 adu/mV unless said otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

GAIN = 200.0
#: the tests' real record with gaps: MIMIC-II Waveform Database segment 3234460_0001 (segment 1 of record
#: s25047-2704-05-04-10-44; PhysioNet open access; Saeed M. et al., Crit Care Med 2011;39(5):952-960), as in
#: wfdb-python's `sample-data/multi-segment/s25047/`. Data is never copied into this repository: point
#: $ECGZOO_WFDB_SAMPLES at a copy of that `sample-data` folder (the test skips, saying so, without it).
#: Two ECG leads (II, V), 125 Hz, format 80; lead II has gaps of 2, 9, 18, 1 and 15 samples.
REAL_GAPS = Path(os.environ.get("ECGZOO_WFDB_SAMPLES", "/nonexistent")) / "multi-segment" / "s25047" / "3234460_0001.hea"


def ecg_like(seconds: float, fs: float, leads: int = 1, seed: int = 0) -> np.ndarray:
    """(samples, leads) in mV: narrow 1-mV R waves every 0.8 s, a 0.1-mV wander and a little noise."""
    t = np.arange(int(round(seconds * fs))) / fs
    beats = np.arange(0.3, seconds, 0.8)
    r = np.exp(-0.5 * ((t[:, None] - beats[None]) / 0.012) ** 2).sum(axis=1) if len(beats) else np.zeros_like(t)
    rng = np.random.default_rng(seed)
    cols = [(1.0 - 0.2 * k) * r + 0.1 * np.sin(2 * np.pi * 0.3 * t + k) + 0.01 * rng.standard_normal(len(t))
            for k in range(leads)]
    return np.stack(cols, axis=1)


def write_record(folder: Path, name: str, signal: np.ndarray, fs: float, names: list[str], fmt: str = "16") -> Path:
    """`name`.hea + `name`.dat holding (samples, leads) `signal` in mV (NaN written as invalid samples)."""
    import wfdb

    leads = signal.shape[1]
    wfdb.wrsamp(name, fs=fs, units=["mV"] * leads, sig_name=names, p_signal=np.asarray(signal, dtype=np.float64),
                fmt=[fmt] * leads, adc_gain=[GAIN] * leads, baseline=[0] * leads, write_dir=str(folder))
    return folder / f"{name}.hea"


def variable_layout_record(folder: Path, fs: float = 300.0, name: str = "vrec", unit: float = 4.0) -> Path:
    """Master header of a variable-layout record: a layout segment (II, V), 2 `unit`s (default 4 s) of II+V,
    a `~` gap of 1 unit, 2 units of V+II (the other order), 2 units of V only (II missing); 7 units in all."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(2 * unit * fs)
    write_record(folder, f"{name}_0001", ecg_like(2 * unit, fs, 2, seed=1), fs, ["II", "V"])
    write_record(folder, f"{name}_0002", ecg_like(2 * unit, fs, 2, seed=2)[:, ::-1], fs, ["V", "II"])
    write_record(folder, f"{name}_0003", ecg_like(2 * unit, fs, 1, seed=3), fs, ["V"])
    (folder / f"{name}_layout.hea").write_text(
        f"{name}_layout 2 {fs:g} 0\n" + "".join(f"~ 0 {GAIN:g}/mV 16 0 0 0 0 {s}\n" for s in ("II", "V")))
    gap = int(unit * fs)
    (folder / f"{name}.hea").write_text(
        f"{name}/5 2 {fs:g} {3 * n + gap}\n{name}_layout 0\n{name}_0001 {n}\n~ {gap}\n{name}_0002 {n}\n{name}_0003 {n}\n")
    return folder / f"{name}.hea"


def fixed_layout_record(folder: Path, fs: float = 300.0, name: str = "frec", leads: int = 2) -> Path:
    """Master header of a fixed-layout record: two segments of 6 s, leads I and II (or I alone) in both."""
    folder.mkdir(parents=True, exist_ok=True)
    n = int(6 * fs)
    for k in (1, 2):
        write_record(folder, f"{name}_{k}", ecg_like(6, fs, leads, seed=k), fs, ["I", "II"][:leads])
    (folder / f"{name}.hea").write_text(f"{name}/2 {leads} {fs:g} {2 * n}\n{name}_1 {n}\n{name}_2 {n}\n")
    return folder / f"{name}.hea"


def gapped_record(folder: Path, gaps: list[tuple[float, int]], seconds: float = 20.0, fs: float = 300.0,
                  name: str = "gaps") -> Path:
    """A one-lead record with `n` missing samples (WFDB's invalid-sample value) from each `(second, n)`."""
    folder.mkdir(parents=True, exist_ok=True)
    sig = ecg_like(seconds, fs)
    for second, count in gaps:
        a = int(round(second * fs))
        sig[a : a + count, 0] = np.nan
    return write_record(folder, name, sig, fs, ["II"])


def skewed_record(folder: Path, skew: int, seconds: float = 20.0, fs: float = 300.0, name: str = "skew") -> Path:
    """Two leads in one format-16 file, lead 0 stated with a skew of `skew` samples: its last `skew`
    samples are undefined (wfdb reads them as missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    hea = write_record(folder, name, ecg_like(seconds, fs, 2), fs, ["II", "V"])
    lines = hea.read_text().splitlines()
    parts = lines[1].split()
    parts[1] = f"{parts[1]}:{skew}"
    lines[1] = " ".join(parts)
    hea.write_text("\n".join(lines) + "\n")
    return hea


def flac_record(folder: Path, seconds: float = 20.0, fs: float = 300.0, name: str = "flac") -> Path:
    """A one-lead record in FLAC-compressed format 516 (16-bit)."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_record(folder, name, ecg_like(seconds, fs), fs, ["II"], fmt="516")


def truncated_212(folder: Path, seconds: float = 20.0, fs: float = 300.0, name: str = "trunc") -> Path:
    """Two leads in format 212 whose signal file lost its second half."""
    folder.mkdir(parents=True, exist_ok=True)
    hea = write_record(folder, name, ecg_like(seconds, fs, 2), fs, ["II", "V"], fmt="212")
    dat = folder / f"{name}.dat"
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
    return hea


def empty_header(folder: Path, name: str = "empty") -> Path:
    """A 0-byte header next to a signal file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.dat").write_bytes(b"\0" * 1000)
    (folder / f"{name}.hea").write_bytes(b"")
    return folder / f"{name}.hea"


def one_row_csv(folder: Path, values: int = 3000, name: str = "row") -> Path:
    """One lead written as one row of `values` comma-separated values."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text(",".join(f"{v:.4f}" for v in ecg_like(values / 300.0, 300.0)[:, 0]) + "\n")
    return folder / f"{name}.csv"
