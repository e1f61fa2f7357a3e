"""`synthetic`: realistic synthetic single-lead ECG (N, A, O) that needs no download.

Beats follow the Gaussian-wave beat model of ECGSYN (McSharry et al. 2003): each P, Q, R, S
and T wave is a Gaussian bump placed relative to the R time, the T wave and PR interval
stretching with the RR interval (Bazett-like). Rhythm classes differ the way the real ones do:

- N: sinus rhythm, RR with respiratory (HF ~0.25 Hz) and Mayer (LF ~0.1 Hz) modulation.
- A: atrial fibrillation, RR intervals irregular (independent draws), no P waves, a
  fibrillatory baseline (4-9 Hz f-waves of drifting frequency).
- O: sinus rhythm with premature ventricular beats (wide QRS, no P, inverted T,
  compensatory pause), the commonest "other rhythm" finding.

Every record is generated from `(seed, index)` alone, so `load()` of one record is
deterministic and independent of the others.
"""

from __future__ import annotations

import numpy as np
import pydantic

import ecgzoo
from ecgzoo_plugins.paper import CHALLENGE_CLASSES, PAPER_PIPELINE

CLASSES = ("N", "A", "O")

# (name, offset from R in s at RR=1 s, width s, amplitude mV); offsets of P/T scale with sqrt(RR)
_SINUS_WAVES = (
    ("P", -0.20, 0.025, 0.15),
    ("Q", -0.030, 0.010, -0.12),
    ("R", 0.0, 0.011, 1.0),
    ("S", 0.030, 0.011, -0.25),
    ("T", 0.30, 0.055, 0.30),
)
_PVC_WAVES = (
    ("R", 0.0, 0.035, 1.3),
    ("S", 0.07, 0.035, -0.4),
    ("T", 0.32, 0.07, -0.35),
)


class SyntheticConfig(ecgzoo.PluginConfig):
    records: int = pydantic.Field(300, ge=1, description="number of records in total (classes take turns N, A, O, N, ...)")
    records_per_class: int | None = pydantic.Field(
        None, ge=1, description="records of each class; when set, overrides `records` (total = 3 x this)"
    )
    seconds: float = pydantic.Field(30.0, ge=2.0, le=120.0, description="duration of every record in seconds")
    fs: float = pydantic.Field(300.0, ge=100.0, le=2000.0, description="sampling rate in Hz (the challenge's 300)")
    seed: int = pydantic.Field(0, ge=0, description="random seed: same seed, same records")
    noise: float = pydantic.Field(0.03, ge=0.0, le=1.0, description="standard deviation of white measurement noise in mV")
    baseline_wander: float = pydantic.Field(0.1, ge=0.0, le=2.0, description="amplitude of slow (0.1-0.5 Hz) baseline wander in mV")


