"""The hooks through which every plugin, built-in or third-party, adds to ecgzoo.

A plugin is any module or object with functions marked `@ecgzoo.hookimpl` and named
after these specifications. Each hook returns a list of `PluginSpec`s, one per
named thing the plugin provides; the kind comes from the hook.
"""

from __future__ import annotations

from typing import Any

import pluggy

from ecgzoo.core.plugin_spec import PluginSpec

PROJECT = "ecgzoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ecgzoo_datasets() -> list[PluginSpec]:
    """Dataset plugins: factories returning an `ecgzoo.Dataset`."""


@hookspec
def ecgzoo_preprocessors() -> list[PluginSpec]:
    """Preprocessor plugins: factories returning an `ecgzoo.Preprocessor`."""


@hookspec
def ecgzoo_models() -> list[PluginSpec]:
    """Model plugins: factories returning an `ecgzoo.EcgModel`."""


@hookspec
def ecgzoo_trainers() -> list[PluginSpec]:
    """Trainer plugins: factories returning an `ecgzoo.Trainer`."""


@hookspec
def ecgzoo_explainers() -> list[PluginSpec]:
    """Explainer plugins: factories returning an `ecgzoo.Explainer`."""


@hookspec
def ecgzoo_callbacks() -> list[PluginSpec]:
    """Training-loop callbacks: factories returning an `ecgzoo.Callback` (see `ecgzoo.core.callback`), which the
    reference trainer adds when its `callbacks` option names them."""


#: plugin kind -> name of the hook that provides it
KIND_HOOKS: dict[str, str] = {
    "dataset": "ecgzoo_datasets",
    "preprocessor": "ecgzoo_preprocessors",
    "model": "ecgzoo_models",
    "trainer": "ecgzoo_trainers",
    "explainer": "ecgzoo_explainers",
    "callback": "ecgzoo_callbacks",
}


@hookspec
def ecgzoo_pretrained() -> list[Any]:
    """Pretrained weights: a list of `ecgzoo.core.manifest.PretrainedManifest` (or paths of `*.manifest.json` files).

    Called by `ecgzoo.models.pretrained.manifests()` whenever a pretrained name (`MODEL:TAG`) is looked up
    or listed (`ecgzoo list --pretrained`, `create_model(..., pretrained=TAG)`, `predict MODEL:TAG ...`).
    The plugin guarantees that each manifest's `file` sits beside the manifest (shipped in its
    package) or that its `url` serves the file whose SHA-256 and size the manifest states; ecgzoo
    verifies both before loading, so a wrong manifest gives an error, never a wrong model.
    """


@hookspec
def ecgzoo_task_scores(task: Any, targets: Any, probabilities: Any, decisions: Any) -> dict[str, tuple[str, float | None]] | None:
    """Extra scores of a dataset's own (a challenge's metric) beside ecgzoo's metrics of one set of predictions.

    Called by `ecgzoo.evaluation.extra_scores.extra_scores` each time a run's or an evaluation's
    multi-label metrics are computed (`ecgzoo.evaluation.metrics.multilabel_metrics`: validation, the test split, `ecgzoo
    evaluate`), once per implementation, with the `ecgzoo.Task`, the encoded targets (N, K) 0/1,
    the probabilities (N, K) and the decisions (N, K) booleans at the stored thresholds.
    Returns {metric key: (its name in prose, value or None where undefined)} for a task the plugin
    recognises (by its classes), else None; the values land in metrics.json beside ecgzoo's own,
    which they may not replace (a clash is an error naming the key), the names under
    `extra_score_names`, and the report's headline shows each. Example: the CinC 2021 dataset
    plugin returns `{"challenge_score_2021": ("CinC 2021 challenge score", ...)}` when the
    classes are the challenge's SNOMED CT codes.
    """
