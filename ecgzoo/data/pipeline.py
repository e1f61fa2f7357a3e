"""An ordered list of preprocessors declared in config, applied record by record.

The pipeline's `config` (plugin names plus every resolved option) is what a run records, so
the same preprocessing can be rebuilt for prediction and evaluation: `Pipeline(run_config)`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ecgzoo.core.config import ConfigError
from ecgzoo.core.create import create_preprocessor
from ecgzoo.core.preprocessor import Preprocessor
from ecgzoo.core.record import Record


class Pipeline:
    """Preprocessors applied in order; each step's `requires` is checked before it runs."""

    def __init__(self, steps: Sequence[Mapping[str, Any]] | None = None):
        self.steps: list[tuple[str, Preprocessor]] = []
        for i, step in enumerate(steps or []):
            if not isinstance(step, Mapping) or not isinstance(step.get("name"), str):
                raise ConfigError(f"preprocessing step {i}: expected a table with a 'name' (a preprocessor plugin), got {step!r}")
            options = {k: v for k, v in step.items() if k != "name"}
            self.steps.append((step["name"], create_preprocessor(step["name"], **options)))

    @classmethod
    def for_dataset(cls, dataset: Any, name: str = "") -> Pipeline:
        """The preprocessing the dataset declares (`Dataset.default_preprocessing`); a ConfigError
        naming the dataset when it declares none."""
        steps = getattr(dataset, "default_preprocessing", None)
        if steps is None:
            raise ConfigError(f"dataset {name or type(dataset).__name__!r} declares no default preprocessing; "
                              "give the steps with `preprocessing = [...]` (--set or --config)")
        return cls(copy.deepcopy([dict(s) for s in steps]))

    @property
    def config(self) -> list[dict[str, Any]]:
        """JSON-able steps with every option resolved (recorded with runs; `Pipeline(config)` rebuilds it)."""
        out = []
        for name, step in self.steps:
            cfg = getattr(step, "config", None)
            out.append({"name": name, **(cfg.model_dump(mode="json") if cfg is not None else {})})
        return out

    def output_fs(self, fs: float) -> float:
        """Sampling rate after every step for input at `fs`."""
        for _, step in self.steps:
            fs = step.output_fs(fs)
        return fs

    def __call__(self, record: Record) -> Record:
        for name, step in self.steps:
            step.requires.check(record, f"preprocessor {name!r}")
            record = step(record)
        return record

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return "Pipeline(" + " -> ".join(name for name, _ in self.steps) + ")"
