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

from ecgzoo.callback import Callback, TrainBatch, TrainingLoop
from ecgzoo.config import ConfigError
from ecgzoo.dataset import Dataset
from ecgzoo.explainer import Explainer
from ecgzoo.hookspecs import hookimpl
from ecgzoo.model import EcgModel
from ecgzoo.plugin_spec import ModelConfig, PluginConfig, PluginSpec
from ecgzoo.preprocessor import Preprocessor, Requirements
from ecgzoo.record import Record, RecordError
from ecgzoo.registry import KINDS, PluginError, get_registry, reset_registry
from ecgzoo.tasks import Task
from ecgzoo.trainer import EpochRecord, FitContext, FitResult, Trainer, TrainingTask

__version__ = "0.1.0"

__all__ = [
    "KINDS", "Callback", "TrainBatch", "TrainingLoop",
    "ConfigError", "Dataset", "EcgModel", "Explainer", "ModelConfig", "PluginConfig", "PluginError", "PluginSpec",
    "Preprocessor", "Record", "RecordError", "Requirements", "Trainer", "TrainingTask", "Task", "FitContext", "FitResult", "EpochRecord",
    "create", "create_explainer",
    "create_model", "create_preprocessor", "create_trainer", "get_dataset", "hookimpl", "list_models", "list_pretrained",
    "list_plugins", "plugin_info", "register_plugin", "reset_registry", "run", "unregister_plugin",
]


def list_plugins(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Names of usable plugins of `kind` (all kinds when None) matching a shell-style pattern."""
    return [e.name for e in get_registry().entries(kind, pattern)]


def list_models(pattern: str = "*") -> list[str]:
    """Model names matching a shell-style pattern, as in timm."""
    return list_plugins("model", pattern)


def create(kind: str, name: str, **config: Any) -> Any:
    """An instance of plugin `name` of `kind`, configured by validated keyword options."""
    return get_registry().create(kind, name, **config)


def create_model(name: str, pretrained: str | None = None, **config: Any) -> EcgModel:
    """A model by plugin name; `pretrained="TAG"` (or a name `MODEL:TAG`) loads shipped weights, verified, in eval mode.

    With pretrained weights the architecture options are the weights' own. `num_classes` and/or `in_leads`
    fine-tune: every tensor whose shape fits is loaded, the head (other classes) and the stem's first
    convolution (other leads) are initialised afresh, and `model.init_summary` lists what was loaded and
    replaced (`ecgzoo.finetune`). Other options are an error.
    """
    model_name, _, tag = name.partition(":")
    tag = pretrained or tag
    if not tag:
        return create("model", name, **config)
    from ecgzoo.pretrained import PretrainedError, load_pretrained_model

    counts = {k: config.pop(k) for k in ("num_classes", "in_leads") if k in config}
    if config:
        raise PretrainedError(f"create_model({name!r}, pretrained={tag!r}) takes the weights' own options; got {sorted(config)}")
    if counts:
        from ecgzoo.finetune import adapt_pretrained

        return adapt_pretrained(model_name, tag, **counts)
    return load_pretrained_model(model_name, tag)


def list_pretrained(pattern: str = "*") -> list[str]:
    """`MODEL:TAG` names of the installed pretrained weights matching a shell-style pattern."""
    from ecgzoo.pretrained import list_pretrained as _list

    return _list(pattern)


def get_dataset(name: str, **config: Any) -> Dataset:
    return create("dataset", name, **config)


def create_preprocessor(name: str, **config: Any) -> Preprocessor:
    return create("preprocessor", name, **config)


def create_trainer(name: str = "trainer", **config: Any) -> Trainer:
    return create("trainer", name, **config)


def create_explainer(name: str, **config: Any) -> Explainer:
    return create("explainer", name, **config)


def plugin_info(name: str, kind: str | None = None) -> dict[str, Any]:
    """Source, summary, options (type, default, doc) and facts of one plugin."""
    return get_registry().info(name, kind)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a module/object with `@ecgzoo.hookimpl` functions from code; returns its name."""
    return get_registry().register(plugin, name)


def unregister_plugin(name: str) -> None:
    get_registry().unregister(name)


def run(model: str, dataset: str, /, preset: str = "paper", config_file: str | Path | None = None, **options: Any) -> Path:
    """Train, evaluate, explain and report as `ecgzoo run MODEL DATASET` does, in this process; returns the
    finished run directory (`ecgzoo.run_dir.load_run(path)` loads it to predict with).

    Because it runs here, it sees the plugins registered here with `register_plugin` (a notebook's
    or a script's), which a separate `ecgzoo run` process cannot. `preset` and `config_file` are
    `--preset` and `--config`; `options` are the keys of `--set` as keyword arguments, a table as a
    dict merged into the preset's (`trainer={"epochs": 2}` is `--set trainer.epochs=2`), e.g.
    `ecgzoo.run("tinynet", "synthetic", preset="quick", trainer={"epochs": 2}, name="my-run")` (`model=` and
    `dataset=` are the plugins' option tables: the names come first, by position).
    An interrupted run is continued by the same call with `name=` the run's name (printed, and in
    its FAILED.txt).
    """
    from ecgzoo.run_config import resolve_run_config
    from ecgzoo.runner import run as run_pipeline

    config = resolve_run_config(model, dataset, preset, config_file, options)
    head = [repr(model), repr(dataset)] + ([f"preset={preset!r}"] if preset != "paper" else [])
    head += [f"config_file={str(config_file)!r}"] if config_file is not None else []
    head += [f"{key}={value!r}" for key, value in options.items() if key != "name"]
    return run_pipeline(model, dataset, config, resume=lambda name: f"ecgzoo.run({', '.join([*head, f'name={name!r}'])})")
