"""The reference trainer's callbacks: its own levers built from its options, then those its `callbacks` option names.

Order (each hook calls them in this order): the learning-rate schedule, the weight average (when
`ema_decay`), early stopping, the callbacks of the `callbacks` option as listed, the resumable
state's saving, the progress display, Ctrl-C. The state is saved after every callback that may
change state has run, and its keys (the names below; a listed callback's name, `#2` on a repeat)
are those under which `last.safetensors` keeps each callback's `state_dict()`.
"""

from __future__ import annotations

import importlib

import ecgzoo
from ecgzoo_plugins.trainer_config import CallbackSpec, TrainerConfig
from ecgzoo_plugins.trainer_ema import WeightAveraging
from ecgzoo_plugins.trainer_last_state import LastState
from ecgzoo_plugins.trainer_progress import Progress
from ecgzoo_plugins.trainer_schedule import LrSchedule
from ecgzoo_plugins.trainer_stopping import EarlyStopping, StopOnCtrlC


def build_callbacks(cfg: TrainerConfig, task: ecgzoo.Task) -> dict[str, ecgzoo.Callback]:
    """Every callback of a fit with options `cfg` on `task`, by the key its state is saved under, in calling order."""
    callbacks: dict[str, ecgzoo.Callback] = {
        "lr-schedule": LrSchedule(cfg.lr_schedule, cfg.epochs, cfg.warmup_epochs, cfg.lr_step_size, cfg.lr_gamma),
    }
    if cfg.ema_decay:
        callbacks["weight-average"] = WeightAveraging(cfg.ema_decay)
    callbacks["early-stopping"] = EarlyStopping(cfg.patience, verbose=cfg.progress)
    for spec in cfg.callbacks:
        key, n = spec.name, 1
        while key in callbacks:
            n += 1
            key = f"{spec.name}#{n}"
        callbacks[key] = create_callback(spec)
    callbacks["last-state"] = LastState(cfg.save_every_batches)
    callbacks["progress"] = Progress(cfg.progress, f"val_{task.headline_metric}", cfg.patience is not None)
    callbacks["ctrl-c"] = StopOnCtrlC()
    return callbacks


def create_callback(spec: CallbackSpec) -> ecgzoo.Callback:
    """The callback `spec` names: a registered callback plugin (options validated by its config) or the class at
    import path package.module:Class (called with the options as keyword arguments)."""
    where = f"trainer option callbacks: {spec.name!r}"
    if ":" not in spec.name:
        try:
            callback = ecgzoo.create("callback", spec.name, **spec.options)
        except ecgzoo.PluginError as exc:
            raise ecgzoo.PluginError(f"trainer option callbacks: {exc} An import path package.module:Class works too.") from None
    else:
        module_name, _, attribute = spec.name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ecgzoo.ConfigError(f"{where}: module {module_name!r} cannot be imported ({exc})") from None
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise ecgzoo.ConfigError(f"{where}: module {module_name!r} has no class {attribute!r}")
        try:
            callback = factory(**spec.options)
        except TypeError as exc:
            raise ecgzoo.ConfigError(f"{where}: cannot be made with the options {spec.options} ({exc})") from None
    if not isinstance(callback, ecgzoo.Callback):
        raise ecgzoo.ConfigError(f"{where} gives a {type(callback).__name__}, not a subclass of ecgzoo.Callback")
    return callback
