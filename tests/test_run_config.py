"""Run options: presets, TOML file and --set layered, and typos stopped with the valid keys listed."""

from __future__ import annotations

import pytest

from ecgzoo.cli import main
from ecgzoo.config import ConfigError, parse_assignments
from ecgzoo.run_config import RunConfig, preset_values, resolve_run_config


def test_layers_preset_then_file_then_set(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('seed = 3\n[trainer]\nepochs = 4\nbatch_size = 8\n[split]\nval_fraction = 0.25\n')
    cfg = resolve_run_config("cnnv7", "synthetic", "quick", path, parse_assignments(["trainer.epochs=2", "device=cpu"]))
    quick = preset_values("quick", "cnnv7", "synthetic")
    assert cfg.trainer["epochs"] == 2  # --set wins over the file
    assert cfg.trainer["batch_size"] == 8  # the file wins over the preset
    assert cfg.trainer["lr"] == quick["trainer"]["lr"]  # the preset fills the rest
    assert (cfg.seed, cfg.device, cfg.split.val_fraction) == (3, "cpu", 0.25)
    assert cfg.preprocessing == quick["preprocessing"]


def test_paper_preset_is_the_defaults():
    cfg = resolve_run_config("cnnv7", "synthetic", "paper")
    assert cfg == RunConfig()
    assert cfg.preprocessing is None  # the dataset's own pipeline (Pipeline.for_dataset)
    assert cfg.split.val_fraction == 0.3 and cfg.explainer == "cam"


def test_typo_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        resolve_run_config("cnnv7", "synthetic", "quick", None, parse_assignments(["sede=1"]))
    msg = str(err.value)
    assert "unknown option 'sede'" in msg and "did you mean 'seed'" in msg
    assert "trainer" in msg and "split" in msg and "explainer" in msg


def test_typo_in_a_nested_table_names_the_table():
    with pytest.raises(ConfigError, match=r"table 'split'.*'val_fration'.*Valid options: val_fraction, seed"):
        resolve_run_config("cnnv7", "synthetic", "paper", None, parse_assignments(["split.val_fration=0.2"]))


def test_bad_value_and_unknown_preset():
    with pytest.raises(ConfigError, match="device"):
        resolve_run_config("cnnv7", "synthetic", "paper", None, {"device": "tpu"})
    with pytest.raises(ConfigError, match="presets are paper, quick"):
        resolve_run_config("cnnv7", "synthetic", "fast")


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve_run_config("cnnv7", "synthetic", "paper", tmp_path / "nope.toml")


def test_cli_prints_the_typo_without_traceback(capsys, tmp_path):
    code = main(["run", "toy", "synthetic", "--set", "trainer_plugn=x", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown option 'trainer_plugn'" in err and "trainer_plugin" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written before options are valid
