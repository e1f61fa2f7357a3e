"""Explaining a whole recording of any length with a finished run, window by window.

The recording is cut into the model's input windows exactly as `ecgzoo predict` cuts it
(`window_bounds`), each window goes through the run's own preprocessing, is classified, and then
explained for one class with each explainer, a batch of windows at a time. The maps are joined
back into one map per explainer at the model's rate; the trace is the recording as given (mV),
through only the steps of the run's preprocessing that choose leads and rate (`select-leads`,
`resample`): not the normalised model input, and only the recorded part (a window padded to the
model's input length is said in the notes). That is what the interactive viewer (`ecgzoo.report.viewer`)
shows. Probabilities are the task's (softmax for single-label, a sigmoid per label for multi-label).
The explained class is the given `target`, else the recording's most probable class (the mean of
the windows' probabilities, as predict reports).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ecgzoo.core.explainer import Explainer
from ecgzoo.core.record import Record, RecordError
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.signal_source import NOT_ANALYSED, InputError, MissingSamples, SignalSource
from ecgzoo.serving.loaded_run import LoadedRun
from ecgzoo.serving.predict import NON_FINITE, _batches, fit_leads, format_time, pipeline_for, read_window, window_bounds

#: the preprocessing steps the drawn trace goes through too (which leads, which rate); the others
#: (filters, normalisation, padding) make the model's input and are not drawn
TRACE_STEPS = ("select-leads", "resample")
#: seconds read on either side of each stretch of the trace, so resampling has no edge effects at its joins
TRACE_MARGIN_S = 1.0


@dataclasses.dataclass
class ExplainedRecording:
    """A recording's model input joined over windows, its maps and its per-window probabilities."""

    name: str
    fs: float
    units: str
    signal: np.ndarray  # (leads, T) the recording in `units`, at the model's rate `fs`; not preprocessed
    maps: dict[str, np.ndarray]  # explainer -> (T,)
    windows: list[tuple[float, float, np.ndarray | None]]  # start_s, end_s, probabilities (None: not classified)
    target: int
    notes: list[str]
    lead_names: list[str] | None = None  # of the rows of `signal`
    source_fs: float | None = None  # the recording's own rate
    problems: list[str | None] | None = None  # per window, why it has no class ("not analysed: N missing samples", ...)


def gap_track(windows: Sequence[tuple[float, float, Any]], problems: Sequence[str | None]) -> list[dict[str, Any]]:
    """The viewer's gap track: one band per window with missing samples (its problem starts with
    `NOT_ANALYSED`), {"start", "end" (s), "text": "not analysed: N missing samples"}."""
    return [{"start": float(a), "end": float(b), "text": problem}
            for (a, b, _), problem in zip(windows, problems, strict=True) if (problem or "").startswith(NOT_ANALYSED)]


def source_windows(run: LoadedRun, source: SignalSource) -> list[tuple[int, int]]:
    """The model-input-long windows [a, b) of `source` in its own samples, as `ecgzoo predict` cuts them."""
    return window_bounds(source.samples, int(round(run.input_samples / run.fs * source.fs)))


def prepare_window(run: LoadedRun, pipeline: Callable[[Record], Record], source: SignalSource, a: int, b: int) -> tuple:
    """(start_s, end_s, Record | None, problem): samples [a, b) of `source` through `pipeline` (the run's,
    from `pipeline_for`); a window that cannot be preprocessed gets no record and says why."""
    try:
        return a / source.fs, b / source.fs, read_window(run, pipeline, source, a, b)[0], None  # as predict reads it
    except (RecordError, MissingSamples) as exc:
        return a / source.fs, b / source.fs, None, exc.problem


def _prepare(run: LoadedRun, source: SignalSource) -> tuple[list, list[str]]:
    """[(start_s, end_s, Record | None, problem)] for each window, and notes (`source`'s leads already fitted)."""
    pipeline, notes = pipeline_for(run, source.fs)
    out = [prepare_window(run, pipeline, source, a, b) for a, b in source_windows(run, source)]
    bad = [w for w in out if w[2] is None]
    if len(bad) == len(out):
        raise InputError(f"{source.path}: no window could be preprocessed ({bad[0][3]})")
    gaps = [w for w in bad if w[3].startswith(NOT_ANALYSED)]
    if gaps:
        listed = ", ".join(f"{format_time(a)}-{format_time(b)} ({p.removeprefix(NOT_ANALYSED).strip()})" for a, b, _, p in gaps[:20])
        more = f" and {len(gaps) - 20} more" if len(gaps) > 20 else ""
        notes.append(f"{len(gaps)} of {len(out)} window(s) {NOT_ANALYSED} missing samples, shown flat with no map: {listed}{more}")
    if len(bad) > len(gaps):
        first = next(w for w in bad if w not in gaps)
        notes.append(f"{len(bad) - len(gaps)} of {len(out)} window(s) could not be preprocessed (first: {first[3]}); shown flat")
    padded = [w for w in out if w[2] is not None and run.input_samples - w[2].valid_length > 1]  # not resampling's rounding
    if padded:
        w = padded[-1]
        notes.append(f"{'the recording' if len(out) == 1 else 'its last window'} ({w[1] - w[0]:g} s) is shorter than the "
                     f"model's input ({run.input_samples / run.fs:g} s): padded for the model; only the recorded part is drawn")
    return out, notes


def _trace_pipeline(run: LoadedRun, source_fs: float, fs: float) -> Pipeline:
    steps = [s for s in pipeline_for(run, source_fs)[0].config if s["name"] in TRACE_STEPS]
    return Pipeline([*steps, {"name": "resample", "fs": fs}])


