"""ecgzoo's own pretrained weights, shipped inside the package: one `*.manifest.json` manifest per set of
weights beside its `.safetensors` file and model card (`*.md`), declared through the same
`ecgzoo_pretrained` hook a third party uses."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import ecgzoo


@ecgzoo.hookimpl
def ecgzoo_pretrained() -> list[Path]:
    folder = resources.files(__name__)
    return sorted(Path(str(item)) for item in folder.iterdir() if item.name.endswith(".manifest.json"))
