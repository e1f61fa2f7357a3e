"""Classifying new recordings with a finished run, window by window when they are long.

A recording no longer than the model's input is classified once. A longer one (a 24-hour
Holter) is cut into consecutive windows of the model's input duration; each window goes
through the run's own preprocessing and the model, a batch of windows at a time, so memory
stays bounded by the batch whatever the recording's length (inputs are read in stretches,
`.npy` memory-mapped). The result holds one row per window (the timeline) and the mean
probabilities over windows.

A recording at another sampling rate than the run's data is resampled by the run's
`resample` step when the pipeline has one, else by a `resample` step put in front (and a
message says so). Leads: a multi-lead model whose leads are named meets a file that names its
leads by name (`fit_leads`): any order and spelling ('AVR' = 'aVR'), extra leads left out, a
missing lead an error naming it and listing the file's leads; otherwise by count. After the run's
preprocessing (which may select leads by name) the names are checked (`ecgzoo.core.leads.check_leads`).

Multi-label runs give a sigmoid probability per class; every class at or above its threshold
(chosen on the run's validation split, stored in the checkpoint) is a predicted label, reported
with its name, probability and threshold (`Prediction.label_list`, also in `--json` as `labels`).

Gaps: a window is read with its short gaps of missing samples bridged (`SignalSource.read_bridged`,
at most `BRIDGE_SECONDS`, counted in a note); a window that still holds missing samples is not
classified, its problem `not analysed: N missing samples` (shown in the timeline and the JSON), and
the rest go on; a note and `analysed_s` say how much of the recording the overall class covers.

Finite or nothing: a window is classified only when the model's logits and probabilities are
all finite; otherwise (damaged weights, an overflow) it is reported as failed with the reason,
like a window the preprocessing refused or a flat line (every lead constant). A recording
without a single classified window has no class (`Prediction.problem` says why), never a NaN one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from ecgzoo.core.leads import LeadMismatchError, check_leads
from ecgzoo.core.record import Record, RecordError
from ecgzoo.core.tasks import Task
from ecgzoo.data.inputs import match_leads
from ecgzoo.data.signal_source import BRIDGE_SECONDS, NOT_ANALYSED, InputError, MissingSamples, SignalSource
from ecgzoo.serving.loaded_run import LoadedRun

#: the reason given for a window whose model output is not finite
NON_FINITE = "the model's output is not finite (NaN or inf): no class given; its weights may be damaged"


@dataclasses.dataclass
class Window:
    """One classified stretch of a recording (times in seconds from its start)."""

    start_s: float
    end_s: float
    probabilities: np.ndarray | None
    problem: str | None = None
    padded_s: float = 0.0  # seconds of padding the preprocessing added to fill the model's input


@dataclasses.dataclass
class Prediction:
    """The classification of one recording: overall and per window."""

    source: str
    fs: float
    duration_s: float
    classes: list[str]
    windows: list[Window]
    notes: list[str]
    task: Task | None = None  # None: single-label over classes
    thresholds: list[float] | None = None  # multi-label decision thresholds (0.5 where None)

    @property
    def kind(self) -> Task:
        """The task of the prediction (a single-label task over `classes` where none was given)."""
        return self.task if self.task is not None else Task.single_label(self.classes)

    @property
    def threshold_values(self) -> np.ndarray:
        """Each class's decision threshold (multi-label; 0.5 where the run stored none)."""
        return np.full(len(self.classes), 0.5) if self.thresholds is None else np.asarray(self.thresholds, dtype=np.float64)

    def above(self, p: np.ndarray) -> list[int]:
        """Indices of the classes the task decides for, most probable first (multi-label: at or above their thresholds)."""
        return self.kind.chosen(p, self.threshold_values)

    def _labels(self, p: np.ndarray) -> str:
        """Predicted class, or for a multi-label task the labels at or above their thresholds ('-' for none)."""
        return ",".join(self.classes[i] for i in self.above(p)) or "-"

    def label_list(self, p: np.ndarray) -> list[dict[str, Any]]:
        """Every label decided for (class, name, probability, threshold), most probable first."""
        t = self.threshold_values
        return [{"class": self.classes[i], "name": self.kind.name(self.classes[i]), "probability": round(float(p[i]), 5),
                 "threshold": round(float(t[i]), 5)} for i in self.above(p)]

    @property
    def probabilities(self) -> np.ndarray | None:
        """Mean class probabilities over the windows that could be classified."""
        ok = [w.probabilities for w in self.windows if w.probabilities is not None]
        return np.mean(ok, axis=0) if ok else None

    @property
    def problem(self) -> str | None:
        """Why the recording has no class (None when at least one window was classified)."""
        if self.probabilities is not None:
            return None
        reasons = [w.problem for w in self.windows if w.problem]
        gaps = [r for r in reasons if r.startswith(NOT_ANALYSED)]
        if gaps and len(gaps) == len(self.windows):
            return f"nothing analysable: every window ({len(gaps)}) has missing samples (first: {gaps[0]})"
        if gaps:
            other = next(r for r in reasons if not r.startswith(NOT_ANALYSED))
            return f"no window could be classified: {len(gaps)} of {len(self.windows)} have missing samples, the others: {other}"
        return reasons[0] if reasons else "no window could be classified"

    @property
    def analysed_s(self) -> float:
        """Seconds of the recording covered by classified windows."""
        return analysed_seconds(self.windows)

    @property
    def padded_s(self) -> float:
        """Seconds of padding added to fill the model's input (a recording shorter than it); 0 when none."""
        return max((w.padded_s for w in self.windows), default=0.0)

    @property
    def label(self) -> str | None:
        p = self.probabilities
        return None if p is None else self._labels(p)

    def segments(self) -> list[tuple[float, float, str, int]]:
        """Runs of consecutive windows with the same predicted class: (start_s, end_s, class, windows)."""
        out: list[tuple[float, float, str, int]] = []
        for w in self.windows:
            cls = (w.problem if (w.problem or "").startswith(NOT_ANALYSED) else "?") if w.probabilities is None \
                else self._labels(w.probabilities)
            if out and out[-1][2] == cls:
                s, _, c, n = out[-1]
                out[-1] = (s, w.end_s, c, n + 1)
            else:
                out.append((w.start_s, w.end_s, cls, 1))
        return out

    def to_dict(self) -> dict[str, Any]:
        p = self.probabilities
        return {
            "input": self.source,
            "fs": self.fs,
            "duration_s": round(self.duration_s, 3),
            "class": self.label,
            **({"labels": self.label_list(p)} if self.kind.lists_labels and p is not None else {}),
            "probabilities": None if p is None else {c: round(float(v), 5) for c, v in zip(self.classes, p, strict=True)},
            **({"problem": self.problem} if p is None else {}),
            "analysed_s": round(self.analysed_s, 3),
            "padded_s": round(self.padded_s, 3),
            "notes": self.notes,
            "windows": [
                {
                    "start_s": round(w.start_s, 3),
                    "end_s": round(w.end_s, 3),
                    "class": None if w.probabilities is None else self._labels(w.probabilities),
                    "probabilities": None if w.probabilities is None
                    else {c: round(float(v), 5) for c, v in zip(self.classes, w.probabilities, strict=True)},
                    **({"problem": w.problem} if w.problem else {}),
                    **({"padded_s": round(w.padded_s, 3)} if w.padded_s else {}),
                }
                for w in self.windows
            ],
        }