def trace_stretch(run: LoadedRun, source: SignalSource, a: int, b: int, fs: float,
                  pipeline: Pipeline | None = None) -> Record:
    """The recording's samples a..b (at its own rate) as given, in mV, at `fs`: through only the run's lead- and
    rate-choosing steps (TRACE_STEPS), read with a margin for the resampler. Raises MissingSamples for a stretch
    with missing samples and InputError for one the steps refuse. Who calls: `explain_recording` (the viewer's
    trace) and `ecgzoo explain` (the trace of its pictures)."""
    pipeline = pipeline or _trace_pipeline(run, source.fs, fs)
    margin = int(round(TRACE_MARGIN_S * source.fs))
    a0, b1 = max(0, a - margin), min(source.samples, b + margin)
    try:
        rec = pipeline(Record(source.read(a0, b1), source.fs, source.name, lead_names=source.lead_names or None))
    except RecordError as exc:
        raise InputError(f"{source.path}: {exc.problem}") from None
    first = int(round((a - a0) * fs / source.fs))
    n = max(0, min(int(round(b * fs / source.fs)) - int(round(a * fs / source.fs)), rec.samples - first))
    return rec.replace(signal=np.ascontiguousarray(rec.signal[:, first:first + n]), valid_length=n)


def _trace(run: LoadedRun, source: SignalSource, fs: float, total: int) -> tuple[np.ndarray, list[str] | None]:
    """The recording as given (leads, total) at `fs` and its lead names, a model-input-long stretch at a time."""
    pipeline = _trace_pipeline(run, source.fs, fs)
    stretch = int(round(run.input_samples / run.fs * source.fs))
    out, names = None, None
    for a in range(0, source.samples, stretch):
        b = min(source.samples, a + stretch)
        try:
            rec = trace_stretch(run, source, a, b, fs, pipeline)
        except MissingSamples:
            continue  # a stretch with missing samples is drawn flat (the notes list those windows)
        if out is None:
            out, names = np.zeros((rec.leads, total), dtype=np.float32), rec.lead_names
        start = int(round(a * fs / source.fs))
        n = min(rec.samples, total - start)
        out[:, start:start + n] = rec.signal[:, :n]
    return out, None if names is None else list(names)


def explain_recording(run: LoadedRun, source: SignalSource, explainers: Mapping[str, Explainer], *,
                      target: int | None = None, batch_size: int = 16, device: str = "cpu") -> ExplainedRecording:
    """Classify and explain every window of `source` with each explainer (bounded memory per batch).

    The recording's leads are fitted to the model as `ecgzoo predict` fits them (`fit_leads`: by name
    for a multi-lead model when both name their leads, else by count)."""
    source, lead_notes = fit_leads(run, source)
    windows, notes = _prepare(run, source)
    notes[:0] = lead_notes
    model = run.model.to(device).eval()
    ok = [i for i, w in enumerate(windows) if w[2] is not None]
    probs = window_probabilities(run, model, windows, ok, batch_size, device, notes)
    if target is None:
        target = int(np.mean(list(probs.values()), axis=0).argmax())
    first = windows[ok[0]][2]
    fs = first.fs
    total = int(round(source.samples / source.fs * fs))
    signal, lead_names = _trace(run, source, fs, total)
    if lead_names is None and run.lead_names and len(run.lead_names) == len(signal):
        lead_names = list(run.lead_names)  # unnamed leads are taken in the model's order, as predict takes them
        notes.append(f"the recording names no leads: taken as the model's {', '.join(lead_names)}")
    maps = {name: np.zeros(total, dtype=np.float32) for name in explainers}
    for batch in _batches(ok, batch_size):
        recs = [windows[i][2] for i in batch]
        x, vl = stack_windows(recs, device)
        tgt = torch.full((len(batch),), target, dtype=torch.long, device=device)
        attrs = {n: e.explain(model, x, tgt, vl, fs=fs).detach().cpu().numpy() for n, e in explainers.items()}
        for k, (i, rec) in enumerate(zip(batch, recs, strict=True)):
            a = int(round(windows[i][0] * fs))
            n = min(rec.valid_length, total - a)
            for name in explainers:
                maps[name][a:a + n] = attrs[name][k, :n]
    problems = [p if p else None if i in probs else NON_FINITE for i, (_, _, _, p) in enumerate(windows)]
    return ExplainedRecording(source.name, fs, "mV", signal, maps,
                              [(a, b, probs.get(i)) for i, (a, b, _, _) in enumerate(windows)], target, notes,
                              lead_names, source.fs, problems)


def window_probabilities(run: LoadedRun, model: torch.nn.Module, windows: list, ok: list[int], batch_size: int, device: str,
                   notes: list[str]) -> dict[int, np.ndarray]:
    """{window index: the task's probabilities} (softmax, or a sigmoid per label for multi-label
    tasks); a window whose output is not finite gets none (said in the notes)."""
    probs: dict[int, np.ndarray] = {}
    for batch in _batches(ok, batch_size):
        x, vl = stack_windows([windows[i][2] for i in batch], device)
        with torch.no_grad():
            p = run.task.probabilities(model(x, valid_length=vl).float()).cpu().numpy()
        probs.update((i, row) for i, row in zip(batch, p, strict=True) if np.isfinite(row).all())
    if len(probs) < len(ok):
        if not probs:
            raise InputError(f"{windows[ok[0]][2].record_id}: {NON_FINITE}")
        notes.append(f"{len(ok) - len(probs)} window(s): {NON_FINITE}")
    return probs


def stack_windows(recs: list[Record], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([r.signal for r in recs]).astype(np.float32)).to(device)
    return x, torch.tensor([r.valid_length for r in recs], device=device)
