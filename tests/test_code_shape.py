"""No function in ecgzoo/ or plugins/ is longer than 60 lines and no file there longer than 450 (the developers'
standard); functions read from the AST."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT = 60
FILE_LIMIT = 450


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of every function or method longer than LIMIT lines, decorators excluded."""
    return [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > LIMIT]


def test_no_function_over_sixty_lines():
    found = {str(p.relative_to(REPO)): long_functions(p.read_text(encoding="utf-8"))
             for folder in ("ecgzoo", "plugins") for p in sorted((REPO / folder).rglob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}, "split these into named stages"


def long_files(folder: Path) -> dict[str, int]:
    """{path: lines} of every Python file under `folder` longer than FILE_LIMIT lines."""
    return {str(p.relative_to(folder)): n for p in sorted(folder.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > FILE_LIMIT}


def test_no_file_over_450_lines():
    assert {folder: long_files(REPO / folder) for folder in ("ecgzoo", "plugins")} == {"ecgzoo": {}, "plugins": {}}, \
        "split these by concept (ARCHITECTURE.md)"


def test_the_file_check_counts_lines(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "long.py").write_text("x = 1\n" * (FILE_LIMIT + 1))
    (tmp_path / "short.py").write_text("x = 1\n" * FILE_LIMIT)
    assert long_files(tmp_path) == {str(Path("a") / "long.py"): FILE_LIMIT + 1}


def test_the_check_counts_lines():
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert long_functions(f"def long():\n{body}\n") == [("long", LIMIT + 1)]
    assert long_functions(f"def short():\n{body.splitlines()[0]}\n") == []
