"""`ecgzoo explain RUN_DIR INPUT... --explainer NAME`: where a finished run's model looked.

For each input: the attribution picture (waveform in mV against seconds, map under it) and
the beat-template view; with `--compare a,b,c` also the explainers side by side, and over
all inputs the deletion-AUC table (printed) and the deletion curves (saved). Several inputs
add a class-average beat view grouped by predicted class.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "draw attribution maps of recordings with a finished run; --compare scores explainers by deletion AUC"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory (runs/NAME)")
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
    p.add_argument("--start", type=float, default=0.0, help="explain the model-input-long stretch starting here (s)")
    p.add_argument("--window-s", type=float, default=0.5, help="deletion window in seconds (--compare)")
    p.add_argument("--steps", type=int, default=20, help="deletion steps (--compare)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where the model runs (default cpu)")


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


def main(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import ecgzoo
    from ecgzoo.beats import pool, record_templates
    from ecgzoo.checkpoint import CheckpointError
    from ecgzoo.cli import UsageError
    from ecgzoo.explainer import with_sampling_rate
    from ecgzoo.faithfulness import deletion_table
    from ecgzoo.figures import plot_attribution, plot_beat_templates, plot_class_average, plot_deletion_curves, plot_side_by_side
    from ecgzoo.inputs import InputError, open_input
    from ecgzoo.predict import pipeline_for
    from ecgzoo.record import Record, RecordError
    from ecgzoo.run_dir import load_run, safe_filename, save_figure, write_json
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
    out = Path(args.out) if args.out else run.path / "explanations"
    out.mkdir(parents=True, exist_ok=True)
    model = run.model.to(device).eval()

    records, maps, per_class, written = [], {n: [] for n in compare}, {}, []
    for path in args.inputs:
        try:
            source = open_input(path, fs=args.fs, gain=args.gain)
        except InputError as exc:
            raise UsageError(str(exc)) from None
        if source.leads != run.in_leads:
            raise UsageError(f"{path}: {source.leads} lead(s), the model of {run.path} takes {run.in_leads}")
        pipeline, notes = pipeline_for(run, source.fs)
        a = int(round(args.start * source.fs))
        if not 0 <= a < source.samples:
            raise UsageError(f"{path}: --start {args.start} s lies outside the recording ({source.samples / source.fs:g} s)")
        b = min(source.samples, a + int(round(run.input_samples / run.fs * source.fs)))
        rec = pipeline(Record(source.read(a, b), source.fs, source.name))
        x = torch.from_numpy(np.ascontiguousarray(rec.signal))[None].to(device)
        vl = torch.tensor([rec.valid_length], device=device)
        with torch.no_grad():
            probs = torch.softmax(model(x, valid_length=vl), dim=1)[0].cpu().numpy()
        predicted = run.classes[int(probs.argmax())]
        tgt = None if target is None else torch.tensor([target], device=device)
        prob_text = {c: float(p) for c, p in zip(run.classes, probs, strict=True)}
        stem = safe_filename(source.name)
        for note in notes:
            print(f"{source.name}: {note}")
        attrs = {n: with_sampling_rate(explainers[n], rec.fs).explain(model, x, tgt, vl)[0].detach().cpu().numpy() for n in names}
        for n in compare:
            maps[n].append(attrs[n])
        attr = attrs[args.explainer]
        fig = plot_attribution(rec.signal, rec.fs, attr, valid_length=rec.valid_length, title=source.name,
                               predicted_label=predicted, probabilities=prob_text, explainer=args.explainer, units=rec.units)
        written.append(save_figure(out / f"{stem}_{safe_filename(args.explainer)}.png", fig))
        try:
            templates = record_templates(rec, attr)
        except (RecordError, ValueError) as exc:
            print(f"{source.name}: beat-template view left out ({exc})")
        else:
            if templates.count:
                fig = plot_beat_templates(templates, title=f"{source.name}: predicted {predicted}", units=rec.units,
                                          explainer=args.explainer)
                written.append(save_figure(out / f"{stem}_{safe_filename(args.explainer)}_beats.png", fig))
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
        written.append(save_figure(out / f"class_average_{safe_filename(args.explainer)}.png", fig))
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
