"""ecgzoo: a plugin-based model zoo for ECG deep learning, with explanations.

    import ecgzoo
    ecgzoo.list_models("cnnv7*")
    model = ecgzoo.create_model("cnnv7", num_classes=4)
    data = ecgzoo.get_dataset("synthetic", records=100)
    run_dir = ecgzoo.run("cnnv7", "synthetic", preset="quick", trainer={"epochs": 2})   # `ecgzoo run`, here
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecgzoo._infra.version import __version__ as __version__
from ecgzoo.core.callback import Callback, TrainBatch, TrainingLoop
from ecgzoo.core.config import ConfigError
from ecgzoo.core.create import (
    create,
    create_explainer,
    create_preprocessor,
    create_trainer,
    get_dataset,
    list_models,
    list_plugins,
    plugin_info,
    register_plugin,
    unregister_plugin,
)
from ecgzoo.core.dataset import Dataset
from ecgzoo.core.explainer import Explainer
from ecgzoo.core.hookspecs import hookimpl
from ecgzoo.core.model import EcgModel
from ecgzoo.core.plugin_spec import ModelConfig, PluginConfig, PluginSpec
from ecgzoo.core.preprocessor import Preprocessor, Requirements
from ecgzoo.core.record import Record, RecordError
from ecgzoo.core.registry import KINDS, PluginError, reset_registry
from ecgzoo.core.registry import get_registry as get_registry  # public (ecgzoo.get_registry()) as before, though not in __all__
from ecgzoo.core.tasks import Task
from ecgzoo.core.trainer import EpochRecord, FitContext, FitResult, Trainer, TrainingTask
from ecgzoo.models.create import create_model, list_pretrained

__all__ = [
    "KINDS", "Callback", "TrainBatch", "TrainingLoop",
    "ConfigError", "Dataset", "EcgModel", "Explainer", "ModelConfig", "PluginConfig", "PluginError", "PluginSpec",
    "Preprocessor", "Record", "RecordError", "Requirements", "Trainer", "TrainingTask", "Task", "FitContext", "FitResult", "EpochRecord",
    "create", "create_explainer",
    "create_model", "create_preprocessor", "create_trainer", "get_dataset", "hookimpl", "list_models", "list_pretrained",
    "list_plugins", "plugin_info", "register_plugin", "reset_registry", "run", "unregister_plugin",
]


def run(model: str, dataset: str, /, preset: str = "paper", config_file: str | Path | None = None, **options: Any) -> Path:
    """Train, evaluate, explain and report as `ecgzoo run MODEL DATASET` does, in this process; returns the
    finished run directory (`ecgzoo.serving.loaded_run.load_run(path)` loads it to predict with).

    Because it runs here, it sees the plugins registered here with `register_plugin` (a notebook's
    or a script's), which a separate `ecgzoo run` process cannot. `preset` and `config_file` are
    `--preset` and `--config`; `options` are the keys of `--set` as keyword arguments, a table as a
    dict merged into the preset's (`trainer={"epochs": 2}` is `--set trainer.epochs=2`), e.g.
    `ecgzoo.run("tinynet", "synthetic", preset="quick", trainer={"epochs": 2}, name="my-run")` (`model=` and
    `dataset=` are the plugins' option tables: the names come first, by position).
    An interrupted run is continued by the same call with `name=` the run's name (printed, and in
    its FAILED.txt).
    """
    from ecgzoo.training.run_config import resolve_run_config
    from ecgzoo.training.runner import run as run_pipeline

    config = resolve_run_config(model, dataset, preset, config_file, options)
    head = [repr(model), repr(dataset)] + ([f"preset={preset!r}"] if preset != "paper" else [])
    head += [f"config_file={str(config_file)!r}"] if config_file is not None else []
    head += [f"{key}={value!r}" for key, value in options.items() if key != "name"]
    return run_pipeline(model, dataset, config, resume=lambda name: f"ecgzoo.run({', '.join([*head, f'name={name!r}'])})")