def pipeline_for(run: LoadedRun, fs: float) -> tuple[Callable[[Record], Record], list[str]]:
    """The run's preprocessing for input at `fs`, with a resample step in front when needed."""
    from ecgzoo.data.pipeline import Pipeline

    notes: list[str] = []
    steps = list(run.pipeline.config)
    if abs(fs - run.input_fs) > 1e-6 * run.input_fs and not any(s["name"] == "resample" for s in steps):
        steps = [{"name": "resample", "fs": run.input_fs}, *steps]
        notes.append(f"input at {fs:g} Hz resampled to {run.input_fs:g} Hz, the rate the model was trained on")
        return Pipeline(steps), notes
    return run.pipeline, notes


def window_bounds(samples: int, window: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) windows covering `samples`; a short tail window is moved back to full length."""
    if samples <= window:
        return [(0, samples)]
    bounds = [(a, min(a + window, samples)) for a in range(0, samples, window)]
    a, b = bounds[-1]
    if b - a < window // 2:
        bounds[-1] = (samples - window, samples)
    return bounds


def _batches(items: list[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


#: largest plausible ECG amplitude in mV (99th percentile of |signal|); above it the units are wrong
MAX_PLAUSIBLE_MV = 50.0


def check_amplitude(signal: np.ndarray, where: str) -> None:
    """Refuse a window that is flat, or whose amplitude cannot be an ECG in mV (adu or µV given as mV).

    Models are trained on mV; a recording in ADC units is about 1000 times too large and would be
    classified confidently and wrongly, so it is an error that says what to do instead.
    """
    if signal.size == 0 or float(np.ptp(signal)) == 0.0:
        raise RecordError(where, "flat signal (every sample equal): no ECG to classify")
    level = float(np.percentile(np.abs(signal), 99))
    if level > MAX_PLAUSIBLE_MV:
        raise RecordError(where, f"amplitude {level:.0f} (99th percentile of |signal|) is not an ECG in mV; the values look like "
                                 "ADC units or microvolts: convert to mV, or give --gain ADU_PER_MV for a plain .mat")


def fit_leads(run: LoadedRun, source: SignalSource) -> tuple[SignalSource, list[str]]:
    """The recording's leads as the run's model takes them, and a note when they were matched by name.

    When a multi-lead model and the file both name their leads (and the run's preprocessing does
    not select leads itself), the leads are picked by name whatever their order or spelling
    (`ecgzoo.data.inputs.match_leads`; a missing lead is an InputError naming it). Otherwise the count
    must match (a one-lead model and a multi-lead file: choose the lead with --lead).
    """
    selects = any(step["name"] == "select-leads" for step in run.pipeline.config)
    notes: list[str] = []
    if not selects and run.in_leads > 1 and run.lead_names and source.lead_names and not source.lead_chosen:
        source, note = match_leads(source, run.lead_names, f"the model of {run.label}")
        notes += [note] if note else []
    if source.leads != run.in_leads and not selects:
        hint = " (choose one with --lead NAME or --lead INDEX)" if run.in_leads == 1 else ""
        names = f" {list(source.lead_names)}" if source.lead_names else ""
        raise InputError(f"{source.path}: {source.leads} lead(s){names}, the model of {run.label} takes {run.in_leads}{hint}")
    return source, notes


def read_window(run: LoadedRun, pipeline: Any, source: SignalSource, start: int, stop: int,
                record_id: str | None = None) -> tuple[Record, int]:
    """Samples [start, stop) of `source` as the model's input: the one way `ecgzoo predict`, `ecgzoo explain`
    and the viewer (`explain_recording`) read a window.

    Gaps no longer than the source's bridge limit are bridged, the amplitude is checked (an ECG in mV),
    the run's preprocessing `pipeline` (`pipeline_for`: select-leads, resampling, ...) runs with the file's
    lead names, and the leads it gives are matched to the run's by name unless a lead was chosen with
    --lead. Returns (record, bridged samples). A window that cannot be used raises `RecordError` or
    `MissingSamples` (its `problem` says why); leads that do not fit the model an `InputError`.
    """
    rid = record_id or f"{source.name}@{start / source.fs:.1f}s"
    raw, filled = source.read_bridged(start, stop)
    check_amplitude(raw, rid)
    rec = pipeline(Record(raw, source.fs, rid, lead_names=source.lead_names or None))
    try:
        if not source.lead_chosen:  # a lead picked with --lead stands for the model's lead
            check_leads(run.lead_names, rec.lead_names, f"{source.path} (after the run's preprocessing)")
    except LeadMismatchError as exc:
        raise InputError(str(exc)) from None
    return rec, filled


@torch.no_grad()
def predict_source(run: LoadedRun, source: SignalSource, batch_size: int = 16, device: str = "cpu",
                   precision: str = "fp32") -> Prediction:
    """Classify one recording (window by window when it is longer than the model's input)."""
    source, notes = fit_leads(run, source)
    pipeline, resampled = pipeline_for(run, source.fs)
    notes += resampled
    window = int(round(run.input_samples / run.fs * source.fs))
    if window < 1:
        raise InputError(f"{source.path}: at {source.fs:g} Hz the model's input ({run.input_samples / run.fs:g} s) "
                         f"is less than one sample")
    bounds = window_bounds(source.samples, window)
    if len(bounds) > 1:
        notes.append(f"longer than the model's input ({run.input_samples / run.fs:g} s): {len(bounds)} windows")
    windows: list[Window] = []
    bridged = 0
    model = run.model.to(device).eval()
    for batch in _batches(bounds, batch_size):
        xs, vls, slots = [], [], []
        for a, b in batch:
            windows.append(Window(a / source.fs, b / source.fs, None))
            try:
                rec, filled = read_window(run, pipeline, source, a, b)
                bridged += filled
            except (RecordError, MissingSamples) as exc:
                windows[-1].problem = exc.problem
                continue
            if rec.signal.shape != (run.in_leads, run.input_samples):
                raise InputError(
                    f"{source.path}: preprocessing gave shape {rec.signal.shape}, the model takes {(run.in_leads, run.input_samples)}"
                )
            if run.input_samples - rec.valid_length > 1:  # more than resampling's rounding
                windows[-1].padded_s = (run.input_samples - rec.valid_length) / run.fs
            xs.append(rec.signal)
            vls.append(rec.valid_length)
            slots.append(len(windows) - 1)
        if not xs:
            continue
        x = torch.from_numpy(np.stack(xs)).to(device)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x, valid_length=torch.tensor(vls, device=device))
        logits = logits.float()
        probs = run.task.probabilities(logits)
        finite = (torch.isfinite(logits).all(dim=1) & torch.isfinite(probs).all(dim=1)).cpu().numpy()
        for slot, p, ok in zip(slots, probs.cpu().numpy(), finite, strict=True):
            if ok:
                windows[slot].probabilities = p
            else:
                windows[slot].problem = NON_FINITE
    notes += _gap_notes(source, windows, bridged) + _padding_notes(run, windows)
    return Prediction(str(source.path), source.fs, source.samples / source.fs, list(run.classes), windows, notes,
                      run.task, run.thresholds)


