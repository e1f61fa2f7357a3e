"""`ecgzoo explain RUN_DIR INPUT... --explainer NAME`: where a finished run's model looked.

For each input: the attribution picture (waveform in mV against seconds, map under it), for
multi-lead runs the per-lead maps on calibrated ECG paper (the clinical 3 x 4 layout with a
lead II rhythm strip for 12 leads, one row per lead otherwise), and the beat-template view; with `--compare a,b,c` also the explainers side by side, and over
all inputs the deletion-AUC table (printed) and the deletion curves (saved). Several inputs
add a class-average beat view grouped by predicted class.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--lead", help="for a one-lead model and multi-lead recordings: the lead to explain (name in the file, or 0-based index)")
    p.add_argument("--start", type=float, default=0.0, help="explain the model-input-long stretch starting here (s)")
    p.add_argument("--window-s", type=float, default=0.5, help="deletion window in seconds (--compare)")
    p.add_argument("--steps", type=int, default=20, help="deletion steps (--compare)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--html", action="store_true",
                   help="write one self-contained interactive viewer per recording (NAME.html: the whole recording, "
                        "window by window, every explainer of --explainer/--compare) instead of the pictures")


def _options(assignments: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """{explainer: options}: plain keys go to the first name, NAME.KEY to that explainer."""
    from ecgzoo.cli import UsageError
    from ecgzoo.config import parse_assignments

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


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _write_views(args: argparse.Namespace, run: Any, explainers: dict, target: int | None, out: Path, device: str) -> int:
    """--html: one viewer per input, the whole recording explained window by window."""
    from ecgzoo.cli import UsageError
    from ecgzoo.explain_recording import explain_recording
    from ecgzoo.inputs import InputError, open_input
    from ecgzoo.viewer import write_viewer

    for path in args.inputs:
        try:
            source = open_input(path, fs=args.fs, gain=args.gain)
            done = explain_recording(run, source, explainers, target=target, device=device)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        for note in done.notes:
            print(f"{source.name}: {note}")
        written = write_viewer(out / f"{_safe(source.name)}.html", **view_arguments(run, done, path, explainers))
        print(f"{source.name}: explained class {run.classes[done.target]}; wrote {written}")
    return 0


def view_arguments(run: Any, done: Any, path: str, explainers: dict) -> dict[str, Any]:
    """Keyword arguments of `write_viewer` for an `ExplainedRecording` of a run."""
    steps = " -> ".join(s["name"] + "".join(f" {k}={v}" for k, v in s.items() if k != "name") for s in run.pipeline.config)
    model = run.info.get("model", "?")
    facts = {
        "input": path, "rate": f"{done.fs:g} Hz", "leads": done.signal.shape[0], "units": done.units,
        "duration": f"{done.signal.shape[-1] / done.fs:.1f} s",
        "model": f"{model} ({sum(p.numel() for p in run.model.parameters()):,} parameters), {run.label or run.path}",
        "model input": f"windows of {run.input_samples / run.fs:g} s, each preprocessed and classified on its own",
        "preprocessing": steps, "classes": ", ".join(run.classes),
        "explained class": run.classes[done.target],
        "explainers": ", ".join(f"{n} {getattr(e, 'config', '')}" for n, e in explainers.items()),
    }
    return {"title": f"{done.name}: {run.classes[done.target]} explained", "signal": done.signal, "fs": done.fs,
            "units": done.units, "maps": done.maps, "classes": run.classes, "windows": done.windows, "facts": facts}


def main(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import ecgzoo
    from ecgzoo.beats import lead_templates, pool, record_templates
    from ecgzoo.checkpoint import CheckpointError
    from ecgzoo.cli import UsageError
    from ecgzoo.explainer import with_sampling_rate
    from ecgzoo.faithfulness import deletion_table
    from ecgzoo.figures import plot_attribution, plot_beat_templates, plot_class_average, plot_deletion_curves, plot_side_by_side
    from ecgzoo.figures_leads import plot_lead_beats, plot_leads
    from ecgzoo.inputs import InputError, flat_leads, open_input, select_lead
    from ecgzoo.leads import LeadMismatchError, check_leads
    from ecgzoo.predict import NON_FINITE, pipeline_for
    from ecgzoo.record import Record, RecordError
    from ecgzoo.run_dir import load_run, save_figure, write_json
    from ecgzoo.runner import resolve_device

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
    explainers = {n: ecgzoo.create_explainer(n, **options[n]) for n in names}
    out = Path(args.out) if args.out else run.output_dir / "explanations"
    out.mkdir(parents=True, exist_ok=True)
    model = run.model.to(device).eval()
    if args.html:
        return _write_views(args, run, explainers, target, out, device)

    records, maps, per_class, written = [], {n: [] for n in compare}, {}, []
    for path in args.inputs:
        try:
            source = open_input(path, fs=args.fs, gain=args.gain)
            if args.lead is not None:
                source = select_lead(source, args.lead)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        selects = any(step["name"] == "select-leads" for step in run.pipeline.config)
        if source.leads != run.in_leads and not selects:
            hint = " (choose one with --lead NAME or --lead INDEX)" if run.in_leads == 1 else ""
            raise UsageError(f"{path}: {source.leads} lead(s), the model of {run.label} takes {run.in_leads}{hint}")
        pipeline, notes = pipeline_for(run, source.fs)
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
        rec = pipeline(Record(raw, source.fs, source.name, lead_names=source.lead_names or None))
        try:
            if not source.lead_chosen:  # a lead picked with --lead stands for the model's lead
                check_leads(run.lead_names, rec.lead_names, f"{path} (after the run's preprocessing)")
        except LeadMismatchError as exc:
            raise UsageError(str(exc)) from None
        x = torch.from_numpy(np.ascontiguousarray(rec.signal))[None].to(device)
        vl = torch.tensor([rec.valid_length], device=device)
        with torch.no_grad():
            probs = run.task.probabilities(model(x, valid_length=vl))[0].cpu().numpy()
        if not np.isfinite(probs).all():  # finite or nothing: no class, no map
            raise UsageError(f"{path}: {NON_FINITE}")
        predicted = run.classes[int(probs.argmax())]  # multi-label: the most probable label is explained
        tgt = None if target is None else torch.tensor([target], device=device)
        prob_text = {c: float(p) for c, p in zip(run.classes, probs, strict=True)}
        stem = _safe(source.name)
        for note in notes:
            print(f"{source.name}: {note}")
        attrs = {n: with_sampling_rate(explainers[n], rec.fs).explain(model, x, tgt, vl)[0].detach().cpu().numpy() for n in names}
        for n in compare:
            maps[n].append(attrs[n])
        attr = attrs[args.explainer]
        fig = plot_attribution(rec.signal, rec.fs, attr, valid_length=rec.valid_length, title=source.name,
                               predicted_label=predicted, probabilities=prob_text, explainer=args.explainer, units=rec.units)
        written.append(save_figure(out / f"{stem}_{_safe(args.explainer)}.png", fig))
        if rec.leads > 1:
            per_lead = explainers[args.explainer].explain_leads(model, x, tgt, vl)[0].detach().cpu().numpy()
            fig = plot_leads(rec.signal, rec.fs, per_lead, rec.lead_names or run.lead_names, valid_length=rec.valid_length,
                             title=source.name, predicted_label=predicted, explainer=args.explainer,
                             per_lead=explainers[args.explainer].per_lead)
            written.append(save_figure(out / f"{stem}_{_safe(args.explainer)}_leads.png", fig))
            try:
                fig = plot_lead_beats(lead_templates(rec, per_lead), rec.lead_names or run.lead_names, title=source.name,
                                      units=rec.units, explainer=args.explainer)
                written.append(save_figure(out / f"{stem}_{_safe(args.explainer)}_lead_beats.png", fig))
            except (RecordError, ValueError) as exc:
                print(f"{source.name}: per-lead beat view left out ({exc})")
        try:
            templates = record_templates(rec, attr)
        except (RecordError, ValueError) as exc:
            print(f"{source.name}: beat-template view left out ({exc})")
        else:
            if templates.count:
                fig = plot_beat_templates(templates, title=f"{source.name}: predicted {predicted}", units=rec.units,
                                          explainer=args.explainer)
                written.append(save_figure(out / f"{stem}_{_safe(args.explainer)}_beats.png", fig))
                per_class.setdefault(predicted, []).append(templates)
            else:
                print(f"{source.name}: no complete beat found; beat-template view left out")
        records.append((rec, probs))
        if compare:
            fig = plot_side_by_side(rec.signal, rec.fs, {n: maps[n][-1] for n in compare}, valid_length=rec.valid_length,
                                    title=source.name, predicted_label=predicted, probabilities=prob_text, units=rec.units)
            written.append(save_figure(out / f"{stem}_compare.png", fig))
        print(f"{source.name}: predicted {predicted} ({', '.join(f'{c} {p:.2f}' for c, p in prob_text.items())})")

    if len(records) > 1 and per_class:
        fig = plot_class_average({c: pool(t) for c, t in sorted(per_class.items())}, explainer=args.explainer, units=records[0][0].units,
                                 title=f"Class-average beat and {args.explainer} map (grouped by predicted class)")
        written.append(save_figure(out / f"class_average_{_safe(args.explainer)}.png", fig))
    if compare:
        table = deletion_table(
            model, [torch.from_numpy(np.ascontiguousarray(r.signal)) for r, _ in records], maps, run.fs,
            targets=None if target is None else [target] * len(records),
            valid_lengths=[r.valid_length for r, _ in records], window_s=args.window_s, steps=args.steps,
        )
        print(table.to_text())
        fig = plot_deletion_curves(table.curves, {r["explainer"]: r["auc_mean"] for r in table.rows})
        written.append(save_figure(out / "deletion_curves.png", fig))
        written.append(write_json(out / "deletion.json", table.to_dict()))
    for path in written:
        print(f"wrote {path}")
    return 0
