"""A finished run, loaded to predict with: a run folder, or pretrained weights named `MODEL:TAG`.

`load_run(path)` gives back what prediction, evaluation and explanation need: the model (weights loaded
from safetensors, never unpickled, eval mode), the preprocessing pipeline, classes and rates. The names
of a run folder's files are defined here, where they are read; `ecgzoo.training.run_dir` writes them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ecgzoo.core.leads import canonical_leads
from ecgzoo.core.manifest import InputContract
from ecgzoo.core.model import EcgModel
from ecgzoo.core.tasks import Task
from ecgzoo.data.pipeline import Pipeline
from ecgzoo.data.signal_source import MAX_FS, MIN_FS
from ecgzoo.models.checkpoint import load_checkpoint, model_from_checkpoint
from ecgzoo.models.pretrained import find_manifest, is_pretrained_name, splits_of, weights_path

INCOMPLETE = ".incomplete"
CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
FAILED_FILE = "FAILED.txt"
BEST_CHECKPOINT = Path("checkpoints") / "best.safetensors"


class RunDirError(FileNotFoundError):
    """A folder that is not a complete ecgzoo run (missing, incomplete, lacking or with an unreadable file)."""


@dataclasses.dataclass
class LoadedRun:
    """A finished run, ready to predict with."""

    path: Path
    model: EcgModel
    pipeline: Any
    classes: list[str]
    config: dict[str, Any]
    fs: float
    input_fs: float
    input_samples: int
    in_leads: int
    info: dict[str, Any]
    #: what to call it in messages: the run folder, or MODEL:TAG for pretrained weights
    label: str = ""
    #: where evaluate/explain write by default (the run folder; ./MODEL-TAG for pretrained weights)
    output_dir: Path | None = None
    #: record lists by split name (train/val/test), from split.json or the weights' manifest
    splits: dict[str, Any] = dataclasses.field(default_factory=dict)
    task: Task | None = None  # None only for runs written before tasks existed: single-label over classes
    lead_names: tuple[str, ...] | None = None  # the leads the model was trained on, in input order
    thresholds: list[float] | None = None  # multi-label: per-class decision thresholds chosen on validation

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = Task.single_label(self.classes)


def load_run(run_dir: str | Path, device: str = "cpu") -> LoadedRun:
    """The model (eval mode, safetensors weights), pipeline and facts of a finished run, or of
    pretrained weights named `MODEL:TAG` (see `ecgzoo list --pretrained`)."""
    path = Path(run_dir)
    if is_pretrained_name(str(run_dir)):
        return load_pretrained_run(str(run_dir), device=device)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} not found")
    if path.name.endswith(INCOMPLETE) or (path / FAILED_FILE).exists():
        raise RunDirError(f"{path} is an incomplete run (see {path / FAILED_FILE}); finish it or use another run")
    for rel in (CONFIG_FILE, RUN_FILE, BEST_CHECKPOINT):
        if not (path / rel).is_file():
            raise RunDirError(f"{path} is not an ecgzoo run directory: {rel} is missing")
    config = read_json(path / CONFIG_FILE)
    info = read_json(path / RUN_FILE)
    numbers = ("fs", "input_fs", "input_samples", "in_leads")
    if any(isinstance(info.get(k), bool) or not isinstance(info.get(k), (int, float)) for k in numbers):
        raise RunDirError(f"{path / RUN_FILE}: damaged: {', '.join(numbers)} must be numbers")
    try:
        facts = {"pipeline": Pipeline(info["pipeline"]), "classes": [str(c) for c in info["classes"]],
                 "fs": float(info["fs"]), "input_fs": float(info["input_fs"]),
                 "input_samples": int(info["input_samples"]), "in_leads": int(info["in_leads"])}
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RunDirError(f"{path / RUN_FILE}: not a valid run description ({type(exc).__name__}: {exc})") from None
    plausible = (all(MIN_FS <= facts[k] <= MAX_FS for k in ("fs", "input_fs")) and 16 <= facts["input_samples"] <= 10**9
                 and 0 < facts["in_leads"] <= 10**4 and len(facts["classes"]) >= 2)
    if not plausible:
        raise RunDirError(f"{path / RUN_FILE}: damaged: rates must lie in {MIN_FS:g}-{MAX_FS:g} Hz, the input must be at least "
                          f"16 samples, leads positive and there must be at least 2 classes")
    model = model_from_checkpoint(path / BEST_CHECKPOINT, device=device)
    model.eval()
    outputs, leads = getattr(model, "num_classes", len(facts["classes"])), getattr(model, "in_leads", facts["in_leads"])
    if (outputs, leads) != (len(facts["classes"]), facts["in_leads"]):
        raise RunDirError(f"{path / RUN_FILE}: damaged: it lists {len(facts['classes'])} classes and {facts['in_leads']} "
                          f"lead(s), the model in {BEST_CHECKPOINT} has {outputs} outputs and {leads} lead(s)")
    split_file = path / "split.json"
    thresholds = load_checkpoint(path / BEST_CHECKPOINT)[1].get("thresholds")
    return LoadedRun(path=path, model=model, config=config, info=info, label=str(path), output_dir=path,
                     splits=read_json(split_file) if split_file.is_file() else {},
                     task=Task.from_json(info.get("task"), facts["classes"]),
                     lead_names=tuple(info["lead_names"]) if info.get("lead_names") else None,
                     thresholds=[float(t) for t in thresholds] if thresholds is not None else None, **facts)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a run folder; a damaged file is a RunDirError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: damaged, not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: damaged, expected a JSON object, found {type(value).__name__}")
    return value


def _lead_names(contract: InputContract) -> tuple[str, ...] | None:
    """The leads of multi-lead weights by name (predict and explain match a recording's leads to them); None for
    one-lead weights, whose manifest describes the lead in words (any one lead stands for it)."""
    names = contract.lead_names
    return canonical_leads(names) if contract.leads > 1 and len(names) == contract.leads else None


def load_pretrained_run(name: str, device: str = "cpu") -> LoadedRun:
    """Pretrained weights as a `LoadedRun`: what predict, evaluate and explain take instead of a run folder."""
    manifest = find_manifest(name)
    path = weights_path(manifest)
    model = model_from_checkpoint(path, device=device)
    meta = load_checkpoint(path)[1]  # multi-label weights keep their task (with names) and thresholds here, as runs do
    thresholds = meta.get("thresholds")
    contract = manifest.input
    return LoadedRun(
        task=Task.from_json(meta.get("task"), manifest.classes),
        thresholds=[float(t) for t in thresholds] if thresholds is not None else None,
        lead_names=_lead_names(contract),
        path=Path(manifest.folder or "."),
        model=model,
        pipeline=Pipeline(contract.pipeline),
        classes=list(manifest.classes),
        config={"config": {"dataset": dict(manifest.training.get("dataset_options", {}))}},
        fs=contract.fs,
        input_fs=contract.fs,
        input_samples=round(contract.window_seconds * contract.fs),
        in_leads=contract.leads,
        info={"model": manifest.model, "dataset": manifest.training.get("dataset"), "pretrained": manifest.name},
        label=manifest.name,
        output_dir=Path.cwd() / f"{manifest.model}-{manifest.tag}",
        splits=splits_of(manifest),
    )
