"""`ecgzoo run`: dataset -> preprocessors -> split -> train -> evaluate -> explain -> report.

`run(model, dataset, config)` performs the whole job and returns the finished run directory.
Every option is validated (including each plugin's own options) before any data is read,
and every file lands atomically in a folder that is renamed only once the report exists
(see `ecgzoo.serving.run_dir`).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecgzoo._infra.device import resolve_device
from ecgzoo._infra.version import __version__
from ecgzoo.core.config import ConfigError
from ecgzoo.core.create import create_explainer, create_trainer, get_dataset
from ecgzoo.core.dataset import Dataset
from ecgzoo.core.manifest import InputContract
from ecgzoo.core.model import EcgModel
from ecgzoo.core.registry import get_registry
from ecgzoo.core.trainer import FitContext, FitResult, TrainingTask
from ecgzoo.evaluation.scoring import predict_dataset
from ecgzoo.models.create import create_model
from ecgzoo.serving.loaded_run import CONFIG_FILE, METRICS_FILE, RUN_FILE
from ecgzoo.serving.run_dir import RunDir, default_run_name
from ecgzoo.training.run_config import RunConfig, build_pipeline


def _say(message: str) -> None:
    print(f"ecgzoo: {message}", file=sys.stderr, flush=True)


def check_plugins(model: str, dataset: str, config: RunConfig) -> None:
    """Fail before any work when a plugin name or one of its options is wrong."""
    reg = get_registry()
    reg.make_config(reg.resolve(model, "model"), {**config.model, "num_classes": 2, "in_leads": 1})
    reg.make_config(reg.resolve(dataset, "dataset"), config.dataset)
    for step in config.preprocessing or []:
        options = {k: v for k, v in step.items() if k != "name"}
        reg.make_config(reg.resolve(step["name"], "preprocessor"), options)
    reg.make_config(reg.resolve(config.trainer_plugin, "trainer"), config.trainer)
    reg.make_config(reg.resolve(config.explainer, "explainer"), config.report.explainer_options)
    for key in ("num_classes", "in_leads"):
        if key in config.model:
            raise ConfigError(f"model option {key!r} is set from the data by `ecgzoo run`; leave it out")
    if "init_weights" in config.model:
        raise ConfigError("model option 'init_weights' is a record set by `ecgzoo run --init MODEL:TAG`; leave it out")
    _check_explainer_supports(model, config, _init_model_options(model, config))


def _init_model_options(model: str, config: RunConfig) -> dict[str, Any]:
    """The options the run's model is built with: with `init`, the weights' own (file verified) under the run's."""
    if config.init is None:
        return dict(config.model)
    from ecgzoo.core.manifest import PretrainedError
    from ecgzoo.models.checkpoint import load_checkpoint
    from ecgzoo.models.finetune import check_options
    from ecgzoo.models.pretrained import find_manifest, weights_path

    if ":" not in config.init:
        raise ConfigError(f"init {config.init!r}: expected pretrained weights MODEL:TAG (ecgzoo list --pretrained)")
    manifest = find_manifest(config.init)
    wanted = get_registry().resolve(model, "model").name
    if manifest.model != wanted:
        raise PretrainedError(f"init {config.init}: these are weights of model {manifest.model!r}, the run trains model {wanted!r}; "
                              f"run `ecgzoo run {manifest.model} ...` or choose weights of {wanted} (ecgzoo list --pretrained)")
    state, meta = load_checkpoint(weights_path(manifest))
    check_options(manifest, state, meta["model_config"], config.model)
    return {**meta["model_config"], **config.model}


def _check_explainer_supports(model: str, config: RunConfig, options: dict[str, Any]) -> None:
    """The report's explainer must support the model: refused now, not after training (shapes on the meta device: free)."""
    from ecgzoo.core.explainer import check_supports

    with torch.device("meta"):
        net = create_model(model, **{**options, "num_classes": 2, "in_leads": 1})
    check_supports(create_explainer(config.explainer, **config.report.explainer_options), net, config.explainer)


def fit_context(device: str, seed: int, checkpoint_dir: Path) -> FitContext:
    """The trainer's view of the run in this process (rank and world size of the joined group, if any)."""
    from ecgzoo.training.distributed import context

    dist = context()
    return FitContext(device=device, seed=seed, rank=dist.rank, world_size=dist.world_size, checkpoint_dir=checkpoint_dir)


