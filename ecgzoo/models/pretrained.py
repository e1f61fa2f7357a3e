"""Pretrained weights: manifests, integrity, loading by `NAME:TAG`.

A plugin declares weights with the `ecgzoo_pretrained` hook: one `PretrainedManifest` per
(model, tag), saying which file (inside the plugin's package) or which URL holds them, their
SHA-256 and size, the input contract a recording must meet, the classes, the licenses, the command
that trained them and the test figures. ecgzoo's own weights ship inside the package
(`ecgzoo_plugins.weights`); a third party may point at a URL instead, which is downloaded once into
the user cache (`$ECGZOO_WEIGHTS` or `~/.cache/ecgzoo/weights`), verified and written atomically.

Every load verifies the file's size and SHA-256 against the manifest before a byte of it is
parsed: a damaged or substituted file is an error naming the file, never a wrong prediction.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

from ecgzoo.core.manifest import PretrainedError, PretrainedManifest


def manifests() -> dict[str, PretrainedManifest]:
    """Every manifest the registered plugins declare, by `MODEL:TAG` (aliases resolved to the model's name)."""
    from ecgzoo.core.registry import get_registry

    registry = get_registry()
    found: dict[str, PretrainedManifest] = {}
    for manifest in registry.pretrained():
        try:
            model = registry.resolve(manifest.model, "model").name
        except Exception:  # a manifest for a model that is not installed is not usable
            continue
        manifest = manifest.model_copy(update={"model": model})
        if manifest.name in found:
            raise PretrainedError(
                f"pretrained weights {manifest.name} are declared twice ({found[manifest.name].folder}, {manifest.folder})")
        found[manifest.name] = manifest
    return found


def list_pretrained(pattern: str = "*") -> list[str]:
    """`MODEL:TAG` names of the pretrained weights matching a shell-style pattern."""
    return sorted(n for n in manifests() if fnmatch.fnmatchcase(n, pattern))


def is_pretrained_name(text: str) -> bool:
    return ":" in str(text) and not Path(text).exists()


def find_manifest(name: str, tag: str | None = None) -> PretrainedManifest:
    """The manifest of `MODEL:TAG` (or `name` plus `tag`); model aliases are accepted."""
    from ecgzoo.core.registry import PluginError, get_registry

    model, _, tag_in_name = name.partition(":")
    tag = tag or tag_in_name
    try:
        model = get_registry().resolve(model, "model").name
    except PluginError as exc:
        raise PretrainedError(f"pretrained {name!r}: {exc}") from None
    known = manifests()
    key = f"{model}:{tag}"
    if key not in known:
        have = sorted(known) or ["(none installed)"]
        raise PretrainedError(f"no pretrained weights {key!r}; available: {', '.join(have)}")
    return known[key]


def verify_file(path: Path, manifest: PretrainedManifest) -> Path:
    """`path` when its size and SHA-256 are the manifest's; else an error saying the file is damaged."""
    if not path.is_file():
        raise PretrainedError(f"weights file {path} of {manifest.name} is missing")
    size = path.stat().st_size
    if size != manifest.size:
        raise PretrainedError(f"weights file {path} of {manifest.name} is damaged: {size} bytes, the manifest says {manifest.size}")
    from ecgzoo._infra.download import sha256_of

    got = sha256_of(path)
    if got != manifest.sha256:
        raise PretrainedError(f"weights file {path} of {manifest.name} is damaged: SHA-256 {got}, the manifest says {manifest.sha256}")
    return path


def weights_cache_dir() -> Path:
    return Path(os.environ.get("ECGZOO_WEIGHTS") or Path.home() / ".cache" / "ecgzoo" / "weights")


def weights_path(manifest: PretrainedManifest, progress: bool = True) -> Path:
    """The verified local weights file: the shipped one, or the cached download (fetched once)."""
    if manifest.file is not None:
        return verify_file(Path(manifest.folder or ".") / manifest.file, manifest)
    from ecgzoo._infra.download import DownloadError, download_file

    dest = weights_cache_dir() / f"{manifest.model}.{manifest.tag}.{manifest.sha256[:12]}.safetensors"
    if not dest.is_file():
        try:
            download_file(manifest.url, dest, sha256=manifest.sha256, progress=progress)
        except DownloadError as exc:
            raise PretrainedError(
                f"weights of {manifest.name} are not here and could not be downloaded ({exc}); put the file from "
                f"{manifest.url} (SHA-256 {manifest.sha256}) at {dest}"
            ) from None
    return verify_file(dest, manifest)


def load_pretrained_model(name: str, tag: str | None = None, device: str = "cpu") -> Any:
    """The model of `MODEL:TAG` with its verified weights, in eval mode."""
    return _model_of(find_manifest(name, tag), device)


def _model_of(manifest: PretrainedManifest, device: str) -> Any:
    from ecgzoo.models.checkpoint import model_from_checkpoint

    return model_from_checkpoint(weights_path(manifest), device=device)


def splits_of(manifest: PretrainedManifest) -> dict[str, Any]:
    """The record lists the weights were trained, selected and tested on ({} when not shipped)."""
    if not manifest.splits_file:
        return {}
    return json.loads((Path(manifest.folder or ".") / manifest.splits_file).read_text(encoding="utf-8"))


