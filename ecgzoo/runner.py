"""`ecgzoo run`: dataset -> preprocessors -> split -> train -> evaluate -> explain -> report.

`run(model, dataset, config)` performs the whole job and returns the finished run directory.
Every option is validated (including each plugin's own options) before any data is read,
and every file lands atomically in a folder that is renamed only once the report exists
(see `ecgzoo.run_dir`).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ecgzoo
from ecgzoo.registry import get_registry
from ecgzoo.run_config import RunConfig
from ecgzoo.run_dir import CONFIG_FILE, METRICS_FILE, RUN_FILE, RunDir, default_run_name


def _say(message: str) -> None:
    print(f"ecgzoo: {message}", file=sys.stderr, flush=True)


def resolve_device(device: str) -> str:
    """cpu/cuda from auto|cpu|cuda, with a clear error when CUDA is asked for and absent."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA device is available (use --device cpu or auto)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_plugins(model: str, dataset: str, config: RunConfig) -> None:
    """Fail before any work when a plugin name or one of its options is wrong."""
    reg = get_registry()
    reg.make_config(reg.resolve(model, "model"), {**config.model, "num_classes": 2, "in_leads": 1})
    reg.make_config(reg.resolve(dataset, "dataset"), config.dataset)
    for step in config.preprocessing or []:
        options = {k: v for k, v in step.items() if k != "name"}
        reg.make_config(reg.resolve(step["name"], "preprocessor"), options)
    reg.make_config(reg.resolve(config.trainer_plugin, "trainer"), trainer_options(config, "cpu"))
    reg.make_config(reg.resolve(config.explainer, "explainer"), config.report.explainer_options)
    for key in ("num_classes", "in_leads"):
        if key in config.model:
            raise ecgzoo.ConfigError(f"model option {key!r} is set from the data by `ecgzoo run`; leave it out")
    _check_explainer_supports(model, config)


def _check_explainer_supports(model: str, config: RunConfig) -> None:
    """The report's explainer must support the model: refused now, not after training (shapes on the meta device: free)."""
    from ecgzoo.explainer import check_supports

    with torch.device("meta"):
        net = ecgzoo.create_model(model, **{**config.model, "num_classes": 2, "in_leads": 1})
    check_supports(ecgzoo.create_explainer(config.explainer, **config.report.explainer_options), net, config.explainer)


def trainer_options(config: RunConfig, device: str) -> dict[str, Any]:
    """The trainer's options: the run's device and seed unless the trainer table sets them."""
    return {"device": device, "seed": config.seed, **config.trainer}


