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

from ecgzoo.config import ConfigError, deep_merge, validate_config
from ecgzoo.plugin_spec import PluginConfig

PRESETS = ("paper", "quick", "cpu")


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

    @pydantic.field_validator("preprocessing")
    @classmethod
    def _steps_are_named(cls, steps: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, step in enumerate(steps or []):
            if not isinstance(step.get("name"), str):
                raise ValueError(f"preprocessing step {i} needs a 'name' (a preprocessor plugin), got {step!r}")
        return steps


_NESTED = {"split": SplitConfig, "report": ReportConfig}


def _quick_values(model: str, dataset: str) -> dict[str, Any]:
    """The quick preset: a narrow model, 10-s crops, few epochs; minutes on 2 CPU cores."""
    values: dict[str, Any] = {
        "preprocessing": [
            {"name": "bandpass"},
            {"name": "rpeaks"},
            {"name": "rpeak-normalize"},
            {"name": "pad-crop", "seconds": 10.0},
        ],
        "trainer": {"epochs": 6, "batch_size": 16, "lr": 2e-3},
        "report": {"examples_per_class": 1},
    }
    values["model"] = dict(QUICK_MODEL_OPTIONS.get(model, {}))
    values["dataset"] = dict(QUICK_DATASET_OPTIONS.get(dataset, {}))
    return values


#: model options of the quick preset, per model (others: their own defaults): the same
#: architectures at an eighth of the width (cnnv7 as `cnnv7-small`)
QUICK_MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "cnnv7": {"filters": 16, "conv_a": 32, "conv_b": 64},
    "deepecg13": {
        "layers": [[40, 24, 1], [32, 16, 2], [32, 16, 4], [32, 16, 4], [32, 16, 4], [16, 8, 4], [16, 8, 6],
                   [16, 8, 6], [16, 8, 6], [16, 8, 6], [16, 8, 8], [8, 8, 8], [8, 8, 8]],
    },
}
#: dataset options of the quick preset, per dataset (others: their own defaults)
QUICK_DATASET_OPTIONS: dict[str, dict[str, Any]] = {}


def cpu_values() -> dict[str, Any]:
    """The cpu preset: the recipe that trains the shipped PhysioNet 2017 weights on a 2-core CPU within an hour.

    The paper's preprocessing and 60-s inputs; a fixed stratified 15% test split (seed 0) and 12%
    of the rest for validation; bf16 autocast; 30-s random crops with amplitude, polarity and noise
    augmentation; AdamW with warm-up and per-batch cosine decay; label smoothing; square-root class
    weights; an exponential average of the weights. Meant for the CPU-sized variants (`cnnv7-s8`):
    the model's options are not changed, so `cnnv7` stays the paper's full-size network.
    """
    return {
        "split": {"val_fraction": 0.12, "test_fraction": 0.15, "test_seed": 0},
        "trainer": dict(CPU_TRAINER_OPTIONS),
        "report": {"examples_per_class": 1},
        "workers": 2,
    }


#: trainer options of the cpu preset (samples are at the paper pipeline's 300 Hz)
CPU_TRAINER_OPTIONS: dict[str, Any] = {
    "epochs": 30, "batch_size": 32, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-2,
    "lr_schedule": "warmup-cosine", "warmup_epochs": 0.5, "label_smoothing": 0.1,
    "class_weighting": "sqrt-inverse-frequency", "ema_decay": 0.998, "precision": "bf16",
    "crop_samples": 9000, "augment_scale": [0.7, 1.3], "augment_flip": True, "augment_noise": 0.02,
    "eval_batch_size": 32,
}


def preset_values(preset: str, model: str, dataset: str) -> dict[str, Any]:
    """Option values of a preset for this model and dataset."""
    if preset == "paper":
        return {}
    if preset == "quick":
        return _quick_values(model, dataset)
    if preset == "cpu":
        return cpu_values()
    raise ConfigError(f"unknown preset {preset!r}; presets are {', '.join(PRESETS)}")


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
