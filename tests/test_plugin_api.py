"""Reference plugins use only ecgzoo's public API (`ecgzoo` and `ecgzoo.plugin_api`), read from their source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ecgzoo
import ecgzoo.plugin_api

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
PUBLIC_MODULES = {"ecgzoo", "ecgzoo.plugin_api"}


def private_imports(source: str, filename: str = "<plugin>") -> list[str]:
    """'line N: what' for every import of an ecgzoo module or name outside the public API."""
    exported = {"ecgzoo": set(ecgzoo.__all__), "ecgzoo.plugin_api": set(ecgzoo.plugin_api.__all__)}
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ecgzoo" and alias.name not in PUBLIC_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "ecgzoo":
            if node.module not in PUBLIC_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
                continue
            for alias in node.names:
                if alias.name not in exported[node.module]:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name} (not in its __all__)")
    return found


@pytest.mark.parametrize("path", sorted(PLUGINS.rglob("*.py")), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_reference_plugin_imports_only_the_public_api(path):
    assert private_imports(path.read_text(encoding="utf-8"), str(path)) == [], (
        f"{path.name} reaches past the public API; export what it needs from ecgzoo.plugin_api"
    )


def test_the_check_catches_private_imports():
    bad = "import ecgzoo.metrics\nfrom ecgzoo.checkpoint import save_checkpoint\nfrom ecgzoo import distributed, hookimpl\n" \
          "def f():\n    from ecgzoo.splits import class_weights\n"
    assert private_imports(bad) == [
        "line 1: import ecgzoo.metrics",
        "line 2: from ecgzoo.checkpoint import ...",
        "line 3: from ecgzoo import distributed (not in its __all__)",
        "line 5: from ecgzoo.splits import ...",
    ]
    assert private_imports("import ecgzoo\nfrom ecgzoo.plugin_api import save_checkpoint\nimport torch\n") == []


def test_every_public_name_exists():
    for module in (ecgzoo, ecgzoo.plugin_api):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], f"{module.__name__}.__all__ lists missing names {missing}"


def test_domain_knowledge_comes_from_the_dataset_plugin():
    """PhysioNet 2017 and the synthetic set declare the paper's pipeline and the challenge's N/A/O, the
    presets live in registry.toml; the core names no preprocessor."""
    from ecgzoo.data.pipeline import Pipeline

    data = ecgzoo.get_dataset("synthetic", records=3)
    assert [s["name"] for s in Pipeline.for_dataset(data).config] == ["bandpass", "rpeaks", "rpeak-normalize", "pad-crop"]
    assert tuple(data.scored_classes) == ("N", "A", "O")
    core = Path(ecgzoo.__file__).parent
    for path in core.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert '"rpeak-normalize"' not in text and "'rpeak-normalize'" not in text, f"{path.name} names a preprocessor"


def test_a_dataset_without_a_default_pipeline_needs_one(tmp_path):
    import numpy as np

    from ecgzoo.data.pipeline import Pipeline

    class Bare(ecgzoo.Dataset):
        classes = ("x", "y")

        def record_ids(self):
            return ["a"]

        def label(self, record_id):
            return "x"

        def load(self, record_id):
            return ecgzoo.Record(np.zeros((1, 10), np.float32), 100.0, record_id, "x")

    with pytest.raises(ecgzoo.ConfigError, match="dataset 'bare' declares no default preprocessing; give the steps"):
        Pipeline.for_dataset(Bare(), "bare")


def test_scored_classes_pick_what_the_headline_f1_averages():
    from ecgzoo.plugin_api import metrics_from_confusion

    cm = [[5, 1, 0], [2, 2, 0], [0, 0, 3]]  # F1: x 10/13, y 4/7, z 1
    assert metrics_from_confusion(cm, ["x", "y", "z"], scored=["x", "z"])["challenge_f1"] == pytest.approx((10 / 13 + 1) / 2)
    assert metrics_from_confusion(cm, ["x", "y", "z"])["challenge_f1"] == pytest.approx((10 / 13 + 4 / 7 + 1) / 3)
    with pytest.raises(ValueError, match=r"none of the scored classes \['N'\] is among the classes"):
        metrics_from_confusion(cm, ["x", "y", "z"], scored=["N"])
