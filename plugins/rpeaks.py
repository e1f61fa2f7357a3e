"""`rpeaks` (R-peak detection, wfdb's XQRS) and `rpeak-normalize` (divide by the median R amplitude).

The paper finds R-peaks (Hamilton-Tompkins) and scales each record by its median R-peak
amplitude so that gain differences between devices do not reach the model. Here the detector
is wfdb's XQRS (PhysioNet's maintained, validated QRS detector), each detection moved onto the
local extremum of the lead (`wfdb.processing.correct_peaks`) so the amplitude read there is the
R amplitude. When XQRS finds fewer than `min_beats` (on the 7,529 real training records this
happens 8 times, all with a large artefact early in the record that sets XQRS's learned
thresholds too high), wfdb's GQRS is tried; `meta["rpeak_detector"]` says which one found the
beats. Positions are stored in `record.meta["rpeaks"]` (sample indices) for later steps,
beat templates and explanations. A record with no detectable beat is a `RecordError`: it is
reported (or skipped with `on_error="skip"`), never normalised by garbage.
"""

from __future__ import annotations

import contextlib
import io
import logging
import types
from typing import Literal

import numpy as np
import pydantic

import ecgzoo


class RPeaksConfig(ecgzoo.PluginConfig):
    lead: int = pydantic.Field(0, ge=0, description="lead to detect R-peaks on")
    min_beats: int = pydantic.Field(2, ge=1, description="fewer detected beats than this is an error for the record")
    search_seconds: float = pydantic.Field(
        0.05, ge=0.0, le=0.2, description="each detection is moved to the largest |amplitude| within this many seconds"
    )
    fallback: Literal["gqrs", "none"] = pydantic.Field(
        "gqrs", description="detector to try when XQRS finds fewer than min_beats (wfdb's GQRS), or none"
    )


def find_local_peaks(sig: np.ndarray, radius: int) -> np.ndarray:
    """Same result as `wfdb.processing.peaks.find_local_peaks`, without its per-sample Python `max`.

    wfdb's version (4.x) compares each sample with `max(sig[i - radius : i + radius])` in a
    Python loop, which is ~90% of XQRS's time. Here the window maxima come from one
    `maximum_filter1d` over the same windows (size 2 * radius: samples i - radius .. i + radius - 1,
    clipped at the ends), and only the candidate samples are walked with wfdb's rule (after a
    peak at i, continue at i + radius). tests/test_preprocessors.py checks equality with wfdb's.
    """
    from scipy.ndimage import maximum_filter1d

    sig = np.asarray(sig)
    if np.min(sig) == np.max(sig):
        return np.empty(0)
    if radius < 1:  # wfdb's windows are empty then; keep its own behaviour for this corner
        from wfdb.processing.peaks import find_local_peaks as original

        return original(sig, radius)
    window_max = maximum_filter1d(sig, size=2 * radius, mode="nearest")
    peaks, next_allowed = [], 0
    for i in np.flatnonzero(sig == window_max):
        if i >= next_allowed:
            peaks.append(int(i))
            next_allowed = i + radius
    return np.array(peaks)


def _fast_xqrs() -> type:
    """wfdb's XQRS whose two methods that search local peaks use `find_local_peaks` above.

    The methods are wfdb's own code objects given a namespace where the name resolves to the
    vectorised search; wfdb's module is never modified, so other XQRS users (other threads, a
    notebook) keep wfdb's function.
    """
    from wfdb.processing import qrs

    namespace = {**vars(qrs), "find_local_peaks": find_local_peaks}
    methods = {}
    for name in ("_mwi", "_learn_init_params"):
        original = getattr(qrs.XQRS, name)
        methods[name] = types.FunctionType(original.__code__, namespace, name, original.__defaults__, original.__closure__)
    return type("FastXQRS", (qrs.XQRS,), methods)


def _correct(signal: np.ndarray, peaks: np.ndarray, fs: float, search_seconds: float) -> np.ndarray:
    from wfdb import processing

    radius = int(round(search_seconds * fs))
    if peaks.size and radius > 0:
        peaks = np.asarray(processing.correct_peaks(signal, peaks, search_radius=radius,
                                                    smooth_window_size=max(3, 3 * radius), peak_dir="compare"), dtype=np.int64)
        peaks = np.unique(peaks[(peaks >= 0) & (peaks < signal.size)])
    return peaks


