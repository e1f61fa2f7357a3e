"""Fine-tuning: a model built from pretrained weights for other classes and leads.

`adapt_pretrained("cnnv7-s8:physionet2017", num_classes=3, in_leads=12)` verifies the weights file
against its manifest (size and SHA-256, as every pretrained load does), builds the weights' own
architecture with the new class and lead counts, loads every tensor whose shape fits and keeps the
fresh initialisation (drawn from torch's generator as `create_model` draws it) of the rest:

* the tensors that depend on the number of classes (the head), when the class count differs or
  the caller's class names are not the weights' (same count, other meaning);
* the tensors that take the input leads (the stem's first convolution), when the lead count differs.

Which tensors depend on which count is found by building the architecture on the meta device with
one more class / one more lead and comparing shapes, so every model family works without
model-specific code. Model options that change the shape of any other tensor are refused: those
weights would not be the pretrained ones. The model comes back in eval mode, with the summary as
`model.init_summary` and `model.config.init_weights` saying where its weights came from.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ecgzoo.core.manifest import PretrainedError, PretrainedManifest
from ecgzoo.core.model import EcgModel
from ecgzoo.models.pretrained import find_manifest, weights_path


@dataclasses.dataclass(frozen=True)
class InitSummary:
    """Which tensors of a model came from pretrained weights and which were initialised afresh (and why)."""

    weights: str  #: MODEL:TAG
    sha256: str  #: of the weights file, verified before loading
    loaded: tuple[str, ...]  #: state-dict keys copied unchanged from the weights
    replaced: dict[str, str]  #: state-dict key -> why it was initialised afresh

    @property
    def origin(self) -> str:
        return f"{self.weights} sha256:{self.sha256}"

    def line(self) -> str:
        """One line for the CLI: the weights, how many tensors were loaded, which were replaced and why."""
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.replaced.items():
            by_reason.setdefault(reason, []).append(key)
        parts = [f"{', '.join(keys)} ({reason})" for reason, keys in by_reason.items()]
        replaced = f"replaced {'; '.join(parts)}" if parts else "replaced none"
        return f"initial weights {self.weights} (sha256 {self.sha256[:12]}): loaded {len(self.loaded)} tensors, {replaced}"

    def to_json(self) -> dict[str, Any]:
        """What run.json records: the weights' name and SHA-256, the loaded count, the replaced tensors."""
        return {"weights": self.weights, "sha256": self.sha256, "loaded_tensors": len(self.loaded), "replaced": dict(self.replaced)}


def _shapes(model_name: str, options: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """State-dict shapes of the architecture with these options, built on the meta device (no memory, no RNG)."""
    from ecgzoo.core.registry import get_registry

    with torch.device("meta"):
        net = get_registry().create("model", model_name, **options)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _dependent(model_name: str, options: dict[str, Any], key: str) -> set[str]:
    """Tensors whose shape changes with option `key` (num_classes or in_leads)."""
    base = _shapes(model_name, options)
    other = _shapes(model_name, {**options, key: options[key] + 1})
    return {k for k, shape in base.items() if other.get(k) != shape}


def _reasons(manifest: PretrainedManifest, old: dict[str, Any], new: dict[str, Any], classes: list[str] | None) -> dict[str, str]:
    """{'num_classes' / 'in_leads': why the tensors depending on it are replaced}, for what changed."""
    out = {}
    if new["num_classes"] != old["num_classes"]:
        out["num_classes"] = f"classes {old['num_classes']} -> {new['num_classes']}"
    elif classes is not None and list(classes) != list(manifest.classes):
        out["num_classes"] = f"classes {','.join(manifest.classes)} -> {','.join(classes)}"
    if new["in_leads"] != old["in_leads"]:
        out["in_leads"] = f"leads {old['in_leads']} -> {new['in_leads']}"
    return out


def _beyond(manifest: PretrainedManifest, options: dict[str, Any], keys: list[str]) -> PretrainedError:
    listed = ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")
    return PretrainedError(
        f"pretrained {manifest.name}: model options {', '.join(f'{k}={v!r}' for k, v in options.items()) or '(none)'} "
        f"change the network beyond the head and the stem (tensors {listed} do not fit); leave out the options that change its size")


def check_options(manifest: PretrainedManifest, state: dict[str, torch.Tensor], model_config: dict[str, Any],
                  options: dict[str, Any]) -> None:
    """Refuse, before any work, model `options` that change a tensor's shape at the weights' own class and lead counts."""
    shapes = _shapes(manifest.model, {**model_config, **options})
    bad = sorted(k for k in set(shapes) | set(state) if k not in shapes or k not in state or shapes[k] != tuple(state[k].shape))
    if bad:
        raise _beyond(manifest, options, bad)


def _merge(manifest: PretrainedManifest, state: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor],
           replace: dict[str, str], options: dict[str, Any]) -> tuple[dict[str, torch.Tensor], InitSummary]:
    """The fresh state with every pretrained tensor that is not to be replaced; an error for one that does not fit."""
    misfit = sorted(k for k in fresh if k not in replace and (k not in state or state[k].shape != fresh[k].shape))
    unused = sorted(k for k in state if k not in fresh)
    if misfit or unused:
        raise _beyond(manifest, options, misfit + unused)
    merged = {k: (v if k in replace else state[k]) for k, v in fresh.items()}
    loaded = tuple(k for k in fresh if k not in replace)
    return merged, InitSummary(manifest.name, manifest.sha256, loaded, dict(replace))


def adapt_pretrained(name: str, tag: str | None = None, num_classes: int | None = None, in_leads: int | None = None,
                     classes: list[str] | None = None, device: str = "cpu", **options: Any) -> EcgModel:
    """The pretrained `MODEL:TAG` (or `name` plus `tag`) adapted to `num_classes` and `in_leads` (None: the weights' own).

    `classes`, when given, are the new class names in output order: the head is also replaced when they
    are not the weights' classes. `options` override other model options that keep every tensor's shape
    (e.g. dropout); one that changes a shape is an error naming the tensors. Same counts and no options:
    every tensor is the pretrained one. Eval mode; `model.init_summary` says what was loaded and replaced.
    """
    from ecgzoo.core.registry import get_registry
    from ecgzoo.models.checkpoint import load_checkpoint

    manifest = find_manifest(name, tag)
    state, meta = load_checkpoint(weights_path(manifest))  # size and SHA-256 checked against the manifest first
    old = {**meta["model_config"]}
    if classes is not None and num_classes is not None and len(classes) != num_classes:
        raise PretrainedError(f"{len(classes)} class names given for num_classes={num_classes}")
    new = {**old, **options, "num_classes": num_classes or (len(classes) if classes else old["num_classes"]),
           "in_leads": in_leads or old["in_leads"]}
    why = _reasons(manifest, old, new, classes)
    replace = {k: reason for key, reason in why.items() for k in _dependent(manifest.model, new, key)}
    model = get_registry().create("model", manifest.model, **new)
    merged, summary = _merge(manifest, state, model.state_dict(), replace, options)
    model.load_state_dict(merged, strict=True)
    config = getattr(model, "config", None)
    if config is not None and "init_weights" in type(config).model_fields:
        config.init_weights = summary.origin
    model.init_summary = summary
    return model.to(device).eval()
