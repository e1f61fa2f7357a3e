"""Scoring a finished run on a dataset: the run's own preprocessing, its classes, atomic output.

The output folder is built under `<out>.incomplete` and renamed when complete. The dataset's
labels are matched to the run's classes by name; a record whose class the model does not
know is an error naming the class (a model cannot be scored on classes it never learnt).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import ecgzoo
from ecgzoo.run_dir import INCOMPLETE, load_run, write_atomic, write_json


class EvaluationError(ValueError):
    """The dataset cannot be scored with this run (other classes, other records, other shapes)."""


def _records_to_score(run: Any, data: ecgzoo.Dataset, dataset: str, split: str) -> list[str] | None:
    """The record ids of `split` (None: all), refusing records the dataset lacks and classes the model never learnt."""
    record_ids = None
    if split != "all":
        if split not in run.splits:
            raise EvaluationError(f"--split {split}: {run.label} records no {split!r} split (it has: {', '.join(run.splits) or 'none'})")
        chosen = run.splits[split]
        known = set(data.record_ids())
        missing = [r for r in chosen if r not in known]
        if missing:
            raise EvaluationError(f"--split {split}: {len(missing)} of the run's {split} records are not in dataset {dataset!r} "
                                  f"(e.g. {missing[0]!r}); --split needs the dataset the run was trained on")
        record_ids = chosen
    unknown = sorted({c for c in data.classes if c not in run.classes})
    if unknown:
        labels = set(data.label(r) for r in (record_ids or data.record_ids()))
        bad = sorted(labels & set(unknown))
        if bad:
            raise EvaluationError(f"dataset {dataset!r} has records of class(es) {bad} that the run's model does not know "
                                  f"(its classes: {run.classes})")
    return record_ids


def evaluate(run_dir: str | Path, dataset: str, dataset_options: dict[str, Any] | None = None, *, split: str = "all",
             out: str | Path | None = None, device: str = "auto", on_error: str = "raise",
             batch_size: int = 32, cache_dir: str | None = None, precision: str = "fp32") -> Path:
    """Metrics, predictions, confusion-matrix figure and report.md of `run_dir`'s model on `dataset`.

    On the run's own dataset, `dataset_options` override the options the run was trained with.
    """
    from ecgzoo.csv_files import predictions_csv, skipped_csv
    from ecgzoo.metrics import classification_metrics
    from ecgzoo.prepared import prepare
    from ecgzoo.report import metrics_markdown, write_evaluation_figures
    from ecgzoo.runner import predict_dataset, resolve_device

    device = resolve_device(device)
    run = load_run(run_dir, device=device)
    if ecgzoo.get_registry().resolve(dataset, "dataset").name == run.info.get("dataset"):
        # the run's own dataset: start from the options it was trained with (e.g. its data path)
        dataset_options = {**run.config.get("config", {}).get("dataset", {}), **(dataset_options or {})}
    data = ecgzoo.get_dataset(dataset, **(dataset_options or {}))
    record_ids = _records_to_score(run, data, dataset, split)
    out = Path(out) if out else run.output_dir / "evaluations" / f"{dataset}-{split}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists():
        raise FileExistsError(f"output folder {out} already exists")
    work = out.with_name(out.name + INCOMPLETE)
    work.mkdir(parents=True, exist_ok=True)
    print(f"ecgzoo: evaluating {run.label} on {dataset} ({split}); output {out}", file=sys.stderr, flush=True)

    prepared = prepare(data, run.pipeline, record_ids=record_ids, cache_dir=cache_dir, on_error=on_error)
    if prepared.signals.shape[1:] != (run.in_leads, run.input_samples):
        raise EvaluationError(f"dataset {dataset!r} preprocessed to {prepared.signals.shape[1:]}, the model takes "
                         f"{(run.in_leads, run.input_samples)} (leads, samples)")
    to_run = np.array([run.classes.index(c) for c in prepared.classes], dtype=np.int64)
    labels = to_run[np.asarray(prepared.labels)]
    probs = predict_dataset(run.model, prepared.torch_dataset(), device, batch_size, precision)
    metrics = classification_metrics(labels, probs.argmax(1), run.classes, data.scored_classes)
    metrics.update(split=f"{dataset} ({split})", run=run.label)
    write_json(work / "metrics.json", metrics)
    write_atomic(work / "predictions.csv", predictions_csv([str(r) for r in prepared.record_ids], labels, probs, run.classes))
    if prepared.skipped:
        write_atomic(work / "skipped.csv", skipped_csv(prepared.skipped))
    figures = write_evaluation_figures(work, metrics, None)
    figure_md = "\n\n".join(f"![{c}]({rel})" for c, rel in figures)
    write_atomic(work / "report.md", f"""# Evaluation of `{run.label}` on {dataset} ({split})

Model {run.info.get('model')} from `{run.label}`, scored on {metrics['n']} records of dataset `{dataset}`
(options `{json.dumps(dataset_options or {})}`), preprocessed by the run's own pipeline;
{len(prepared.skipped)} record(s) skipped.

{metrics_markdown(metrics)}

{figure_md}

Per-record predictions: `predictions.csv`.
""")
    os.replace(work, out)
    print(f"ecgzoo: challenge F1 {metrics['challenge_f1']:.3f}, accuracy {metrics['accuracy']:.3f}", file=sys.stderr)
    return out
