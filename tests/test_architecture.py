"""The layout ARCHITECTURE.md describes, checked on the source: every import of every module in ecgzoo/
(at the top and inside functions), read with `ast`. No cycle among the modules, no internal module that
imports the `ecgzoo` facade, and each package importing only what ARCHITECTURE.md's table allows (the table
is read from the document, so the two cannot drift apart). File lengths: tests/test_code_shape.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "ecgzoo"
FACADE = "ecgzoo"


def module_name(path: Path, root: Path) -> str:
    """`ecgzoo.core.registry` for root/ecgzoo/core/registry.py; a package is named by its folder."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules(root: Path) -> dict[str, tuple[Path, ast.Module]]:
    """Every module under root/ecgzoo, parsed: {module name: (path, tree)}."""
    return {module_name(p, root): (p, ast.parse(p.read_text(encoding="utf-8"), str(p)))
            for p in sorted((root / "ecgzoo").rglob("*.py"))}


def facade_names(modules: dict[str, tuple[Path, ast.Module]]) -> set[str]:
    """Names the facade binds (imports, definitions, `__all__`) that are not modules of the package."""
    tree = modules[FACADE][1]
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return {n for n in names if f"{FACADE}.{n}" not in modules}


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, tree: ast.Module, modules: dict, facade: set[str]) -> tuple[set[str], list[str]]:
    """(the package modules `module` imports anywhere in its file, its uses of the facade as 'line N: ...')."""
    found: set[str] = set()
    uses: list[str] = []

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == FACADE:
                    found.add(known(alias.name))
                    if alias.name == FACADE:
                        uses.append(f"line {node.lineno}: import {FACADE}")
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node, path.name == "__init__.py")
            if base.split(".")[0] != FACADE:
                continue
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else known(base))
                if base == FACADE and alias.name in facade:
                    uses.append(f"line {node.lineno}: from {FACADE} import {alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == FACADE \
                and node.attr in facade:
            uses.append(f"line {node.lineno}: {FACADE}.{node.attr}")
    found.discard(module)
    return found, sorted(uses, key=lambda u: int(u.split(":")[0].split()[1]))


def import_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """({module: modules it imports}, {module: its uses of the facade}) for every module under root/ecgzoo."""
    modules = read_modules(root)
    facade = facade_names(modules)
    graph, uses = {}, {}
    for name, (path, tree) in modules.items():
        graph[name], used = imports_of(name, path, tree, modules, facade)
        if used and name != FACADE:
            uses[name] = used
    return graph, uses


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_of(module: str, packages: set[str]) -> str:
    """The row of ARCHITECTURE.md's table a module belongs to: its subpackage, else `ecgzoo` (the public modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in packages else FACADE


def allowed_imports(text: str) -> dict[str, set[str]]:
    """{package: packages it may import} from the table under '## What each package may import'."""
    section = text.split("## What each package may import", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        first = re.fullmatch(r"`([\w.]+)`", cells[0]) if len(cells) == 3 else None
        if first:
            table[first.group(1)] = set() if cells[2] == "nothing" else set(re.findall(r"`([\w.]+)`", cells[2]))
    return table


def forbidden_imports(graph: dict[str, set[str]], table: dict[str, set[str]]) -> list[str]:
    packages = set(table) - {FACADE}
    out = []
    for module, targets in sorted(graph.items()):
        here = package_of(module, packages)
        for target in sorted(targets):
            there = package_of(target, packages)
            if there != here and there not in table.get(here, set()):
                out.append(f"{module} imports {target} ({here} may import: {', '.join(sorted(table.get(here, ()))) or 'nothing'})")
    return out


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


GRAPH, FACADE_USES = import_graph(REPO)
TABLE = allowed_imports((REPO / "ARCHITECTURE.md").read_text(encoding="utf-8"))


def test_no_import_cycles_among_the_modules():
    assert cycles(GRAPH) == []


def test_no_internal_module_imports_the_facade():
    assert FACADE_USES == {}, "import what you need from the module that defines it (ARCHITECTURE.md)"


def test_each_package_imports_only_what_architecture_md_allows():
    assert forbidden_imports(GRAPH, TABLE) == []


def test_architecture_md_has_a_row_for_each_package_and_no_other():
    on_disk = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert set(TABLE) == on_disk | {FACADE}
    assert all(set(allowed) <= set(TABLE) for allowed in TABLE.values())


def test_the_checks_see_function_level_imports_cycles_and_the_facade(tmp_path):
    root = _tree(tmp_path, {
        "ecgzoo/__init__.py": "from ecgzoo.core.a import thing\n__all__ = ['thing']\n",
        "ecgzoo/core/__init__.py": "",
        "ecgzoo/core/a.py": "def thing():\n    from ecgzoo.data import b\n    return b\n",
        "ecgzoo/data/__init__.py": "",
        "ecgzoo/data/b.py": "import ecgzoo\n\ndef f():\n    from ecgzoo import thing\n    return ecgzoo.thing\n",
    })
    graph, uses = import_graph(root)
    assert graph["ecgzoo.core.a"] == {"ecgzoo.data.b"}  # the import inside thing()
    assert cycles(graph) == [["ecgzoo", "ecgzoo.core.a", "ecgzoo.data.b"]]
    assert uses == {"ecgzoo.data.b": ["line 1: import ecgzoo", "line 4: from ecgzoo import thing", "line 5: ecgzoo.thing"]}
    table = {"core": set(), "data": {"core"}, "ecgzoo": {"core", "data"}}
    assert forbidden_imports(graph, table) == [
        "ecgzoo.core.a imports ecgzoo.data.b (core may import: nothing)",
        "ecgzoo.data.b imports ecgzoo (data may import: core)",
    ]


def test_the_table_is_read_from_the_document():
    text = ("# x\n## What each package may import\n\n| Package | Holds | May import |\n|---|---|---|\n"
            "| `core` | contracts | nothing |\n| `data` | records | `core`, `_infra` |\n\n## Next\n| `gone` | x | nothing |\n")
    assert allowed_imports(text) == {"core": set(), "data": {"core", "_infra"}}
