"""A finished run, loaded to predict with: a run folder, or pretrained weights named `MODEL:TAG`.

`load_run(path)` gives back what prediction, evaluation and explanation need: the model (weights loaded
from safetensors, never unpickled, eval mode), its input contract (`InputContract`: rates, leads, window,
preprocessing) and classes. The names of a run folder's files are defined here, where they are read;
`ecgzoo.serving.run_dir` writes them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pydantic

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
    classes: list[str]
    config: dict[str, Any]
    #: what a recording must be for the model (rate, leads, window, preprocessing): run.json's or the manifest's
    input: InputContract
    info: dict[str, Any]
    #: what to call it in messages: the run folder, or MODEL:TAG for pretrained weights
    label: str = ""
    #: where evaluate/explain write by default (the run folder; ./MODEL-TAG for pretrained weights)
    output_dir: Path | None = None
    #: record lists by split name (train/val/test), from split.json or the weights' manifest
    splits: dict[str, Any] = dataclasses.field(default_factory=dict)
    task: Task | None = None  # None only for runs written before tasks existed: single-label over classes
    thresholds: list[float] | None = None  # multi-label: per-class decision thresholds chosen on validation
    #: the preprocessing pipeline of `input.pipeline` (None: built from it when the run is made)
    pipeline: Any = None

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = Task.single_label(self.classes)
        if self.pipeline is None:
            self.pipeline = Pipeline(self.input.pipeline)

    # read-only views of the contract, which prediction, explanation and evaluation read throughout
    fs = property(lambda self: self.input.fs, doc="the rate the network takes (Hz)")
    input_fs = property(lambda self: self.input.recording_fs, doc="the rate recordings are brought to before preprocessing")
    input_samples = property(lambda self: self.input.samples, doc="the network's input length in samples")
    in_leads = property(lambda self: self.input.leads, doc="the leads the network takes")
    lead_names = property(lambda self: self.input.named_leads, doc="the leads the model was trained on, in input order")


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
    contract, classes, pipeline = _run_contract(info, path / RUN_FILE)
    model = model_from_checkpoint(path / BEST_CHECKPOINT, device=device)
    model.eval()
    outputs, leads = getattr(model, "num_classes", len(classes)), getattr(model, "in_leads", contract.leads)
    if (outputs, leads) != (len(classes), contract.leads):
        raise RunDirError(f"{path / RUN_FILE}: damaged: it lists {len(classes)} classes and {contract.leads} "
                          f"lead(s), the model in {BEST_CHECKPOINT} has {outputs} outputs and {leads} lead(s)")
    split_file = path / "split.json"
    thresholds = load_checkpoint(path / BEST_CHECKPOINT)[1].get("thresholds")
    return LoadedRun(path=path, model=model, config=config, info=info, label=str(path), output_dir=path,
                     splits=read_json(split_file) if split_file.is_file() else {}, classes=classes, input=contract,
                     pipeline=pipeline,
                     task=Task.from_json(info.get("task"), classes),
                     thresholds=[float(t) for t in thresholds] if thresholds is not None else None)


#: the keys run.json held the input contract under before it was one object (`input`); still read
OLD_CONTRACT_KEYS = ("fs", "input_fs", "input_samples", "in_leads")


def contract_of(info: dict[str, Any]) -> InputContract:
    """The input contract a run.json records: its `input` object, or (runs written before it was one) the
    flat keys fs, input_fs, input_samples, in_leads, lead_names and pipeline. Raises ValueError, TypeError, KeyError."""
    if "input" in info:
        if not isinstance(info["input"], dict):
            raise TypeError("'input' must be an object")
        return InputContract(**info["input"])
    if any(isinstance(info.get(k), bool) or not isinstance(info.get(k), (int, float)) for k in OLD_CONTRACT_KEYS):
        raise TypeError(f"{', '.join(OLD_CONTRACT_KEYS)} must be numbers")
    fs, input_fs = float(info["fs"]), float(info["input_fs"])
    return InputContract(fs=fs, leads=int(info["in_leads"]), lead_names=list(info.get("lead_names") or []),
                         window_seconds=int(info["input_samples"]) / fs, pipeline=info["pipeline"],
                         input_fs=None if input_fs == fs else input_fs)


def _run_contract(info: dict[str, Any], where: Path) -> tuple[InputContract, list[str], Pipeline]:
    """run.json's input contract, classes and pipeline, refusing what cannot be a finished run's."""
    try:
        contract, classes = contract_of(info), [str(c) for c in info["classes"]]
        pipeline = Pipeline(contract.pipeline)
    except pydantic.ValidationError as exc:  # one line per problem, not pydantic's block
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RunDirError(f"{where}: not a valid run description (input: {problems})") from None
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise RunDirError(f"{where}: not a valid run description ({type(exc).__name__}: {exc})") from None
    rates = (contract.fs, contract.recording_fs)
    plausible = (all(MIN_FS <= r <= MAX_FS for r in rates) and 16 <= contract.samples <= 10**9
                 and 0 < contract.leads <= 10**4 and len(classes) >= 2)
    if not plausible:
        raise RunDirError(f"{where}: damaged: rates must lie in {MIN_FS:g}-{MAX_FS:g} Hz, the input must be at least "
                          f"16 samples, leads positive and there must be at least 2 classes")
    return contract, classes, pipeline


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a run folder; a damaged file is a RunDirError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: damaged, not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: damaged, expected a JSON object, found {type(value).__name__}")
    return value


def load_pretrained_run(name: str, device: str = "cpu") -> LoadedRun:
    """Pretrained weights as a `LoadedRun`: what predict, evaluate and explain take instead of a run folder."""
    manifest = find_manifest(name)
    path = weights_path(manifest)
    model = model_from_checkpoint(path, device=device)
    meta = load_checkpoint(path)[1]  # multi-label weights keep their task (with names) and thresholds here, as runs do
    thresholds = meta.get("thresholds")
    return LoadedRun(
        task=Task.from_json(meta.get("task"), manifest.classes),
        thresholds=[float(t) for t in thresholds] if thresholds is not None else None,
        path=Path(manifest.folder or "."),
        model=model,
        classes=list(manifest.classes),
        config={"config": {"dataset": dict(manifest.training.get("dataset_options", {}))}},
        # a one-lead manifest describes its lead in words (any one lead stands for it): no name to check recordings against
        input=manifest.input if manifest.input.leads > 1 else manifest.input.model_copy(update={"lead_names": []}),
        info={"model": manifest.model, "dataset": manifest.training.get("dataset"), "pretrained": manifest.name},
        label=manifest.name,
        output_dir=Path.cwd() / f"{manifest.model}-{manifest.tag}",
        splits=splits_of(manifest),
    )