def _padding_notes(run: LoadedRun, windows: list[Window]) -> list[str]:
    """The note saying a recording shorter than the model's input was padded (`padded_s` in the JSON)."""
    padded = [w for w in windows if w.padded_s]
    if not padded:
        return []
    w, model_s = padded[-1], run.input_samples / run.fs
    masked = bool(getattr(run.model, "masked_pooling", False))
    effect = ("the model's masked pooling leaves it out" if masked
              else "the model pools over it as if it were signal (no masked pooling)")
    return [f"padded: the recording ({w.end_s - w.start_s:g} s) is shorter than the model's input ({model_s:g} s); "
            f"the preprocessing added {w.padded_s:g} s of padding: {effect}"]


def analysed_seconds(windows: list[Window]) -> float:
    """Seconds covered by the classified windows (where a moved-back tail window overlaps, counted once)."""
    total, reach = 0.0, 0.0
    for a, b in sorted((w.start_s, w.end_s) for w in windows if w.probabilities is not None):
        total += max(0.0, b - max(a, reach))
        reach = max(reach, b)
    return total


def _gap_notes(source: SignalSource, windows: list[Window], bridged: int) -> list[str]:
    """Notes on bridged gaps, windows left out for missing samples, other failed windows, and coverage."""
    notes = []
    if bridged:
        notes.append(f"{bridged} missing sample(s) in gaps of at most {BRIDGE_SECONDS * 1000:g} ms ({source.bridge_limit} "
                     f"sample(s)) bridged by linear interpolation")
    failed = [w for w in windows if w.probabilities is None]
    if not failed or len(failed) == len(windows):  # none classified: `Prediction.problem` says why
        return notes
    gaps = [w for w in failed if (w.problem or "").startswith(NOT_ANALYSED)]
    if gaps:
        notes.append(f"{len(gaps)} of {len(windows)} window(s) not analysed for missing samples (gaps longer than "
                     f"{BRIDGE_SECONDS * 1000:g} ms); listed in the timeline")
    other = [w for w in failed if w not in gaps]
    if other:
        notes.append(f"{len(other)} of {len(windows)} window(s) could not be classified: {other[0].problem}")
    analysed, total = analysed_seconds(windows), source.samples / source.fs
    notes.append(f"the overall class covers {analysed:.1f} s of {total:.1f} s ({100 * analysed / total:.0f}% of the recording)")
    return notes


