"""Beat templates: cut a signal and its attribution map around each R-peak (the paper's view).

A template runs from 250 ms before to 400 ms after an R-peak, so P wave, QRS complex and
T wave of one beat line up across beats; overlaying them and drawing their mean shows
which part of the beat drew attention, and the RR interval before each beat shows whether
rhythm irregularity did.

R-peaks come from `record.meta["rpeaks"]` when a preprocessor stored them, otherwise from
the `rpeaks` preprocessor plugin when one is installed, otherwise from wfdb's XQRS detector.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ecgzoo.core.record import Record, RecordError

BEFORE_S = 0.25
AFTER_S = 0.40


@dataclasses.dataclass
class BeatTemplates:
    """Aligned beats of one record (one lead) and of its attribution map."""

    offsets_ms: np.ndarray  # (W,) time of each template sample relative to the R-peak, ms
    signal: np.ndarray  # (n_beats, W)
    attribution: np.ndarray  # (n_beats, W)
    rpeaks: np.ndarray  # (n_beats,) sample index of each kept R-peak
    rr_s: np.ndarray  # (n_beats,) RR interval before each kept beat in s (nan for the first R-peak)
    fs: float
    record_id: str = ""

    @property
    def count(self) -> int:
        return int(self.signal.shape[0])

    def mean_signal(self) -> np.ndarray:
        return self.signal.mean(axis=0)

    def mean_attribution(self) -> np.ndarray:
        return self.attribution.mean(axis=0)


def template_offsets(fs: float, before_s: float = BEFORE_S, after_s: float = AFTER_S) -> np.ndarray:
    """Sample offsets from the R-peak covered by a template: -round(before*fs) .. round(after*fs) - 1."""
    if not fs > 0:
        raise ValueError(f"sampling rate fs must be positive, got {fs}")
    return np.arange(-round(before_s * fs), round(after_s * fs))


def cut_templates(
    signal: np.ndarray,
    attribution: np.ndarray,
    rpeaks: Sequence[int] | np.ndarray,
    fs: float,
    *,
    lead: int = 0,
    valid_length: int | None = None,
    before_s: float = BEFORE_S,
    after_s: float = AFTER_S,
    record_id: str = "",
) -> BeatTemplates:
    """Templates of one lead of signal (T,) or (leads, T) and of attribution (T,).

    Beats whose window would reach before the start or past the valid part are left out
    (a template never contains padding).
    """
    sig = np.asarray(signal, dtype=np.float32)
    sig = sig[None] if sig.ndim == 1 else sig
    if sig.ndim != 2 or not 0 <= lead < sig.shape[0]:
        raise ValueError(f"signal must be (T,) or (leads, T) with lead {lead} present, got shape {sig.shape}")
    samples = sig.shape[1]
    attr = np.asarray(attribution, dtype=np.float32)
    if attr.shape != (samples,):
        raise ValueError(f"attribution must have shape ({samples},), got {attr.shape}")
    valid = samples if valid_length is None else int(valid_length)
    peaks = np.sort(np.asarray(rpeaks, dtype=np.int64).reshape(-1))
    offsets = template_offsets(fs, before_s, after_s)
    rr_all = np.concatenate([[np.nan], np.diff(peaks) / fs]) if len(peaks) else np.zeros(0)
    keep = (peaks + offsets[0] >= 0) & (peaks + offsets[-1] < valid)
    kept = peaks[keep]
    idx = kept[:, None] + offsets[None, :]
    return BeatTemplates(
        offsets_ms=offsets / fs * 1000.0,
        signal=sig[lead][idx] if len(kept) else np.zeros((0, len(offsets)), np.float32),
        attribution=attr[idx] if len(kept) else np.zeros((0, len(offsets)), np.float32),
        rpeaks=kept,
        rr_s=rr_all[keep],
        fs=float(fs),
        record_id=record_id,
    )


def detect_rpeaks(record: Record, lead: int = 0) -> np.ndarray:
    """R-peak sample positions of a record within its valid part (see the module docstring for the source)."""
    stored = record.meta.get("rpeaks")
    if stored is not None:
        return np.asarray(stored, dtype=np.int64).reshape(-1)
    from ecgzoo.core.create import create_preprocessor, list_plugins

    if "rpeaks" in list_plugins("preprocessor"):
        found = create_preprocessor("rpeaks")(record).meta.get("rpeaks")
        if found is not None:
            return np.asarray(found, dtype=np.int64).reshape(-1)
    from wfdb.processing import xqrs_detect

    sig = np.asarray(record.signal[lead, : record.valid_length], dtype=np.float64)
    if sig.size < 2 * record.fs:
        raise RecordError(record.record_id, f"too short for R-peak detection ({sig.size} samples at {record.fs} Hz)")
    return np.asarray(xqrs_detect(sig, fs=record.fs, verbose=False), dtype=np.int64)


def record_templates(record: Record, attribution: np.ndarray, *, lead: int = 0, normalise: bool = True) -> BeatTemplates:
    """Templates of a record and its map; with `normalise`, the map is divided by its largest |value|
    over the valid part so records can be averaged on one scale."""
    attr = np.asarray(attribution, dtype=np.float32)
    if normalise:
        scale = float(np.abs(attr[: record.valid_length]).max()) if attr.size else 0.0
        attr = attr / scale if scale > 0 else attr
    return cut_templates(record.signal, attr, detect_rpeaks(record, lead), record.fs, lead=lead,
                         valid_length=record.valid_length, record_id=record.record_id)


def lead_templates(record: Record, attribution: np.ndarray, *, normalise: bool = True) -> list[BeatTemplates]:
    """Templates of every lead and its own map (attribution (leads, T)), cut at the R-peaks of one
    reference lead (II when the record names it, else the first) so beats line up across leads;
    with `normalise`, maps are divided by their largest |value| over all leads' valid part."""
    attr = np.asarray(attribution, dtype=np.float32)
    if attr.shape != record.signal.shape:
        raise ValueError(f"attribution must have the signal's shape {record.signal.shape}, got {attr.shape}")
    if normalise:
        scale = float(np.abs(attr[:, : record.valid_length]).max()) if attr.size else 0.0
        attr = attr / scale if scale > 0 else attr
    names = list(record.lead_names or [])
    reference = names.index("II") if "II" in names else 0
    peaks = detect_rpeaks(record, reference)
    return [cut_templates(record.signal, attr[lead], peaks, record.fs, lead=lead, valid_length=record.valid_length,
                          record_id=record.record_id) for lead in range(record.leads)]


