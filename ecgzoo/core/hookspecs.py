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
