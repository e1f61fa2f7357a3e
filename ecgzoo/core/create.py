"""Creating what plugins provide, by kind and name: the registry's functions that `ecgzoo` exports.

`ecgzoo.create`, `ecgzoo.get_dataset`, `ecgzoo.create_explainer`... are these functions; the modules
inside the package call them from here (never through the `ecgzoo` facade, see ARCHITECTURE.md).
A model from pretrained weights is `ecgzoo.models.create.create_model`.
"""

from __future__ import annotations

from typing import Any

from ecgzoo.core.dataset import Dataset
from ecgzoo.core.explainer import Explainer
from ecgzoo.core.preprocessor import Preprocessor
from ecgzoo.core.registry import get_registry
from ecgzoo.core.trainer import Trainer


def list_plugins(kind: str | None = None, pattern: str = "*") -> list[str]:
    """Names of usable plugins of `kind` (all kinds when None) matching a shell-style pattern."""
    return [e.name for e in get_registry().entries(kind, pattern)]


def list_models(pattern: str = "*") -> list[str]:
    """Model names matching a shell-style pattern, as in timm."""
    return list_plugins("model", pattern)


def create(kind: str, name: str, **config: Any) -> Any:
    """An instance of plugin `name` of `kind`, configured by validated keyword options."""
    return get_registry().create(kind, name, **config)


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