def environment(device: str) -> dict[str, Any]:
    """Versions, device and git commit: what someone needs to reproduce the run."""
    env: dict[str, Any] = {
        "ecgzoo": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "cpu_threads": torch.get_num_threads(),
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            env["git_commit"] = commit.stdout.strip()
            env["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def _join_torchrun_group(device: str, config: RunConfig) -> Any:
    """The process group torchrun describes in the environment (a one-process context otherwise)."""
    from ecgzoo.training import distributed

    if config.nproc > 1 or int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return distributed.DistContext()
    return distributed.setup(device)


def _fit(model: EcgModel, trainer_name: str, trainer_opts: dict[str, Any], train: Any, val: Any,
         task: TrainingTask, device: str, seed: int, checkpoint_dir: Path) -> FitResult:
    """Create the trainer and fit; a module-level function so `--nproc` can spawn it (the model travels pickled)."""
    trainer = create_trainer(trainer_name, **trainer_opts)
    result = trainer.fit(model, train, val, task, fit_context(device, seed, checkpoint_dir))
    if not isinstance(result, FitResult):
        raise TypeError(f"trainer {trainer_name!r}: fit() returned {type(result).__name__}, the contract asks for an ecgzoo.FitResult")
    return result


def _fit_in_worker(*args: Any) -> tuple[FitResult, bytes]:
    """`_fit` in a `launch`ed process: the best state travels as safetensors bytes, because torch sends
    tensors through file descriptors that vanish when the worker exits before the parent reads them."""
    import safetensors.torch

    result = _fit(*args)
    state = safetensors.torch.save({k: v.detach().cpu().contiguous().clone() for k, v in result.best_state.items()})
    return dataclasses.replace(result, best_state={}), state


def save_fit_result(run_dir: RunDir, result: FitResult) -> list[dict[str, Any]]:
    """history.json and checkpoints/metrics.jsonl (one row per epoch) from the trainer's result: the one
    writer of both in a finished run; returns the history rows."""
    from ecgzoo._infra.jsonio import dumps

    run_dir.path("checkpoints").mkdir(parents=True, exist_ok=True)
    history = result.history()
    run_dir.write_json("history.json", history)
    run_dir.write("checkpoints/metrics.jsonl", "".join(dumps(row) + "\n" for row in history))
    return history


def save_best(run_dir: RunDir, model: EcgModel, result: FitResult, task: Any,
              thresholds: list[float] | None = None) -> Path:
    """checkpoints/best.safetensors, written once per run, here: the best epoch's weights (`model`, holding
    `result.best_state`), its metrics, the task and the decision thresholds chosen on validation (a
    multi-label task; None: none stored). `ecgzoo predict`, `evaluate` and `publish` read it back."""
    from ecgzoo.models.checkpoint import save_checkpoint

    best = next(e for e in result.epochs if e.epoch == result.best_epoch)
    meta = {"kind": "best", "classes": list(task.classes), "epoch": result.best_epoch, "metrics": dict(best.metrics),
            "task": task.to_json()}
    if thresholds is not None:
        meta["thresholds"] = [float(t) for t in thresholds]
    run_dir.path("checkpoints").mkdir(parents=True, exist_ok=True)
    return save_checkpoint(run_dir.path("checkpoints", "best.safetensors"), model, meta)


def split_records(labels: np.ndarray, split: Any, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) record indices: the test split first (its own fixed seed), then validation from the rest."""
    from ecgzoo.data.splits import stratified_split

    if not split.test_fraction:
        train_idx, val_idx = stratified_split(labels, val_fraction=split.val_fraction, seed=seed)
        return train_idx, val_idx, np.zeros(0, dtype=np.int64)
    rest, test_idx = stratified_split(labels, val_fraction=split.test_fraction, seed=split.test_seed)
    train_in_rest, val_in_rest = stratified_split(labels[rest], val_fraction=split.val_fraction, seed=seed)
    return rest[train_in_rest], rest[val_in_rest], test_idx


def score_test_split(run_dir: Any, model: EcgModel, prepared: Any, test_idx: np.ndarray, device: str,
                     batch_size: int, scored: list[str] | None = None, thresholds: list[float] | None = None) -> dict[str, Any]:
    """Metrics of the chosen model on the test split (at the thresholds chosen on validation), with a 95%
    bootstrap interval of the headline figure; writes predictions_test.csv."""
    from ecgzoo.evaluation.task_scoring import scoring

    task = prepared.task
    score = scoring(task)
    probs = predict_dataset(model, prepared.torch_dataset(test_idx), device, batch_size, task=task)
    y_test = np.asarray(prepared.labels)[test_idx]
    metrics = {**score.metrics(task, y_test, probs, thresholds, scored, interval=True), "split": "test", **score.test_note()}
    ids = [str(prepared.record_ids[i]) for i in test_idx]
    run_dir.write("predictions_test.csv", score.predictions_csv(task, ids, y_test, probs, thresholds))
    return metrics


@dataclasses.dataclass
class _Run:
    """What the stages of one run share."""

    config: RunConfig
    dataset: str
    device: str
    model_name: str
    data: Dataset
    pipeline: Any
    ctx: Any  # the torchrun group this process belongs to (DistContext)
    run_dir: RunDir
    t_start: float = dataclasses.field(default_factory=time.perf_counter)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    resolved: dict[str, Any] = dataclasses.field(default_factory=dict)


def _open(model: str, dataset: str, config: RunConfig) -> _Run:
    """Validate every option and plugin, open the data and the run directory (rank 0's name on every rank)."""
    check_plugins(model, dataset, config)
    device = resolve_device(config.device)
    model_entry = get_registry().resolve(model, "model")
    data = get_dataset(dataset, **config.dataset)  # missing data: a message saying where to put it, no folder made
    pipeline = build_pipeline(config, data, dataset)
    ctx = _join_torchrun_group(device, config)
    name = config.name or default_run_name(model_entry.name, dataset)
    if ctx.enabled:  # under torchrun every rank runs this: all use rank 0's name, only rank 0 writes
        from ecgzoo.training.distributed import broadcast_bytes

        name = (broadcast_bytes(name.encode()) or b"").decode()
    run_dir = RunDir.create(config.output_dir, name) if ctx.is_main else RunDir(config.output_dir, name, writes=False)
    if ctx.is_main:
        _say(f"run directory: {run_dir.final}{'  (continuing an incomplete run)' if run_dir.resumed else ''}")
    return _Run(config, dataset, device, model_entry.name, data, pipeline, ctx, run_dir)


def _check_classes(dataset: str, classes: list[str], labels: np.ndarray, task: Any) -> None:
    """Training needs two classes with records (single-label) or one class with a positive record (multi-label)."""
    present = [c for c, has in zip(classes, task.has_records(labels), strict=True) if has]
    if len(present) < task.min_present:
        raise ValueError(f"dataset {dataset!r} has records of {len(present)} class(es) {present}; training needs at least "
                         f"{task.min_present_text}")


def _prepare_and_split(r: _Run) -> tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Preprocess (cached), split, and write environment/config/skipped/split/run files; returns (prepared, splits)."""
    from ecgzoo._infra.csv_files import skipped_csv
    from ecgzoo.data.prepared import prepare
    from ecgzoo.data.splits import dataset_split

    config, run_dir = r.config, r.run_dir
    run_dir.write_json("environment.json", environment(r.device))
    r.resolved = {"model_name": r.model_name, "dataset_name": r.dataset,
                  "config": {**config.model_dump(mode="json"), "preprocessing": r.pipeline.config}}
    run_dir.write_json(CONFIG_FILE, r.resolved)
    _say(f"preparing {r.dataset} ({len(r.data)} records) through {len(r.pipeline.config)} preprocessing steps")
    prepared = prepare(r.data, r.pipeline, cache_dir=config.cache_dir, on_error=config.on_error, workers=config.workers)
    classes, task = list(prepared.classes), prepared.task
    if prepared.skipped:
        run_dir.write("skipped.csv", skipped_csv(prepared.skipped))
    labels = np.asarray(prepared.labels)
    _check_classes(r.dataset, classes, labels, task)
    seed = config.split.seed if config.split.seed is not None else config.seed
    record_ids = [str(i) for i in prepared.record_ids]
    fixed = dataset_split(r.data, record_ids)  # e.g. PTB-XL's folds 1-8 / 9 / 10
    train_idx, val_idx, test_idx = fixed or split_records(task.stratify_by(labels), config.split, seed)
    run_dir.write_json("split.json", {
        "source": "the dataset's recommended split" if fixed else "stratified by seed",
        "seed": seed, "val_fraction": config.split.val_fraction, "test_fraction": config.split.test_fraction,
        "test_seed": config.split.test_seed, "train": [record_ids[i] for i in train_idx],
        "val": [record_ids[i] for i in val_idx], "test": [record_ids[i] for i in test_idx],
    })
    r.info = {
        "model": r.model_name, "dataset": r.dataset, "classes": classes,
        "input": input_contract(prepared, r.pipeline, float(r.data.load(record_ids[0]).fs)).model_dump(mode="json"),
        "records": len(record_ids), "train_records": len(train_idx), "val_records": len(val_idx),
        "test_records": len(test_idx), "skipped": len(prepared.skipped),
        "class_counts": task.class_counts(labels), "task": task.to_json(),
    }
    run_dir.write_json(RUN_FILE, r.info)
    return prepared, (train_idx, val_idx, test_idx)


def input_contract(prepared: Any, pipeline: Any, recording_fs: float) -> InputContract:
    """What the trained model will expect, from the prepared arrays (rate, leads, length, lead names), the
    preprocessing and the rate of the dataset's recordings (kept only where it is not the model's)."""
    fs, samples = float(prepared.fs), int(prepared.signals.shape[2])
    return InputContract(fs=fs, leads=int(prepared.signals.shape[1]), lead_names=list(prepared.lead_names or []),
                         window_seconds=samples / fs, pipeline=pipeline.config,
                         input_fs=None if recording_fs == fs else recording_fs)


def _initial_model(r: _Run, classes: list[str]) -> EcgModel:
    """The untrained model: fresh, or with `init` the pretrained weights adapted to the data's classes and leads
    (recorded in run.json; an interrupted run's trainer then resumes from its own last state, not from these)."""
    config, in_leads = r.config, r.info["input"]["leads"]
    if config.init is None:
        return create_model(r.model_name, **config.model, num_classes=len(classes), in_leads=in_leads)
    from ecgzoo.models.finetune import adapt_pretrained

    net = adapt_pretrained(config.init, num_classes=len(classes), in_leads=in_leads, classes=classes, **config.model)
    r.info["init"] = net.init_summary.to_json()
    r.run_dir.write_json(RUN_FILE, r.info)
    if r.ctx.is_main:
        _say(net.init_summary.line())
    return net.train()


def _train(r: _Run, prepared: Any, train_idx: np.ndarray, val_idx: np.ndarray) -> tuple[EcgModel, FitResult]:
    """Build the model (the run's seed: the same initial weights on every rank) and fit it through the trainer plugin."""
    from ecgzoo.models.checkpoint import seed_everything

    config, classes = r.config, list(prepared.classes)
    train_ds, val_ds = prepared.torch_dataset(train_idx), prepared.torch_dataset(val_idx)
    _say(f"training {r.model_name} on {len(train_idx)} records, validating on {len(val_idx)} ({r.device})")
    seed_everything(config.seed)
    net = _initial_model(r, classes)
    task = prepared.task.with_scored(r.data.scored_classes)  # ecgzoo.core.tasks.Task: single- or multi-label
    args = (net, config.trainer_plugin, config.trainer, train_ds, val_ds, task, r.device, config.seed, r.run_dir.path("checkpoints"))
    if config.nproc > 1:
        import safetensors.torch

        from ecgzoo.training.distributed import launch

        result, state = launch(_fit_in_worker, config.nproc, *args, device=r.device)
        return net, dataclasses.replace(result, best_state=safetensors.torch.load(state))
    return net, _fit(*args)


def _validation_metrics(r: _Run, best: Any, prepared: Any, splits: tuple[np.ndarray, ...],
                        probs: np.ndarray) -> tuple[dict[str, Any], list[float] | None]:
    """(validation metrics at the thresholds chosen there, those thresholds); the test split's metrics at the
    same thresholds; predictions.csv (and predictions_test.csv)."""
    from ecgzoo.evaluation.task_scoring import scoring

    config, run_dir, task, scored = r.config, r.run_dir, prepared.task, r.data.scored_classes
    score = scoring(task)
    _, val_idx, test_idx = splits
    y_val = np.asarray(prepared.labels)[val_idx]
    thresholds = score.choose_thresholds(task, y_val, probs)
    metrics = {**score.metrics(task, y_val, probs, thresholds, scored), **score.validation_note()}
    if len(test_idx):
        metrics["test"] = score_test_split(run_dir, best, prepared, test_idx, r.device, config.eval_batch_size, scored, thresholds)
    ids = [str(prepared.record_ids[i]) for i in val_idx]
    run_dir.write("predictions.csv", score.predictions_csv(task, ids, y_val, probs, thresholds))
    return metrics, thresholds


def _score_and_report(r: _Run, prepared: Any, splits: tuple[np.ndarray, ...], net: EcgModel, result: FitResult,
                      history: list[dict[str, Any]]) -> dict[str, Any]:
    """Score the best epoch's model on validation (and test), write the best checkpoint (with the thresholds
    chosen on validation), predictions, figures and report.md."""
    from ecgzoo.evaluation.task_scoring import chance_check
    from ecgzoo.report.report import write_evaluation_figures, write_report
    from ecgzoo.report.task_report import report_for

    config, run_dir, task = r.config, r.run_dir, prepared.task
    val_idx = splits[1]
    net.load_state_dict(result.best_state)
    best = net.to(r.device).eval()
    probs = predict_dataset(best, prepared.torch_dataset(val_idx), r.device, config.eval_batch_size, task=task)
    if not np.isfinite(probs).all():  # finite or nothing: a diverged model is no result
        raise ValueError(f"the trained model's output is not finite (NaN or inf) for {int((~np.isfinite(probs).all(1)).sum())} "
                         f"of {len(probs)} validation records: training diverged (try a lower learning rate or trainer.grad_clip)")
    metrics, thresholds = _validation_metrics(r, best, prepared, splits, probs)
    save_best(run_dir, best, result, task, thresholds)
    metrics["split"] = "validation"
    metrics["chance"] = chance_check(prepared, splits, probs, r.data.scored_classes)  # no better than a guess? (warned)
    best_epoch = max((h for h in history if h.get("best")), key=lambda h: h["epoch"], default=None)
    metrics["best_epoch"] = best_epoch["epoch"] if best_epoch else None
    run_dir.write_json(METRICS_FILE, metrics)
    figures = write_evaluation_figures(run_dir.work, metrics, history)
    figures += report_for(task).examples(
        run_dir.work, best, prepared, val_idx, probs, task, config.explainer,
        config.report.explainer_options, config.report.examples_per_class, r.device,
    )
    r.info["seconds"] = round(time.perf_counter() - r.t_start, 1)
    run_dir.write_json(RUN_FILE, r.info)
    write_report(run_dir.work, run_dir.final, r.info, r.resolved, metrics, history, figures)
    return metrics


def _say_done(r: _Run, final: Path, metrics: dict[str, Any], task: Any) -> None:
    from ecgzoo.evaluation.chance import warning
    from ecgzoo.evaluation.task_scoring import scoring

    headline = scoring(task).headline
    _say(f"done in {time.perf_counter() - r.t_start:.0f} s: validation {headline(metrics).replace('**', '')}")
    if "test" in metrics:
        _say(f"{scoring(task).test_intro(metrics['test'])}: {headline(metrics['test']).replace('**', '')}")
    if warning(metrics.get("chance")):
        _say(f"warning: {warning(metrics.get('chance'))}")
    _say(f"run directory: {final}")
    print(f"report: {final / 'report.md'}")


def _stopped(r: _Run, exc: BaseException, resume: Callable[[str], str] | None) -> None:
    """FAILED.txt and one line on stderr, both with the exact command that continues the run."""
    again = resume(r.run_dir.name) if resume is not None else f"the same call with name={r.run_dir.name!r}"
    r.run_dir.fail(exc, again)
    if isinstance(exc, KeyboardInterrupt):
        _say(f"interrupted; the incomplete run is kept in {r.run_dir.work}. To continue it, run: {again}")
    else:
        _say(f"run stopped; incomplete run left in {r.run_dir.work} (see {r.run_dir.work / 'FAILED.txt'}). "
             f"To continue it, run: {again}")


def run(model: str, dataset: str, config: RunConfig | None = None, resume: Callable[[str], str] | None = None) -> Path:
    """Run the whole pipeline for `model` on `dataset`; return the finished run directory.

    Stages: open (options, data, run folder) -> prepare and split -> train (the trainer plugin) ->
    save the trainer's result (best checkpoint, history) -> score and report. A failure or Ctrl-C
    leaves the folder incomplete with FAILED.txt; `resume(name)` is the command that continues it
    (the CLI's: the same command with `--name NAME`), printed on stderr and written in FAILED.txt.
    """
    r = _open(model, dataset, config or RunConfig())
    if resume is not None and r.ctx.is_main:  # SIGKILL leaves no message: say it now
        _say(f"if this run stops (Ctrl-C, a crash, a kill), continue it with: {resume(r.run_dir.name)}")
    try:
        if r.config.estimate and r.ctx.is_main and not r.ctx.enabled:
            from ecgzoo.training.estimate import announce

            announce(r.model_name, r.dataset, r.data, r.pipeline, r.config, r.device, _say)
        prepared, splits = _prepare_and_split(r)
        net, result = _train(r, prepared, splits[0], splits[1])
        if not r.ctx.is_main:
            return r.run_dir.final
        history = save_fit_result(r.run_dir, result)
        metrics = _score_and_report(r, prepared, splits, net, result, history)
    except BaseException as exc:
        _stopped(r, exc, resume)
        raise
    final = r.run_dir.finish()
    _say_done(r, final, metrics, prepared.task)
    return final
