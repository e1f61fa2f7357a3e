"""`ecgzoo.run`: `ecgzoo run` in this process, for plugins registered here; the CLI says where those are."""

from __future__ import annotations

import ast

import pytest
from run_helpers import TINY_SETS, cli, register_toy

import ecgzoo
import ecgzoo.training.runner
from ecgzoo.core.config import parse_assignments


@pytest.fixture(autouse=True)
def _toy():
    register_toy()


def test_the_cli_says_a_notebook_registered_plugin_needs_ecgzoo_run_or_an_entry_point(tmp_path):
    code, _, err = cli("run", "mynotebooknet", "synthetic", "--output-dir", str(tmp_path))
    assert code == 2 and "Traceback" not in err
    assert "no model plugin named 'mynotebooknet'" in err
    assert "ecgzoo.register_plugin" in err and "ecgzoo.run(MODEL, DATASET" in err and "`ecgzoo` entry point" in err
    assert not list(tmp_path.iterdir())  # refused before any folder is made


def test_an_interrupted_python_run_names_the_call_that_continues_it(tmp_path, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ecgzoo.training.runner, "_train", ctrl_c)
    options = {**parse_assignments(TINY_SETS), "output_dir": str(tmp_path)}
    with pytest.raises(KeyboardInterrupt):
        ecgzoo.run("toy", "synthetic", estimate=False, **options)
    name = next(tmp_path.glob("toy-synthetic-*.incomplete")).name.removesuffix(".incomplete")
    line = next(x for x in capsys.readouterr().err.splitlines() if "To continue it, run: " in x)
    call = line.split("To continue it, run: ", 1)[1]
    assert call in (tmp_path / f"{name}.incomplete" / "FAILED.txt").read_text()
    tree = ast.parse(call, mode="eval").body  # valid Python: ecgzoo.run('toy', 'synthetic', ..., name='<the run>')
    assert ast.unparse(tree.func) == "ecgzoo.run" and [ast.literal_eval(a) for a in tree.args] == ["toy", "synthetic"]
    keywords = {k.arg: ast.literal_eval(k.value) for k in tree.keywords}
    assert keywords == {"estimate": False, **options, "name": name}


def test_the_preset_and_keyword_options_reach_the_run_as_preset_and_set_do(monkeypatch):
    seen = {}
    monkeypatch.setattr(ecgzoo.training.runner, "run", lambda model, dataset, config, resume: seen.update(config=config) or "done")
    assert ecgzoo.run("cnnv7", "synthetic", preset="quick", trainer={"epochs": 2}, model={"conv_b": 8}) == "done"
    config = seen["config"]
    assert config.trainer["epochs"] == 2 and config.trainer["batch_size"] == 16  # merged into the preset's table
    assert config.model == {"filters": 16, "conv_a": 32, "conv_b": 8}