def environment(device: str) -> dict[str, Any]:
    """Versions, device and git commit: what someone needs to reproduce the run."""
    env: dict[str, Any] = {
        "ecgzoo": ecgzoo.__version__,
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
    from ecgzoo import distributed

    if config.nproc > 1 or int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return distributed.DistContext()
    return distributed.setup(device)


def _build_pipeline(config: RunConfig, data: ecgzoo.Dataset, dataset: str) -> Any:
    """The run's preprocessing, else the one the dataset declares."""
    from ecgzoo.pipeline import Pipeline

    return Pipeline(config.preprocessing) if config.preprocessing is not None else Pipeline.for_dataset(data, dataset)


def _fit(model: ecgzoo.EcgModel, trainer_name: str, trainer_opts: dict[str, Any],
         train: Any, val: Any, classes: list[str], checkpoint_dir: Path) -> list[dict[str, Any]]:
    """Create the trainer and fit; a module-level function so `--nproc` can spawn it (the model travels pickled)."""
    trainer = ecgzoo.create_trainer(trainer_name, **trainer_opts)
    return trainer.fit(model, train, val, classes, checkpoint_dir)


@torch.no_grad()
def predict_dataset(model: ecgzoo.EcgModel, dataset: torch.utils.data.Dataset, device: str, batch_size: int,
                    precision: str = "fp32") -> np.ndarray:
    """Class probabilities (N, classes) of every item of a `(signal, label, valid_length)` dataset.

    precision="bf16" runs the network under bfloat16 autocast (faster on CPUs with bf16 units; the
    probabilities move by about 1e-3, see BENCHMARKS.md); "fp32" is the exact path.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    model.eval()
    out = []
    for x, _, vl in loader:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x.to(device), valid_length=vl.to(device))
        out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.num_classes), dtype=np.float32)


def split_records(labels: np.ndarray, split: Any, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) record indices: the test split first (its own fixed seed), then validation from the rest."""
    from ecgzoo.splits import stratified_split

    if not split.test_fraction:
        train_idx, val_idx = stratified_split(labels, val_fraction=split.val_fraction, seed=seed)
        return train_idx, val_idx, np.zeros(0, dtype=np.int64)
    rest, test_idx = stratified_split(labels, val_fraction=split.test_fraction, seed=split.test_seed)
    train_in_rest, val_in_rest = stratified_split(labels[rest], val_fraction=split.val_fraction, seed=seed)
    return rest[train_in_rest], rest[val_in_rest], test_idx


def score_test_split(run_dir: Any, model: ecgzoo.EcgModel, prepared: Any, test_idx: np.ndarray, classes: list[str],
                     device: str, batch_size: int, scored: list[str] | None = None) -> dict[str, Any]:
    """Metrics of the chosen model on the test split, with a 95% bootstrap interval; writes predictions_test.csv."""
    from ecgzoo.csv_files import predictions_csv
    from ecgzoo.metrics import bootstrap_interval, classification_metrics

    probs = predict_dataset(model, prepared.torch_dataset(test_idx), device, batch_size)
    y_test = np.asarray(prepared.labels)[test_idx]
    y_pred = probs.argmax(1)
    metrics = classification_metrics(y_test, y_pred, classes, scored)
    lo, hi = bootstrap_interval(y_test, y_pred, classes, scored=scored)
    metrics.update(split="test", challenge_f1_ci95=[lo, hi], bootstrap_resamples=1000)
    ids = [str(prepared.record_ids[i]) for i in test_idx]
    run_dir.write("predictions_test.csv", predictions_csv(ids, y_test, probs, classes))
    return metrics


def run(model: str, dataset: str, config: RunConfig | None = None) -> Path:
    """Run the whole pipeline for `model` on `dataset`; return the finished run directory."""
    from ecgzoo.checkpoint import model_from_checkpoint, seed_everything
    from ecgzoo.csv_files import predictions_csv, skipped_csv
    from ecgzoo.metrics import classification_metrics
    from ecgzoo.prepared import prepare
    from ecgzoo.report import explanation_examples, write_evaluation_figures, write_report
    config = config or RunConfig()
    check_plugins(model, dataset, config)
    device = resolve_device(config.device)
    model_entry = get_registry().resolve(model, "model")
    data = ecgzoo.get_dataset(dataset, **config.dataset)  # missing data: a message saying where to put it, no folder made
    pipeline = _build_pipeline(config, data, dataset)
    ctx = _join_torchrun_group(device, config)
    name = config.name or default_run_name(model_entry.name, dataset)
    if ctx.enabled:  # under torchrun every rank runs this: all use rank 0's name, only rank 0 writes
        from ecgzoo.distributed import broadcast_bytes

        name = (broadcast_bytes(name.encode()) or b"").decode()
    run_dir = RunDir.create(config.output_dir, name) if ctx.is_main else RunDir(config.output_dir, name, writes=False)
    if ctx.is_main:
        _say(f"run directory: {run_dir.final}{'  (continuing an incomplete run)' if run_dir.resumed else ''}")
    t_start = time.perf_counter()
    try:
        run_dir.write_json("environment.json", environment(device))
        resolved = {"model_name": model_entry.name, "dataset_name": dataset,
                    "config": {**config.model_dump(mode="json"), "preprocessing": pipeline.config}}
        run_dir.write_json(CONFIG_FILE, resolved)

        _say(f"preparing {dataset} ({len(data)} records) through {len(pipeline.config)} preprocessing steps")
        prepared = prepare(data, pipeline, cache_dir=config.cache_dir, on_error=config.on_error, workers=config.workers)
        classes = list(prepared.classes)
        if prepared.skipped:
            run_dir.write("skipped.csv", skipped_csv(prepared.skipped))
        labels = np.asarray(prepared.labels)
        present = [c for i, c in enumerate(classes) if (labels == i).any()]
        if len(present) < 2:
            raise ValueError(f"dataset {dataset!r} has records of {len(present)} class(es) {present}; training needs at least 2")
        seed = config.split.seed if config.split.seed is not None else config.seed
        train_idx, val_idx, test_idx = split_records(labels, config.split, seed)
        record_ids = [str(r) for r in prepared.record_ids]
        run_dir.write_json("split.json", {
            "seed": seed, "val_fraction": config.split.val_fraction, "test_fraction": config.split.test_fraction,
            "test_seed": config.split.test_seed, "train": [record_ids[i] for i in train_idx],
            "val": [record_ids[i] for i in val_idx], "test": [record_ids[i] for i in test_idx],
        })
        in_leads, input_samples = int(prepared.signals.shape[1]), int(prepared.signals.shape[2])
        first_raw = data.load(record_ids[0])
        info = {
            "model": model_entry.name, "dataset": dataset, "classes": classes, "fs": float(prepared.fs),
            "input_fs": float(first_raw.fs), "input_samples": input_samples, "in_leads": in_leads,
            "pipeline": pipeline.config, "records": len(record_ids), "train_records": len(train_idx),
            "val_records": len(val_idx), "test_records": len(test_idx), "skipped": len(prepared.skipped),
            "class_counts": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
        }
        run_dir.write_json(RUN_FILE, info)

        model_options = {**config.model, "num_classes": len(classes), "in_leads": in_leads}
        train_ds, val_ds = prepared.torch_dataset(train_idx), prepared.torch_dataset(val_idx)
        topts = trainer_options(config, device)
        _say(f"training {model_entry.name} on {len(train_idx)} records, validating on {len(val_idx)} ({device})")
        seed_everything(config.seed)  # the same initial weights on every rank and every repetition
        net = ecgzoo.create_model(model_entry.name, **model_options)
        args = (net, config.trainer_plugin, topts, train_ds, val_ds, classes, run_dir.path("checkpoints"))
        if config.nproc > 1:
            from ecgzoo.distributed import launch

            history = launch(_fit, config.nproc, *args, device=device)
        else:
            history = _fit(*args)
        if not ctx.is_main:
            return run_dir.final
        run_dir.write_json("history.json", history)

        best = model_from_checkpoint(run_dir.path("checkpoints", "best.safetensors"), device=device)
        probs = predict_dataset(best, val_ds, device, config.eval_batch_size)
        y_val = labels[val_idx]
        metrics = classification_metrics(y_val, probs.argmax(1), classes, data.scored_classes)
        metrics["split"] = "validation"
        best_epoch = max((h for h in history if h.get("best")), key=lambda h: h["epoch"], default=None)
        metrics["best_epoch"] = best_epoch["epoch"] if best_epoch else None
        if len(test_idx):
            metrics["test"] = score_test_split(run_dir, best, prepared, test_idx, classes, device, config.eval_batch_size)
        run_dir.write_json(METRICS_FILE, metrics)
        val_ids = [record_ids[i] for i in val_idx]
        run_dir.write("predictions.csv", predictions_csv(val_ids, y_val, probs, classes))

        figures = write_evaluation_figures(run_dir.work, metrics, history)
        figures += explanation_examples(
            run_dir.work, best, prepared, val_idx, probs, classes, config.explainer,
            config.report.explainer_options, config.report.examples_per_class, device,
        )
        info["seconds"] = round(time.perf_counter() - t_start, 1)
        run_dir.write_json(RUN_FILE, info)
        write_report(run_dir.work, run_dir.final, info, resolved, metrics, history, figures)
    except BaseException as exc:
        run_dir.fail(exc)
        _say(f"run stopped; incomplete run left in {run_dir.work} (see {run_dir.work / 'FAILED.txt'})")
        raise
    final = run_dir.finish()
    _say(f"done in {time.perf_counter() - t_start:.0f} s: validation challenge F1 {metrics['challenge_f1']:.3f}, "
         f"accuracy {metrics['accuracy']:.3f}")
    if "test" in metrics:
        test = metrics["test"]
        lo, hi = test["challenge_f1_ci95"]
        _say(f"test split ({test['n']} records, never used for training or selection): challenge F1 {test['challenge_f1']:.3f} "
             f"(95% bootstrap interval {lo:.3f}-{hi:.3f}), accuracy {test['accuracy']:.3f}")
    _say(f"run directory: {final}")
    print(f"report: {final / 'report.md'}")
    return final

