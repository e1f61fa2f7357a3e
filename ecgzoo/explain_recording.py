"""Explaining a whole recording of any length with a finished run, window by window.

The recording is cut into the model's input windows exactly as `ecgzoo predict` cuts it
(`window_bounds`), each window goes through the run's own preprocessing, is classified, and then
explained for one class with each explainer, a batch of windows at a time. The preprocessed
windows and their maps are joined back into one trace and one map per explainer at the model's
rate: what the interactive viewer (`ecgzoo.viewer`) shows. The explained class is the given
`target`, else the recording's class (the mean of the windows' probabilities, as predict reports).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import torch

from ecgzoo.explainer import Explainer
from ecgzoo.inputs import NOT_ANALYSED, InputError, MissingSamples, SignalSource
from ecgzoo.predict import _batches, format_time, pipeline_for, window_bounds
from ecgzoo.record import Record, RecordError
from ecgzoo.run_dir import LoadedRun


@dataclasses.dataclass
class ExplainedRecording:
    """A recording's model input joined over windows, its maps and its per-window probabilities."""

    name: str
    fs: float
    units: str
    signal: np.ndarray  # (leads, T) preprocessed, at `fs`
    maps: dict[str, np.ndarray]  # explainer -> (T,)
    windows: list[tuple[float, float, np.ndarray | None]]  # start_s, end_s, probabilities (None: not classified)
    target: int
    notes: list[str]


def _prepare(run: LoadedRun, source: SignalSource) -> tuple[list, list[str]]:
    """[(start_s, end_s, Record | None, problem)] for each window, and notes."""
    if source.leads != run.in_leads:
        raise InputError(f"{source.path}: {source.leads} lead(s), the model of {run.path} takes {run.in_leads}")
    pipeline, notes = pipeline_for(run, source.fs)
    bounds = window_bounds(source.samples, int(round(run.input_samples / run.fs * source.fs)))
    out = []
    for a, b in bounds:
        try:
            rec = pipeline(Record(source.read(a, b), source.fs, f"{source.name}@{a / source.fs:.1f}s"))
            out.append((a / source.fs, b / source.fs, rec, None))
        except (RecordError, MissingSamples) as exc:
            out.append((a / source.fs, b / source.fs, None, exc.problem))
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
    return out, notes


def explain_recording(run: LoadedRun, source: SignalSource, explainers: Mapping[str, Explainer], *,
                      target: int | None = None, batch_size: int = 16, device: str = "cpu") -> ExplainedRecording:
    """Classify and explain every window of `source` with each explainer (bounded memory per batch)."""
    windows, notes = _prepare(run, source)
    model = run.model.to(device).eval()
    ok = [i for i, w in enumerate(windows) if w[2] is not None]
    probs: dict[int, np.ndarray] = {}
    for batch in _batches(ok, batch_size):
        x, vl = _stack([windows[i][2] for i in batch], device)
        with torch.no_grad():
            p = torch.softmax(model(x, valid_length=vl).float(), dim=1).cpu().numpy()
        probs.update(zip(batch, p, strict=True))
    if target is None:
        target = int(np.mean(list(probs.values()), axis=0).argmax())
    first = windows[ok[0]][2]
    fs = first.fs
    total = int(round(windows[-1][1] * fs))
    signal = np.zeros((run.in_leads, total), dtype=np.float32)
    maps = {name: np.zeros(total, dtype=np.float32) for name in explainers}
    for batch in _batches(ok, batch_size):
        recs = [windows[i][2] for i in batch]
        x, vl = _stack(recs, device)
        tgt = torch.full((len(batch),), target, dtype=torch.long, device=device)
        attrs = {n: e.explain(model, x, tgt, vl, fs=fs).detach().cpu().numpy() for n, e in explainers.items()}
        for k, (i, rec) in enumerate(zip(batch, recs, strict=True)):
            a = int(round(windows[i][0] * fs))
            n = min(rec.valid_length, total - a)
            signal[:, a:a + n] = rec.signal[:, :n]
            for name in explainers:
                maps[name][a:a + n] = attrs[name][k, :n]
    return ExplainedRecording(source.name, fs, first.units, signal, maps,
                              [(a, b, probs.get(i)) for i, (a, b, _, _) in enumerate(windows)], target, notes)


def _stack(recs: list[Record], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([r.signal for r in recs]).astype(np.float32)).to(device)
    return x, torch.tensor([r.valid_length for r in recs], device=device)
