"""Scoring a finished run on a dataset: the run's own preprocessing, its classes, atomic output.

The output folder is built under `<out>.incomplete` and renamed when complete. The dataset's
labels are matched to the run's classes by name; a record whose class the model does not
know is an error naming the class (a model cannot be scored on classes it never learnt).

Finite or nothing: a record for which the model's probabilities are not finite is not scored;
it is counted in `metrics.json` (`failed`) and listed with the reason in `failed.csv`. When no
record can be scored the evaluation is an error and writes nothing. One process at a time
writes an output folder (a lock next to it, released if the holder dies); an `.incomplete`
folder left by an evaluation that died (SIGKILL) is removed before a new one is built there,
so nothing of it can end up in a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecgzoo._infra.files import write_atomic, write_json
from ecgzoo._infra.jsonio import dumps
from ecgzoo._infra.locks import hold_lock, release_lock
from ecgzoo.core.create import get_dataset
from ecgzoo.core.dataset import Dataset
from ecgzoo.core.registry import get_registry
from ecgzoo.evaluation.metrics import headline_text
from ecgzoo.serving.loaded_run import INCOMPLETE, load_run
from ecgzoo.serving.predict import NON_FINITE


def _as_set(label: str | tuple[str, ...]) -> set[str]:
    """The labels of a record: one for a single-label dataset, any number for a multi-label one."""
    return {label} if isinstance(label, str) else set(label)


class EvaluationError(ValueError):
    """The dataset cannot be scored with this run (other classes, other records, other shapes)."""


def _records_to_score(run: Any, data: Dataset, dataset: str, split: str) -> list[str] | None:
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
        labels = {one for r in (record_ids or data.record_ids()) for one in _as_set(data.label(r))}
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
    from ecgzoo._infra.device import resolve_device
    from ecgzoo.data.prepared import prepare

    device = resolve_device(device)
    run = load_run(run_dir, device=device)
    if get_registry().resolve(dataset, "dataset").name == run.info.get("dataset"):
        # the run's own dataset: start from the options it was trained with (e.g. its data path)
        dataset_options = {**run.config.get("config", {}).get("dataset", {}), **(dataset_options or {})}
    data = get_dataset(dataset, **(dataset_options or {}))
    record_ids = _records_to_score(run, data, dataset, split)
    out = Path(out) if out else run.output_dir / "evaluations" / f"{dataset}-{split}-{time.strftime('%Y%m%d-%H%M%S')}"
    lock_path = out.with_name(f".{out.name}.lock")
    lock = hold_lock(lock_path, f"evaluation folder {out}")
    work = out.with_name(out.name + INCOMPLETE)
    try:
        if out.exists():
            raise FileExistsError(f"output folder {out} already exists")
        if work.exists():  # left by an evaluation that died: we hold the lock, so nobody is writing it
            shutil.rmtree(work)
        work.mkdir(parents=True)
        print(f"ecgzoo: evaluating {run.label} on {dataset} ({split}); output {out}", file=sys.stderr, flush=True)
        prepared = prepare(data, run.pipeline, record_ids=record_ids, cache_dir=cache_dir, on_error=on_error)
        metrics = _score_into(work, run, prepared, dataset, split, dataset_options, device, batch_size, precision,
                              data.scored_classes)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        release_lock(lock)
        raise
    release_lock(lock, lock_path)
    if run.task.multi:
        from ecgzoo.report.report_multilabel import headline

        print(f"ecgzoo: {headline(metrics).replace('**', '')}", file=sys.stderr)
    else:
        print(f"ecgzoo: {headline_text(metrics)}", file=sys.stderr)
    return out


def _score_into(work: Path, run: Any, prepared: Any, dataset: str, split: str, dataset_options: dict[str, Any] | None,
                device: str, batch_size: int, precision: str, scored_classes: Any = None) -> dict[str, Any]:
    """Predict the prepared records, score those with finite outputs and write every output file into `work`.

    `scored_classes`: the classes the headline F1 averages (the dataset's `scored_classes`; None: all)."""
    from ecgzoo._infra.csv_files import predictions_csv, skipped_csv
    from ecgzoo.evaluation.metrics import metrics_with_interval
    from ecgzoo.evaluation.multilabel_metrics import multilabel_metrics_with_interval
    from ecgzoo.evaluation.scoring import predict_dataset
    from ecgzoo.report.report import metrics_markdown, write_evaluation_figures
    from ecgzoo.report.report_multilabel import predictions_csv as multilabel_predictions_csv

    if prepared.signals.shape[1:] != (run.in_leads, run.input_samples):
        raise EvaluationError(f"dataset {dataset!r} preprocessed to {prepared.signals.shape[1:]}, the model takes "
                              f"{(run.in_leads, run.input_samples)} (leads, samples)")
    to_run = np.array([run.classes.index(c) for c in prepared.classes], dtype=np.int64)
    probs = predict_dataset(run.model, prepared.torch_dataset(), device, batch_size, precision, task=run.task)
    finite = np.isfinite(probs).all(axis=1)
    ids = [str(r) for r in prepared.record_ids]
    failed = [(rid, NON_FINITE) for rid, ok in zip(ids, finite, strict=True) if not ok]
    if not finite.any():
        raise EvaluationError(f"no record of {dataset!r} could be scored: {NON_FINITE} "
                              f"(all {len(ids)} records; {run.label})")
    ids, probs = [r for r, ok in zip(ids, finite, strict=True) if ok], probs[finite]
    if run.task.multi:  # decisions at the thresholds stored with the run's checkpoint
        labels = np.zeros((len(prepared), len(run.classes)), dtype=np.uint8)
        labels[:, to_run] = np.asarray(prepared.labels)
        labels = labels[finite]
        thresholds = run.thresholds if run.thresholds is not None else [0.5] * len(run.classes)
        metrics = multilabel_metrics_with_interval(labels, probs, run.classes, thresholds, dict(run.task.names))
        predictions = multilabel_predictions_csv(ids, labels, probs, run.task, thresholds)
    else:
        labels = to_run[np.asarray(prepared.labels)][finite]
        metrics = metrics_with_interval(labels, probs.argmax(1), run.classes, scored_classes)
        predictions = predictions_csv(ids, labels, probs, run.classes)
    metrics.update(split=f"{dataset} ({split})", run=run.label, failed=len(failed))
    write_json(work / "metrics.json", metrics)
    write_atomic(work / "predictions.csv", predictions)
    if prepared.skipped:
        write_atomic(work / "skipped.csv", skipped_csv(prepared.skipped))
    if failed:
        write_atomic(work / "failed.csv", skipped_csv(failed))
    figures = write_evaluation_figures(work, metrics, None)
    figure_md = "\n\n".join(f"![{c}]({rel})" for c, rel in figures)
    failed_md = f"\n**{len(failed)} record(s) failed and were not scored** ({NON_FINITE}): `failed.csv`.\n" if failed else ""
    write_atomic(work / "report.md", f"""# Evaluation of `{run.label}` on {dataset} ({split})

Model {run.info.get('model')} from `{run.label}`, scored on {metrics['n']} records of dataset `{dataset}`
(options `{dumps(dataset_options or {})}`), preprocessed by the run's own pipeline;
{len(prepared.skipped)} record(s) skipped.
{failed_md}
{metrics_markdown(metrics)}

{figure_md}

Per-record predictions: `predictions.csv`.
""")
    return metrics