def format_time(seconds: float) -> str:
    s = int(math.floor(seconds + 1e-9))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _multi_label_lines(prediction: Prediction, p: np.ndarray) -> str:
    """Every label at or above its threshold, most probable first, with probability, threshold and name."""
    labels = prediction.label_list(p)
    if not labels:
        best, t = int(p.argmax()), prediction.threshold_values
        return (f"no label above its threshold (highest: {prediction.classes[best]} {p[best]:.3f}, "
                f"threshold {t[best]:.3f})")
    rows = [f"  {one['class']:<12} {one['probability']:.3f}  (threshold {one['threshold']:.3f})  {one['name']}" for one in labels]
    return f"{len(labels)} label(s) at or above threshold\n" + "\n".join(rows)


def describe(prediction: Prediction) -> str:
    """Human-readable lines: class and probabilities, then the timeline for windowed recordings."""
    p = prediction.probabilities
    head = f"{prediction.source}: "
    if p is None:
        head += f"not classified: {prediction.problem}"
    elif prediction.kind.lists_labels:
        head += _multi_label_lines(prediction, p)
    else:
        head += f"{prediction.label}  (" + ", ".join(f"{c} {v:.3f}" for c, v in zip(prediction.classes, p, strict=True)) + ")"
    lines = [head] + [f"  note: {n}" for n in prediction.notes]
    if len(prediction.windows) > 1:
        lines.append("  timeline (hh:mm:ss, consecutive windows of one class merged):")
        for start, end, cls, n in prediction.segments():
            lines.append(f"    {format_time(start)}-{format_time(end)}  {cls}  ({n} window{'s' if n > 1 else ''})")
    return "\n".join(lines)

