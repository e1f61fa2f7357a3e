"""Turn a finished run into shippable pretrained weights: weights file, manifest, split and model card.

`publish_run` copies the run's best checkpoint under `MODEL.TAG.safetensors`, writes the record
lists it was trained, selected and tested on (`MODEL.TAG.split.json`), a manifest
(`MODEL.TAG.manifest.json`, read back by `ecgzoo.core.manifest.read_manifest`) with the file's SHA-256 and size,
the input contract, licenses, the training command and the run's validation and test figures, and
a model card (`MODEL.TAG.md`) generated from the manifest. Every file is written atomically. A
plugin then declares the folder's manifests through the `ecgzoo_pretrained` hook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecgzoo._infra.download import sha256_of
from ecgzoo._infra.files import write_bytes_atomic
from ecgzoo.core.manifest import InputContract, PretrainedManifest, read_manifest
from ecgzoo.evaluation.task_scoring import scoring
from ecgzoo.serving.loaded_run import BEST_CHECKPOINT, load_run


def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures worth shipping of one metrics.json section (the task's `TaskScoring.shipped`); undefined stays None."""
    from ecgzoo.report.task_report import task_of_metrics

    task = task_of_metrics(metrics)
    return scoring(task).shipped(metrics)


#: dataset options that say where the data was on the training machine, not what it was
LOCATION_OPTIONS = {"path", "url", "download"}


def _dataset_options(dataset: str, config: dict[str, Any]) -> dict[str, Any]:
    """The run's dataset options, defaults resolved, that define the task (e.g. PTB-XL's task and folds):
    `evaluate MODEL:TAG` on that dataset reuses them."""
    from ecgzoo.core.registry import get_registry

    registry = get_registry()
    options = registry.make_config(registry.resolve(dataset, "dataset"), config.get("config", {}).get("dataset", {}))
    return {k: v for k, v in options.model_dump(mode="json").items() if k not in LOCATION_OPTIONS}


def manifest_json(manifest: PretrainedManifest) -> str:
    """Strict JSON text of a manifest (the loader's `folder` left out: it is where the file is found)."""
    return json.dumps(manifest.model_dump(mode="json", exclude={"folder"}, exclude_none=True), indent=1, allow_nan=False) + "\n"


def publish_run(run_dir: str | Path, tag: str, dest: str | Path, *, command: str, license_weights: str,
                license_data: str, data_attribution: str = "", units: str = "mV",
                lead_names: list[str] | None = None, wall_seconds: float | None = None) -> Path:
    """Write MODEL.TAG.{safetensors,split.json,manifest.json,md} for `run_dir` into `dest`; returns the manifest path."""
    run = load_run(run_dir)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{run.info['model']}.{tag}"
    weights = dest / f"{stem}.safetensors"
    write_bytes_atomic(weights, (run.path / BEST_CHECKPOINT).read_bytes())
    write_bytes_atomic(dest / f"{stem}.split.json", json.dumps(run.splits, indent=1).encode())
    metrics = json.loads((run.path / "metrics.json").read_text(encoding="utf-8"))
    environment = json.loads((run.path / "environment.json").read_text(encoding="utf-8"))
    manifest = PretrainedManifest(
        model=run.info["model"], tag=tag, file=weights.name, sha256=sha256_of(weights), size=weights.stat().st_size,
        classes=run.classes,
        input=InputContract(fs=run.fs, leads=run.in_leads, lead_names=lead_names or [], units=units,
                            window_seconds=run.input_samples / run.fs, pipeline=run.input.pipeline),
        license_weights=license_weights, license_data=license_data, data_attribution=data_attribution,
        training_command=command,
        training={"dataset": run.info["dataset"], "dataset_options": _dataset_options(run.info["dataset"], run.config),
                  "records": run.info["records"], "train_records": run.info["train_records"],
                  "val_records": run.info["val_records"], "test_records": run.info.get("test_records", 0),
                  "wall_seconds": run.info.get("seconds") if wall_seconds is None else wall_seconds,
                  "git_commit": environment.get("git_commit"),
                  "torch": environment.get("torch"), "machine": environment.get("machine") or environment.get("platform")},
        metrics={"validation": _figures(metrics), **({"test": _figures(metrics["test"])} if "test" in metrics else {})},
        splits_file=f"{stem}.split.json",
    )
    path = dest / f"{stem}.manifest.json"
    write_bytes_atomic(path, manifest_json(manifest).encode())
    write_bytes_atomic(dest / f"{stem}.md", model_card(read_manifest(path)).encode())
    return path


def model_card(m: PretrainedManifest) -> str:
    """A markdown model card generated from the manifest (what it is, how good, on what, how to use it)."""
    t = m.training
    steps = " -> ".join(s["name"] + ("(" + ", ".join(f"{k}={v}" for k, v in s.items() if k != "name") + ")" if len(s) > 1 else "")
                        for s in m.input.pipeline)
    return f"""# Model card: `{m.name}`

**{m.model}** trained on **{t.get('dataset', m.tag)}** to classify {_classes_line(m)}.

## Input contract
- {m.input.leads} lead(s){' (' + ', '.join(m.input.lead_names) + ')' if m.input.lead_names else ''}, {m.input.units},
  {m.input.fs:g} Hz (other rates are resampled), windows of {m.input.window_seconds:g} s (longer recordings are
  classified window by window; shorter ones are zero-padded and pooled over their own length).
- Preprocessing, applied by ecgzoo to every recording: {steps}.

{_how_good(m)}
## Training
- Command: `{m.training_command}`
- {t.get('train_records')} training records, {t.get('wall_seconds')} s wall time, commit {t.get('git_commit')}, torch {t.get('torch')}.

## Licenses
- Weights: {m.license_weights}. Data: {m.license_data}.
- {m.data_attribution}

## Use
```bash
ecgzoo predict {m.name} RECORD.hea
ecgzoo evaluate {m.name} {t.get('dataset', 'DATASET')} --set path=DATA_FOLDER --split test{_option_flags(t)}
ecgzoo explain {m.name} RECORD.hea
```
```python
model = ecgzoo.create_model("{m.model}", pretrained="{m.tag}")
```

File `{m.file}`, {m.size} bytes, SHA-256 `{m.sha256}` (verified before every load).
"""


def _option_flags(training: dict[str, Any]) -> str:
    """The dataset options of the training run as --set flags (only the task-defining ones that differ by run)."""
    options = training.get("dataset_options", {})
    return "".join(f" --set {k}={v}" for k, v in options.items() if k == "task")


def _classes_line(m: PretrainedManifest) -> str:
    from ecgzoo.report.task_report import task_of_manifest

    task = task_of_manifest(m)
    if not task.lists_labels:
        return ", ".join(m.classes)
    if len(m.classes) > 8:
        return f"{len(m.classes)} statements at once ({task.kind}; listed below)"
    return ", ".join(m.classes) + f" ({task.kind}: any number at once)"


def _how_good(m: PretrainedManifest) -> str:
    """The model card's figures section: the task's headline figure (`Task.headline_metric`) and what it is
    made of, as `ecgzoo.report.task_report` writes it for the task of the manifest."""
    from ecgzoo.report.task_report import report_for, task_of_manifest

    task = task_of_manifest(m)
    return report_for(task).card_figures(task, m.metrics.get("test", {}), m.metrics.get("validation", {}), m.training)
