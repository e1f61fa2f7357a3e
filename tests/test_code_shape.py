"""No function in ecgzoo/ or plugins/ is longer than 60 lines (the developers' standard), read from the AST."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT = 60


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than LIMIT lines, decorators excluded."""
    return [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > LIMIT]


def test_no_function_over_sixty_lines():
    found = {str(p.relative_to(REPO)): long_functions(p.read_text(encoding="utf-8"))
             for folder in ("ecgzoo", "plugins") for p in sorted((REPO / folder).rglob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}, "split these into named stages"


def test_the_check_counts_lines():
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"def long():\n{body}\n") == [("long", LIMIT + 1)]
    assert long_functions(f"def short():\n{body.splitlines()[0]}\n") == []
