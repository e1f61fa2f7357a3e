"""Code blocks of the README and the docs pages that the tests run: the block after `<!-- MARKER -->`."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def doc_block(marker: str, lang: str = "python") -> tuple[str, str]:
    """(code, file name) of the ```lang block after `<!-- marker -->` in README.md or a docs page; each marker is used once."""
    found = []
    for page in PAGES:
        match = re.search(rf"<!-- {re.escape(marker)} -->\s*```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        if match:
            found.append((match.group(1), str(page.relative_to(REPO))))
    assert found, f"no ```{lang} block after <!-- {marker} --> in README.md or docs/*.md"
    assert len(found) == 1, f"<!-- {marker} --> is used in {[f for _, f in found]}: once only"
    return found[0]


def run_block(marker: str, namespace: dict | None = None) -> dict:
    """Execute the block in `namespace` (a fresh one by default) and return it."""
    code, filename = doc_block(marker)
    namespace = {} if namespace is None else namespace
    exec(compile(code, filename, "exec"), namespace)
    return namespace