def pool(templates: Sequence[BeatTemplates]) -> BeatTemplates:
    """All beats of several records as one set (for class averages); records must share fs."""
    if not templates:
        raise ValueError("no beat templates to pool")
    rates = {t.fs for t in templates}
    if len(rates) > 1:
        raise ValueError(f"cannot pool templates at different sampling rates {sorted(rates)}")
    return BeatTemplates(
        offsets_ms=templates[0].offsets_ms,
        signal=np.concatenate([t.signal for t in templates]),
        attribution=np.concatenate([t.attribution for t in templates]),
        rpeaks=np.concatenate([t.rpeaks for t in templates]),
        rr_s=np.concatenate([t.rr_s for t in templates]),
        fs=templates[0].fs,
        record_id=",".join(t.record_id for t in templates),
    )


def class_templates(
    records: Sequence[Record], attributions: Sequence[np.ndarray], labels: Sequence[str], *, lead: int = 0,
) -> tuple[dict[str, BeatTemplates], list[tuple[str, str]]]:
    """Pooled, per-record-normalised templates of each class over a set of records (a dataset or split),
    and the (record id, problem) of records left out (R-peaks not found, no complete beat)."""
    if not len(records) == len(attributions) == len(labels):
        raise ValueError(f"{len(records)} records, {len(attributions)} maps and {len(labels)} labels: counts must match")
    by_class: dict[str, list[BeatTemplates]] = {}
    skipped: list[tuple[str, str]] = []
    for record, attribution, label in zip(records, attributions, labels, strict=True):
        try:
            templates = record_templates(record, attribution, lead=lead)
        except (RecordError, ValueError) as exc:
            skipped.append((record.record_id, str(exc)))
            continue
        if templates.count == 0:
            skipped.append((record.record_id, "no complete beat"))
            continue
        by_class.setdefault(str(label), []).append(templates)
    return {c: pool(t) for c, t in sorted(by_class.items())}, skipped
