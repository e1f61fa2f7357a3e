"""Everything one `ecgzoo run` needs, validated before any work starts.

A run's options come from three layers, later ones winning: the preset (`paper`, the
paper's recipe, or `quick`, a few minutes on a laptop CPU), a TOML file (`--config run.toml`),
and `--set key=value` assignments. The merged options are validated here, including the
options of each named plugin, so a typo stops the run at once with the valid keys listed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic

from ecgzoo.core.config import ConfigError, deep_merge, validate_config
from ecgzoo.core.dataset import Dataset
from ecgzoo.core.plugin_spec import PluginConfig


class SplitConfig(PluginConfig):
    """How records are divided into training and validation sets."""

    val_fraction: float = pydantic.Field(0.3, gt=0, lt=1, description="fraction of records held out for validation (paper: 0.3)")
    seed: int | None = pydantic.Field(None, ge=0, description="seed of the stratified split (None: the run's seed)")
    test_fraction: float = pydantic.Field(
        0.0, ge=0, lt=1, description="fraction of all records set aside first as a test split, never trained on or used to pick "
        "the best epoch, scored once at the end (0: no test split); val_fraction then applies to the rest"
    )
    test_seed: int = pydantic.Field(
        0, ge=0, description="seed of the test split: fixed apart from the run's seed, so runs with other seeds share one test split"
    )


class ReportConfig(PluginConfig):
    """What the report shows besides the metrics."""

    examples_per_class: int = pydantic.Field(1, ge=0, description="explanation pictures per class in the report")
    explainer_options: dict[str, Any] = pydantic.Field(
        default_factory=dict, description="options of the report's explainer plugin"
    )


class RunConfig(PluginConfig):
    """Options of one run; plugin option tables are validated against the named plugins."""

    model: dict[str, Any] = pydantic.Field(default_factory=dict, description="options of the model plugin (`ecgzoo info MODEL`)")
    dataset: dict[str, Any] = pydantic.Field(default_factory=dict, description="options of the dataset plugin (`ecgzoo info DATASET`)")
    preprocessing: list[dict[str, Any]] | None = pydantic.Field(
        None, description="ordered preprocessing steps [{name = ..., options...}] (None: the dataset's own default)"
    )
    init: str | None = pydantic.Field(
        None, description="start from pretrained weights MODEL:TAG (ecgzoo list --pretrained) of the run's model: every tensor "
        "that fits is loaded; the head (other classes) and the stem's first convolution (other leads) start afresh"
    )
    split: SplitConfig = pydantic.Field(default_factory=SplitConfig, description="train/validation split")
    trainer_plugin: str = pydantic.Field("trainer", description="name of the trainer plugin")
    trainer: dict[str, Any] = pydantic.Field(default_factory=dict, description="options of the trainer plugin (`ecgzoo info trainer`)")
    explainer: str = pydantic.Field("cam", description="explainer plugin used for the report's examples")
    report: ReportConfig = pydantic.Field(default_factory=ReportConfig, description="report contents")
    device: Literal["auto", "cpu", "cuda"] = pydantic.Field("auto", description="auto: cuda when available, else cpu")
    seed: int = pydantic.Field(0, ge=0, description="seed of the split and the training")
    nproc: int = pydantic.Field(1, ge=1, description="data-parallel training processes on this machine (DistributedDataParallel)")
    output_dir: str = pydantic.Field("runs", description="folder that receives the run directory")
    name: str | None = pydantic.Field(
        None, description="run directory name (None: MODEL-DATASET-time); an incomplete run of that name is resumed"
    )
    cache_dir: str | None = pydantic.Field(
        None, description="folder for the preprocessed-signal cache (None: the data plugin's default)"
    )
    workers: int = pydantic.Field(1, ge=1, description="processes that preprocess records (the R-peak detector is the slow step)")
    on_error: Literal["raise", "skip"] = pydantic.Field(
        "raise", description="a bad record stops the run (raise) or is skipped and listed (skip)"
    )
    eval_batch_size: int = pydantic.Field(32, ge=1, description="records per batch when scoring and explaining")
    estimate: bool = pydantic.Field(
        True, description="before training, time a few steps and print the whole job's estimated time (ecgzoo.training.estimate)"
    )

    @pydantic.field_validator("preprocessing")
    @classmethod
    def _steps_are_named(cls, steps: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, step in enumerate(steps or []):
            if not isinstance(step.get("name"), str):
                raise ValueError(f"preprocessing step {i} needs a 'name' (a preprocessor plugin), got {step!r}")
        return steps


_NESTED = {"split": SplitConfig, "report": ReportConfig}


def _resolved(name: str, kind: str) -> str:
    """The plugin name `name` resolves to (an alias: its target); the name itself when unknown (the run's checks say so)."""
    from ecgzoo.core.registry import PluginError, get_registry

    try:
        return get_registry().resolve(name, kind).name
    except PluginError:
        return name


def preset_values(preset: str, model: str, dataset: str) -> dict[str, Any]:
    """Option values of a preset (declared in registry.toml) for this model and dataset.

    The preset's `model.NAME` and `dataset.NAME` tables apply when NAME is the plugin the given
    name resolves to, so `goodfellow-v7` (an alias of `cnnv7`) gets cnnv7's options. Its
    `preprocessing` is a list of steps for every dataset, or a table of such lists keyed by
    dataset plugin name: then a dataset it does not name keeps its own default preprocessing
    (`quick` shortens PhysioNet 2017's recipe, and leaves PTB-XL's z-scoring alone).
    """
    import copy

    from ecgzoo.core.registry import get_registry

    presets = get_registry().presets()
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; presets are {', '.join(presets) or '(none: registry.toml declares none)'}")
    values = copy.deepcopy(presets[preset])
    values.pop("summary", None)
    values.pop("use_with", None)  # which model and datasets the preset is meant for (ecgzoo.training.estimate.suggest)
    per_model, per_dataset = values.pop("model", {}), values.pop("dataset", {})
    chosen_model, chosen_dataset = per_model.get(_resolved(model, "model")), per_dataset.get(_resolved(dataset, "dataset"))
    if chosen_model:
        values["model"] = dict(chosen_model)
    if chosen_dataset:
        values["dataset"] = dict(chosen_dataset)
    if isinstance(values.get("preprocessing"), Mapping):
        steps = values.pop("preprocessing").get(_resolved(dataset, "dataset"))
        if steps is not None:
            values["preprocessing"] = steps
    return values


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML (or JSON, e.g. a run's own config.json) file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            import json

            data = json.loads(text)
            if "config" in data and "model_name" in data:  # a run's own config.json: same options, new name
                return {k: v for k, v in data["config"].items() if k != "name"}
            return dict(data)
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def validate_run_config(values: Mapping[str, Any]) -> RunConfig:
    """A RunConfig from merged option values; unknown keys (also in nested tables) list valid ones."""
    values = dict(values)
    for key, cls in _NESTED.items():
        if isinstance(values.get(key), Mapping):
            values[key] = validate_config(cls, values[key], f"run option table {key!r}")
    return validate_config(RunConfig, values, "run options")  # type: ignore[return-value]


def resolve_run_config(
    model: str,
    dataset: str,
    preset: str = "paper",
    config_file: str | Path | None = None,
    assignments: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Preset < config file < assignments, merged and validated."""
    values = preset_values(preset, model, dataset)
    if config_file is not None:
        values = deep_merge(values, read_config_file(config_file))
    if assignments:
        values = deep_merge(values, assignments)
    return validate_run_config(values)


def build_pipeline(config: RunConfig, data: Dataset, dataset: str) -> Any:
    """The run's preprocessing, else the one the dataset declares."""
    from ecgzoo.data.pipeline import Pipeline

    return Pipeline(config.preprocessing) if config.preprocessing is not None else Pipeline.for_dataset(data, dataset)