def _rr_series(rng: np.random.Generator, label: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times (s) and a per-beat flag "is ventricular ectopic" covering `seconds`."""
    hr = rng.uniform(55, 95) if label != "A" else rng.uniform(75, 120)
    mean_rr = 60.0 / hr
    times, ectopic = [], []
    t = rng.uniform(0.1, mean_rr)
    lf_phase, hf_phase = rng.uniform(0, 2 * np.pi, 2)
    hf_freq = rng.uniform(0.2, 0.35)
    next_pvc = rng.integers(2, 6)
    beat = 0
    while t < seconds - 0.05:
        times.append(t)
        if label == "A":
            rr = mean_rr * rng.uniform(0.55, 1.45)
            ectopic.append(False)
        else:
            rr = mean_rr * (1 + 0.04 * np.sin(2 * np.pi * 0.1 * t + lf_phase)
                            + 0.05 * np.sin(2 * np.pi * hf_freq * t + hf_phase)) + rng.normal(0, 0.01)
            is_pvc = label == "O" and beat == next_pvc
            ectopic.append(bool(is_pvc))
            if is_pvc:
                next_pvc = beat + rng.integers(2, 6)
                # a premature beat: this beat came early, the next is delayed (compensatory pause)
                times[-1] = times[-2] + 0.62 * mean_rr if len(times) > 1 else t
                t = times[-1]
                rr = 2 * mean_rr - 0.62 * mean_rr
        t += rr
        beat += 1
    return np.asarray(times), np.asarray(ectopic, dtype=bool)


def _add_wave(out: np.ndarray, fs: float, centre: float, width: float, amplitude: float) -> None:
    lo = max(0, int((centre - 4 * width) * fs))
    hi = min(out.size, int((centre + 4 * width) * fs) + 1)
    if hi <= lo:
        return
    t = np.arange(lo, hi) / fs
    out[lo:hi] += amplitude * np.exp(-0.5 * ((t - centre) / width) ** 2)


def synthesize(index: int, label: str, config: SyntheticConfig) -> np.ndarray:
    """One record's signal in mV, shape (samples,), float64."""
    rng = np.random.default_rng([config.seed, index])
    fs, n = config.fs, int(round(config.seconds * config.fs))
    out = np.zeros(n)
    gain = rng.uniform(0.6, 1.6)
    times, ectopic = _rr_series(rng, label, config.seconds)
    rrs = np.diff(np.concatenate([times, [times[-1] + 60 / 75]])) if times.size else np.array([])
    for t_r, rr, pvc in zip(times, rrs, ectopic, strict=True):
        scale = np.sqrt(np.clip(rr, 0.3, 2.0))
        waves = _PVC_WAVES if pvc else _SINUS_WAVES
        for name, offset, width, amp in waves:
            if name == "P" and label == "A":
                continue
            shift = offset * scale if name in ("P", "T") else offset
            _add_wave(out, fs, t_r + shift, width * (scale if name == "T" else 1.0), gain * amp * rng.normal(1, 0.05))
    t = np.arange(n) / fs
    if label == "A":  # fibrillatory waves of slowly drifting frequency
        freq = rng.uniform(4, 9) + 0.5 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 2 * np.pi))
        out += rng.uniform(0.04, 0.1) * np.sin(2 * np.pi * np.cumsum(freq) / fs)
    if config.baseline_wander > 0:
        out += config.baseline_wander * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))
    if config.noise > 0:
        out += rng.normal(0, config.noise, n)
    return out


class SyntheticDataset(ecgzoo.Dataset):
    """Synthetic N / A / O records at `fs` Hz; labels take turns so every class is present."""

    classes = CLASSES
    default_preprocessing = PAPER_PIPELINE
    scored_classes = CHALLENGE_CLASSES

    def __init__(self, config: SyntheticConfig):
        self.config = config
        self.n = config.records_per_class * len(CLASSES) if config.records_per_class else config.records
        self._ids = [f"S{i:05d}" for i in range(self.n)]

    def __repr__(self) -> str:
        return f"SyntheticDataset(records={self.n}, seed={self.config.seed})"

    def record_ids(self) -> list[str]:
        return list(self._ids)

    def _index(self, record_id: str) -> int:
        try:
            index = int(record_id[1:]) if record_id.startswith("S") else -1
        except ValueError:
            index = -1
        if not 0 <= index < self.n:
            raise ecgzoo.RecordError(record_id, f"no such synthetic record (ids are S00000..S{self.n - 1:05d})")
        return index

    def label(self, record_id: str) -> str:
        return CLASSES[self._index(record_id) % len(CLASSES)]

    def load(self, record_id: str) -> ecgzoo.Record:
        index = self._index(record_id)
        label = CLASSES[index % len(CLASSES)]
        signal = synthesize(index, label, self.config).astype(np.float32)[None, :]
        return ecgzoo.Record(signal=signal, fs=self.config.fs, record_id=record_id, label=label, units="mV",
                             meta={"source": "synthetic"})


@ecgzoo.hookimpl
def ecgzoo_datasets() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("synthetic", SyntheticDataset, SyntheticConfig,
                              summary="synthetic ECG (ECGSYN-style beats): normal, AF, ectopic; offline, deterministic by seed")]
