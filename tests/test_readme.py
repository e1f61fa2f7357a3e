"""The examples of the README and the docs pages work as written, and CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import types
from pathlib import Path

from doc_blocks import doc_block

import ecgzoo

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _block(marker: str, lang: str) -> str:
    return doc_block(marker, lang)[0]


def _readme_block(marker: str, lang: str) -> str:
    """The test command must stay in the README itself (.ci/run reads it there)."""
    match = re.search(rf"<!-- {marker} -->\s*```{lang}\n(.*?)```", README, re.S)
    assert match, f"README.md has no ```{lang} block after <!-- {marker} -->"
    return match.group(1)


def test_writing_a_plugin_example_runs():
    module = types.ModuleType("readme_plugin_example")
    import sys

    sys.modules[module.__name__] = module
    try:
        exec(compile(_block("plugin-example", "python"), "docs/plugins.md", "exec"), module.__dict__)
        assert "tinynet" in ecgzoo.list_models()
    finally:
        del sys.modules[module.__name__]


def test_training_a_notebook_plugin_example_runs(tmp_path, monkeypatch, capsys):
    """The plugin of the README registered as in a notebook, then trained by `ecgzoo.run` as the README shows."""
    import sys

    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("readme_run_example")
    sys.modules[module.__name__] = module
    try:
        exec(compile(_block("plugin-example", "python"), "docs/plugins.md", "exec"), module.__dict__)
        exec(compile(_block("run-example", "python"), "docs/plugins.md", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    run_dir = module.__dict__["run_dir"]
    assert run_dir == Path("runs") / "tinynet-quick" and (tmp_path / run_dir / "report.md").is_file()
    assert module.__dict__["loaded"].model.plugin_name == "tinynet"
    out, err = capsys.readouterr()
    assert "Model **tinynet** trained on dataset **synthetic**" in out
    assert "> **Warning:** This run is at chance level" in out and "warning: this run is at chance level" in err  # as the page says


def test_explaining_from_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_block("explain-example", "python"), "docs/explainers.md", "exec"), {})
    assert (tmp_path / "cam_example.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "cam" in out and "gradcam" in out and "random" in out


def test_fine_tuning_example_prints_what_it_says(capsys):
    code = _block("finetune-example", "python")
    exec(compile(code, "docs/pretrained.md", "exec"), {})
    promised = code.strip().splitlines()[-1].removeprefix("# ")
    assert capsys.readouterr().out.strip() == promised


def test_ci_runs_the_readme_test_command():
    cmd = _readme_block("test-command", "bash").strip()
    extracted = subprocess.run(
        ["awk", '/<!-- test-command -->/{f=1; next} f && /^```bash/{g=1; next} g && /^```/{exit} g{print}', "README.md"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == cmd and "pytest" in cmd
    assert "ruff check" in cmd  # the linter runs in CI with the rules in pyproject.toml
    assert "README.md" in (REPO / ".ci" / "run").read_text()


def _registered(marker: str) -> dict:
    import sys

    module = types.ModuleType(f"docs_{marker.replace('-', '_')}")
    sys.modules[module.__name__] = module
    try:
        exec(compile(*doc_block(marker), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


def test_the_dataset_plugin_example_runs_and_prints_what_it_says(capsys):
    code = doc_block("dataset-plugin-example")[0]
    namespace = _registered("dataset-plugin-example")
    assert "sine-beats" in ecgzoo.list_plugins("dataset")
    assert capsys.readouterr().out.strip() == code.strip().splitlines()[-1].removeprefix("# ")
    assert namespace["data"].load("s000").label == "N"


def test_the_explainer_plugin_example_runs_and_keeps_the_contract(capsys):
    code = doc_block("explainer-plugin-example")[0]
    namespace = _registered("explainer-plugin-example")
    assert "grad-x-input" in ecgzoo.list_plugins("explainer")
    assert capsys.readouterr().out.strip() == code.strip().splitlines()[-1].removeprefix("# ")
    assert namespace["attr"].shape == (2, 3000)
