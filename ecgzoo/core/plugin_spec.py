"""What a plugin declares about one thing it provides."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pydantic


@dataclasses.dataclass(frozen=True)
class PluginSpec:
    """One named dataset, preprocessor, model, trainer or explainer.

    name:     the name users type (`create_model("cnnv7")`, `ecgzoo run cnnv7 ...`).
    factory:  called with the validated config object; returns the instance.
    config:   pydantic model of the options; every field needs a default and a
              description (shown by `ecgzoo info`).
    summary:  one line for `ecgzoo list`.
    aliases:  other names that resolve to this one.
    defaults: option values that override the config class's defaults (variants
              such as `cnnv7-small` share a factory and differ only here).
    facts:    optional callable(config) -> {fact: value} for `ecgzoo info`
              (e.g. a model's parameter count and receptive field).
    """

    name: str
    factory: Callable[[Any], Any]
    config: type[pydantic.BaseModel]
    summary: str = ""
    aliases: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    facts: Callable[[Any], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip() or " " in self.name:
            raise ValueError(f"plugin name {self.name!r} must be a non-empty word without spaces")
        if not (isinstance(self.config, type) and issubclass(self.config, pydantic.BaseModel)):
            raise TypeError(f"plugin {self.name!r}: config must be a pydantic.BaseModel subclass, got {self.config!r}")
        object.__setattr__(self, "aliases", tuple(self.aliases))


class PluginConfig(pydantic.BaseModel):
    """Base for plugin configs: unknown options are errors, values are re-validated on assignment."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ModelConfig(PluginConfig):
    """Base of every model config: the run pipeline sets the class and lead counts from the data."""

    num_classes: int = pydantic.Field(4, ge=2, description="number of output classes (set from the dataset by `ecgzoo run`)")
    in_leads: int = pydantic.Field(1, ge=1, description="number of input leads (channels)")
    init_weights: str | None = pydantic.Field(
        None, description="where the weights started: 'MODEL:TAG sha256:HEX' of the pretrained weights they were adapted "
        "from (set by create_model(NAME, pretrained=TAG, num_classes=...) and `ecgzoo run --init`; a record, it changes nothing)")
