"""`ecgzoo explain RUN_DIR INPUT... --explainer NAME`: where a finished run's model looked.

For each input: the attribution picture (waveform in mV against seconds, map under it), for
multi-lead runs the per-lead maps on calibrated ECG paper (the clinical 3 x 4 layout with a
lead II rhythm strip for 12 leads, one row per lead otherwise), and the beat-template view; with
`--compare a,b,c` also the explainers side by side, and over
all inputs the deletion-AUC table (printed) and the deletion curves (saved). Several inputs
add a class-average beat view grouped by predicted class. Explainers whose map is constant per
beat (`beat-removal`: they have `segment_bounds`) get each beat's cut and value marked on the pictures.
`--save-maps DIR` writes every class's map of each whole recording at its own rate instead
(`ecgzoo.serving.saved_maps`); `--html` the interactive viewer (`ecgzoo.report.viewer`), with the record's
annotated rhythm where it has a `.atr` file.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

HELP = "draw attribution maps of recordings with a finished run; --compare scores explainers by deletion AUC"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory (runs/NAME) or pretrained weights MODEL:TAG (ecgzoo list --pretrained)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="WFDB record (.hea or path without suffix), .mat, .npy or .csv file")
    p.add_argument("--explainer", default="cam", help="explainer plugin (ecgzoo list explainer); default cam")
    p.add_argument("--compare", default="", metavar="A,B,C",
                   help="comma-separated explainers to draw side by side and score by deletion AUC")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="explainer option: KEY=VALUE for --explainer, NAME.KEY=VALUE for one of --compare (repeatable)")
    p.add_argument("--target", help="class to explain (a class name of the run); default: the predicted class")
    p.add_argument("--out", help="output folder (default RUN_DIR/explanations)")
    p.add_argument("--fs", type=float, help="sampling rate in Hz of inputs whose format does not store it (.npy, plain .mat/CSV)")
    p.add_argument("--gain", type=float, help="plain .mat only: values are in adu with this many adu per mV")
    p.add_argument("--lead",
                   help="for a one-lead model and multi-lead recordings: the lead to explain (name in the file, or 0-based index)")
    p.add_argument("--start", type=float, default=0.0, help="explain the model-input-long stretch starting here (s)")
    p.add_argument("--window-s", type=float, default=0.5, help="deletion window in seconds (--compare)")
    p.add_argument("--steps", type=int, default=20, help="deletion steps (--compare)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--save-maps", metavar="DIR",
                   help="write, per input and explainer, every class's map of the whole recording at its own rate "
                        "(NAME_EXPLAINER.npy, float32 (classes, samples)) and a JSON beside it, instead of the pictures")
    p.add_argument("--html", action="store_true",
                   help="write one self-contained interactive viewer per recording (NAME.html: the whole recording, "
                        "window by window, every explainer of --explainer/--compare) instead of the pictures")


def _options(assignments: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """{explainer: options}: plain keys go to the first name, NAME.KEY to that explainer."""
    from ecgzoo.cli import UsageError
    from ecgzoo.core.config import parse_assignments

    parsed = parse_assignments(assignments)
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in parsed.items():
        if isinstance(value, dict):
            if key not in out:
                raise UsageError(f"--set {key}.…: {key!r} is not among the explainers {names}")
            out[key].update(value)
        else:
            out[names[0]][key] = value
    return out


@dataclasses.dataclass
class _Job:
    """What every input shares: the run, its model on the device, the explainers, where pictures go."""

    args: argparse.Namespace
    run: Any
    model: Any
    device: str
    names: list[str]  # --explainer first, then the other --compare names
    compare: list[str]
    explainers: dict[str, Any]
    target: int | None
    out: Path
    written: list[Path] = dataclasses.field(default_factory=list)


def _job(args: argparse.Namespace) -> _Job:
    """Load the run and create the explainers; refuse an explainer that does not support the model
    (before any input is read)."""
    from ecgzoo._infra.device import resolve_device
    from ecgzoo.cli import UsageError
    from ecgzoo.core.create import create_explainer
    from ecgzoo.core.explainer import check_supports
    from ecgzoo.models.checkpoint import CheckpointError
    from ecgzoo.serving.loaded_run import load_run

    compare = [n.strip() for n in args.compare.split(",") if n.strip()]
    names = [args.explainer, *[n for n in compare if n != args.explainer]]
    options = _options(args.assignments, names)
    try:
        device = resolve_device(args.device)
        run = load_run(args.run_dir, device=device)
    except (CheckpointError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    target = None
    if args.target is not None:
        if args.target not in run.classes:
            raise UsageError(f"--target {args.target!r} is not a class of this run; classes: {run.classes}")
        target = run.classes.index(args.target)
    model = run.model.to(device).eval()
    explainers = {n: create_explainer(n, **options[n]) for n in names}
    for n, explainer in explainers.items():
        check_supports(explainer, model, n)
    out = Path(args.out) if args.out else run.output_dir / "explanations"
    out.mkdir(parents=True, exist_ok=True)
    return _Job(args, run, model, device, names, compare, explainers, target, out)


def _read_input(job: _Job, path: str) -> tuple[Any, Any, Any]:
    """(source, record, trace): the model-input-long stretch from --start, through the run's own preprocessing,
    and the same stretch as recorded (mV, the model's rate and leads) for the pictures to draw."""
    from ecgzoo.cli import UsageError
    from ecgzoo.core.record import RecordError
    from ecgzoo.data.inputs import open_input, select_lead
    from ecgzoo.data.signal_source import InputError, MissingSamples, flat_leads
    from ecgzoo.serving.explain_recording import trace_stretch
    from ecgzoo.serving.predict import fit_leads, pipeline_for, read_window

    args, run = job.args, job.run
    try:
        source = open_input(path, fs=args.fs, gain=args.gain)
        if args.lead is not None:
            source = select_lead(source, args.lead)
        source, notes = fit_leads(run, source)  # by name when both name their leads, else by count
    except InputError as exc:
        raise UsageError(str(exc)) from None
    pipeline, resampled = pipeline_for(run, source.fs)
    notes += resampled
    a = int(round(args.start * source.fs))
    if not 0 <= a < source.samples:
        raise UsageError(f"{path}: --start {args.start} s lies outside the recording ({source.samples / source.fs:g} s)")
    b = min(source.samples, a + int(round(run.input_samples / run.fs * source.fs)))
    try:
        raw = source.read(a, b)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if flat_leads(raw):
        raise UsageError(f"{path}: flat signal (every lead constant): no ECG to explain")
    for note in notes:
        print(f"{source.name}: {note}")
    try:
        rec = read_window(run, pipeline, source, a, b, record_id=source.name)[0]  # as predict reads it
    except (InputError, RecordError, MissingSamples) as exc:
        raise UsageError(str(exc)) from None
    try:
        trace = trace_stretch(run, source, a, b, float(rec.fs))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return source, rec, trace


def _drawn(rec: Any, trace: Any) -> tuple[Any, int]:
    """The recorded trace (leads, T) laid over the model input's length, and how many samples are recorded:
    the pictures draw the recording in mV and the maps of the model's input, sample for sample."""
    import numpy as np

    n = min(trace.samples, rec.valid_length)
    out = np.zeros((trace.leads, rec.samples), dtype=np.float32)
    out[:, :n] = trace.signal[:, :n]
    return out, n


def _explain_input(job: _Job, source: Any, rec: Any, trace: Any) -> tuple[dict[str, Any], Any, str, dict[str, float]]:
    """Every explainer's map of one record (fs passed explicitly), its attribution picture (the recorded
    trace in mV, maps in % per second); returns (maps, beat templates or None, predicted class, probabilities)."""
    import numpy as np
    import torch

    from ecgzoo._infra.files import safe_filename, save_figure
    from ecgzoo.cli import UsageError
    from ecgzoo.report.figures import plot_attribution
    from ecgzoo.report.map_units import sums_to
    from ecgzoo.serving.predict import NON_FINITE

    x = torch.from_numpy(np.ascontiguousarray(rec.signal))[None].to(job.device)
    vl = torch.tensor([rec.valid_length], device=job.device)
    with torch.no_grad():
        probs = job.run.task.probabilities(job.model(x, valid_length=vl))[0].cpu().numpy()
    if not np.isfinite(probs).all():  # finite or nothing: no class, no map
        raise UsageError(f"{source.name}: {NON_FINITE}")
    predicted = job.run.classes[int(probs.argmax())]  # multi-label: the most probable label is explained
    prob_text = {c: float(p) for c, p in zip(job.run.classes, probs, strict=True)}
    tgt = None if job.target is None else torch.tensor([job.target], device=job.device)
    attrs = {n: job.explainers[n].explain(job.model, x, tgt, vl, fs=float(rec.fs))[0].detach().cpu().numpy() for n in job.names}
    name = job.args.explainer
    signal, valid = _drawn(rec, trace)
    fig = plot_attribution(signal, rec.fs, attrs[name], valid_length=valid, title=source.name, predicted_label=predicted,
                           probabilities=prob_text, explainer=name, units=trace.units, sums_to=sums_to(job.explainers[name], job.model),
                           **segment_marks(job.explainers[name], rec))
    job.written.append(save_figure(job.out / f"{safe_filename(source.name)}_{safe_filename(name)}.png", fig))
    if rec.leads > 1:
        _lead_views(job, source, rec, trace, x, tgt, vl, predicted)
    return attrs, _beat_view(job, source, rec, attrs[name], predicted), predicted, prob_text


def segment_marks(explainer: Any, rec: Any) -> dict[str, Any]:
    """Figure options marking each beat of a map constant per beat: the explainer's `segment_bounds` of the
    record and its `units`; none for other explainers."""
    if not hasattr(explainer, "segment_bounds"):
        return {}
    return {"segments": explainer.segment_bounds(rec.signal, rec.fs, rec.valid_length),
            "segment_units": getattr(explainer, "units", "attribution")}


def _lead_views(job: _Job, source: Any, rec: Any, trace: Any, x: Any, tgt: Any, vl: Any, predicted: str) -> None:
    """Multi-lead records: the per-lead maps on ECG paper and the per-lead beat view."""
    from ecgzoo._infra.files import safe_filename, save_figure
    from ecgzoo.core.record import RecordError
    from ecgzoo.explain.beats import lead_templates
    from ecgzoo.report.figures_leads import plot_lead_beats, plot_leads
    from ecgzoo.report.map_units import sums_to

    name, explainer = job.args.explainer, job.explainers[job.args.explainer]
    stem = f"{safe_filename(source.name)}_{safe_filename(name)}"
    lead_names = rec.lead_names or job.run.lead_names
    per_lead = explainer.explain_leads(job.model, x, tgt, vl, fs=float(rec.fs))[0].detach().cpu().numpy()
    signal, valid = _drawn(rec, trace)
    fig = plot_leads(signal, rec.fs, per_lead, lead_names, valid_length=valid, title=source.name, predicted_label=predicted,
                     explainer=name, per_lead=explainer.per_lead, units=trace.units, sums_to=sums_to(explainer, job.model),
                     **segment_marks(explainer, rec))
    job.written.append(save_figure(job.out / f"{stem}_leads.png", fig))
    try:
        fig = plot_lead_beats(lead_templates(rec, per_lead), lead_names, title=source.name, units=rec.units, explainer=name)
        job.written.append(save_figure(job.out / f"{stem}_lead_beats.png", fig))
    except (RecordError, ValueError) as exc:
        print(f"{source.name}: per-lead beat view left out ({exc})")


def _beat_view(job: _Job, source: Any, rec: Any, attr: Any, predicted: str) -> Any:
    """The beat-template picture of one record; its templates (None when no complete beat is found)."""
    from ecgzoo._infra.files import safe_filename, save_figure
    from ecgzoo.core.record import RecordError
    from ecgzoo.explain.beats import record_templates
    from ecgzoo.report.figures import plot_beat_templates

    try:
        templates = record_templates(rec, attr)
    except (RecordError, ValueError) as exc:
        print(f"{source.name}: beat-template view left out ({exc})")
        return None
    if not templates.count:
        print(f"{source.name}: no complete beat found; beat-template view left out")
        return None
    name = job.args.explainer
    fig = plot_beat_templates(templates, title=f"{source.name}: predicted {predicted}", units=rec.units, explainer=name)
    job.written.append(save_figure(job.out / f"{safe_filename(source.name)}_{safe_filename(name)}_beats.png", fig))
    return templates


def _summaries(job: _Job, records: list[Any], maps: dict[str, list[Any]], per_class: dict[str, list[Any]]) -> None:
    """Class-average beats over several inputs; with --compare, the deletion table and curves."""
    import numpy as np
    import torch

    from ecgzoo._infra.files import safe_filename, save_figure, write_json
    from ecgzoo.explain.beats import pool
    from ecgzoo.explain.faithfulness import deletion_table
    from ecgzoo.report.figures import plot_class_average, plot_deletion_curves

    name = job.args.explainer
    if len(records) > 1 and per_class:
        fig = plot_class_average({c: pool(t) for c, t in sorted(per_class.items())}, explainer=name, units=records[0].units,
                                 title=f"Class-average beat and {name} map (grouped by predicted class)")
        job.written.append(save_figure(job.out / f"class_average_{safe_filename(name)}.png", fig))
    if job.compare:
        table = deletion_table(
            job.model, [torch.from_numpy(np.ascontiguousarray(r.signal)) for r in records], maps, job.run.fs,
            targets=None if job.target is None else [job.target] * len(records),
            valid_lengths=[r.valid_length for r in records], window_s=job.args.window_s, steps=job.args.steps,
        )
        print(table.to_text())
        fig = plot_deletion_curves(table.curves, {r["explainer"]: r["auc_mean"] for r in table.rows})
        job.written.append(save_figure(job.out / "deletion_curves.png", fig))
        job.written.append(write_json(job.out / "deletion.json", table.to_dict()))


def _write_views(args: argparse.Namespace, run: Any, explainers: dict, target: int | None, out: Path, device: str) -> int:
    """--html: one viewer per input, the whole recording explained window by window."""
    from ecgzoo._infra.files import safe_filename
    from ecgzoo.cli import UsageError
    from ecgzoo.data.annotations import rhythm_episodes
    from ecgzoo.data.inputs import open_input, select_lead
    from ecgzoo.data.signal_source import InputError
    from ecgzoo.report.viewer import write_viewer
    from ecgzoo.serving.explain_recording import explain_recording

    for path in args.inputs:
        try:
            source = open_input(path, fs=args.fs, gain=args.gain)
            if args.lead is not None:
                source = select_lead(source, args.lead)
            done = explain_recording(run, source, explainers, target=target, device=device)
            episodes = rhythm_episodes(path, source.samples) or []
        except InputError as exc:
            raise UsageError(str(exc)) from None
        for note in done.notes:
            print(f"{source.name}: {note}")
        annotations = [(e.start / source.fs, e.stop / source.fs, e.rhythm) for e in episodes]
        written = write_viewer(out / f"{safe_filename(source.name)}.html", **view_arguments(run, done, path, explainers),
                               annotations=annotations)
        print(f"{source.name}: explained class {run.classes[done.target]}; wrote {written}")
    return 0


def _save_maps(args: argparse.Namespace, run: Any, explainers: dict, device: str) -> int:
    """--save-maps: every class's map of each whole recording, at the recording's own rate, in bounded memory."""
    from ecgzoo.cli import UsageError
    from ecgzoo.data.inputs import open_input, select_lead
    from ecgzoo.data.signal_source import InputError
    from ecgzoo.serving.saved_maps import save_recording_maps

    for path in args.inputs:
        try:
            source = open_input(path, fs=args.fs, gain=args.gain)
            if args.lead is not None:
                source = select_lead(source, args.lead)
            written = save_recording_maps(run, source, explainers, args.save_maps, device=device)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        for file in written:
            print(f"{source.name}: wrote {file}")
    return 0


def view_arguments(run: Any, done: Any, path: str, explainers: dict) -> dict[str, Any]:
    """Keyword arguments of `write_viewer` for an `ExplainedRecording` of a run."""
    from ecgzoo.serving.explain_recording import gap_track

    steps = " -> ".join(s["name"] + "".join(f" {k}={v}" for k, v in s.items() if k != "name") for s in run.pipeline.config)
    model = run.info.get("model", "?")
    resampled = done.source_fs not in (None, done.fs)
    rate = f"{done.fs:g} Hz" + (f" (the model's; recorded at {done.source_fs:g} Hz)" if resampled else "")
    facts = {
        "input": path, "rate": rate, "leads": ", ".join(done.lead_names) if done.lead_names else done.signal.shape[0],
        "units": done.units, "duration": f"{done.signal.shape[-1] / done.fs:.1f} s (only the recorded part is drawn)",
        "trace": f"the recording as given, in {done.units}" + (f", resampled to {done.fs:g} Hz" if resampled else "")
                 + "; the model's input is this after the preprocessing below (normalised, so in other units) and is not drawn",
        "model": f"{model} ({sum(p.numel() for p in run.model.parameters()):,} parameters), {run.label or run.path}",
        "model input": f"windows of {run.input_samples / run.fs:g} s, each preprocessed and classified on its own",
        "preprocessing": steps, "classes": ", ".join(run.classes),
        "explained class": run.classes[done.target]
                           + (" (the most probable label; --target chooses another)" if run.task.lists_labels else ""),
        **({"notes": "; ".join(done.notes)} if done.notes else {}),
        "explainers": ", ".join(f"{n} {getattr(e, 'config', '')}" for n, e in explainers.items()),
    }
    return {"title": f"{done.name}: {run.classes[done.target]} explained", "signal": done.signal, "fs": done.fs,
            "units": done.units, "maps": done.maps, "classes": run.classes, "windows": done.windows, "facts": facts,
            "lead_names": done.lead_names, "multi_label": run.task.lists_labels, "thresholds": run.thresholds,
            "problems": done.problems, "gaps": gap_track(done.windows, done.problems)}


def main(args: argparse.Namespace) -> int:
    from ecgzoo._infra.files import safe_filename, save_figure
    from ecgzoo.report.figures import plot_side_by_side
    from ecgzoo.report.map_units import sums_to

    job = _job(args)
    if args.save_maps:
        _save_maps(args, job.run, job.explainers, job.device)
        if not args.html:
            return 0
    if args.html:
        return _write_views(args, job.run, job.explainers, job.target, job.out, job.device)
    records, maps, per_class = [], {n: [] for n in job.compare}, {}
    for path in args.inputs:
        source, rec, trace = _read_input(job, path)
        attrs, templates, predicted, probs = _explain_input(job, source, rec, trace)
        if templates is not None:
            per_class.setdefault(predicted, []).append(templates)
        for n in job.compare:
            maps[n].append(attrs[n])
        records.append(rec)
        if job.compare:
            signal, valid = _drawn(rec, trace)
            fig = plot_side_by_side(signal, rec.fs, {n: attrs[n] for n in job.compare}, valid_length=valid, title=source.name,
                                    predicted_label=predicted, probabilities=probs, units=trace.units,
                                    sums_to={n: sums_to(job.explainers[n], job.model) for n in job.compare})
            job.written.append(save_figure(job.out / f"{safe_filename(source.name)}_compare.png", fig))
        print(f"{source.name}: predicted {predicted} ({', '.join(f'{c} {p:.2f}' for c, p in probs.items())})")
    _summaries(job, records, maps, per_class)
    for written in job.written:
        print(f"wrote {written}")
    return 0