def detect(signal: np.ndarray, fs: float, search_seconds: float = 0.05) -> np.ndarray:
    """R-peak sample indices of a 1-D signal by wfdb's XQRS, corrected onto the local extremum."""

    if signal.size < int(fs):  # XQRS needs a learning period; shorter signals have no usable beat
        return np.zeros(0, dtype=np.int64)
    logging.getLogger("wfdb").setLevel(logging.WARNING)
    x = signal.astype(np.float64)
    with contextlib.redirect_stdout(io.StringIO()):  # XQRS prints when it falls back to defaults
        xqrs = _fast_xqrs()(sig=x, fs=fs)
        xqrs.detect(verbose=False)
    return _correct(x, np.asarray(xqrs.qrs_inds, dtype=np.int64), fs, search_seconds)


def detect_gqrs(signal: np.ndarray, fs: float, search_seconds: float = 0.05) -> np.ndarray:
    """R-peaks by wfdb's GQRS (the fallback: it copes with a large artefact at the start, where XQRS's
    learned thresholds end up too high and it finds at most a beat or two), corrected likewise."""
    from wfdb import processing

    if signal.size < int(fs):
        return np.zeros(0, dtype=np.int64)
    x = signal.astype(np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        peaks = np.asarray(processing.gqrs_detect(sig=x, fs=fs), dtype=np.int64)
    return _correct(x, peaks, fs, search_seconds)


class RPeaks(ecgzoo.Preprocessor):
    """Adds `meta["rpeaks"]` (int64 sample indices); the signal is unchanged."""

    requires = ecgzoo.Requirements(min_seconds=1.0)

    def __init__(self, config: RPeaksConfig):
        self.config = config

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        lead = self.config.lead
        if lead >= record.leads:
            raise ecgzoo.RecordError(record.record_id, f"rpeaks: lead {lead} requested, record has {record.leads} lead(s)")
        x = record.signal[lead, : record.valid_length]
        peaks, detector = detect(x, record.fs, self.config.search_seconds), "xqrs"
        if peaks.size < self.config.min_beats and self.config.fallback == "gqrs":
            peaks, detector = detect_gqrs(x, record.fs, self.config.search_seconds), "gqrs"
        if peaks.size < self.config.min_beats:
            raise ecgzoo.RecordError(
                record.record_id,
                f"rpeaks: {peaks.size} beat(s) detected in {record.duration_s:.1f} s on lead {lead} "
                f"(need {self.config.min_beats}; XQRS{'' if self.config.fallback == 'none' else ', then GQRS'}); "
                "flat, noisy or not an ECG",
            )
        return record.replace(meta={**record.meta, "rpeaks": peaks, "rpeak_detector": detector})


class RPeakNormalizeConfig(ecgzoo.PluginConfig):
    min_amplitude: float = pydantic.Field(
        1e-3, gt=0.0, description="a median R amplitude below this (in the signal's units) is an error, not a divisor"
    )


class RPeakNormalize(ecgzoo.Preprocessor):
    """Each lead divided by its median |amplitude| at the R-peaks in `meta["rpeaks"]`."""

    def __init__(self, config: RPeakNormalizeConfig):
        self.config = config

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        peaks = record.meta.get("rpeaks")
        if peaks is None:
            raise ecgzoo.RecordError(record.record_id, "rpeak-normalize needs R-peaks: put the 'rpeaks' step before it")
        peaks = np.asarray(peaks, dtype=np.int64)
        peaks = peaks[peaks < record.valid_length]
        if peaks.size == 0:
            raise ecgzoo.RecordError(record.record_id, "rpeak-normalize: no R-peak inside the valid part of the record")
        amplitude = np.median(np.abs(record.signal[:, peaks].astype(np.float64)), axis=1)
        small = np.flatnonzero(amplitude < self.config.min_amplitude)
        if small.size:
            raise ecgzoo.RecordError(
                record.record_id, f"rpeak-normalize: median R amplitude {amplitude[small].tolist()} on lead(s) "
                f"{small.tolist()} is below {self.config.min_amplitude:g}")
        out = (record.signal / amplitude[:, None]).astype(np.float32)
        return record.replace(signal=out, units="a.u.", meta={**record.meta, "rpeak_amplitude": amplitude.tolist()})


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec("rpeaks", RPeaks, RPeaksConfig, summary="R-peak detection (wfdb XQRS) into meta['rpeaks']"),
        ecgzoo.PluginSpec("rpeak-normalize", RPeakNormalize, RPeakNormalizeConfig,
                          summary="divide by the median R-peak amplitude (needs rpeaks)"),
    ]
