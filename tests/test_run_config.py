"""Run options: presets, TOML file and --set layered, and typos stopped with the valid keys listed."""

from __future__ import annotations

import pytest

from ecgzoo.cli import main
from ecgzoo.core.config import ConfigError, parse_assignments
from ecgzoo.training.run_config import RunConfig, preset_values, resolve_run_config


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


# the presets' values as ecgzoo 0.1 and the cpu recipe defined them in run_config.py, before they moved to registry.toml
QUICK_0_1 = {
    "preprocessing": [{"name": "bandpass"}, {"name": "rpeaks"}, {"name": "rpeak-normalize"}, {"name": "pad-crop", "seconds": 10.0}],
    "trainer": {"epochs": 6, "batch_size": 16, "lr": 2e-3},
    "report": {"examples_per_class": 1},
}
CPU_TRAINER = {
    "epochs": 30, "batch_size": 32, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 1e-2,
    "lr_schedule": "warmup-cosine", "warmup_epochs": 0.5, "label_smoothing": 0.1,
    "class_weighting": "sqrt-inverse-frequency", "ema_decay": 0.998, "precision": "bf16",
    "crop_samples": 9000, "augment_scale": [0.7, 1.3], "augment_flip": True, "augment_noise": 0.02,
    "eval_batch_size": 32,
}
DEEPECG13_QUICK = [[40, 24, 1], [32, 16, 2], [32, 16, 4], [32, 16, 4], [32, 16, 4], [16, 8, 4], [16, 8, 6],
                   [16, 8, 6], [16, 8, 6], [16, 8, 6], [16, 8, 8], [8, 8, 8], [8, 8, 8]]


def test_presets_from_registry_keep_their_values():
    assert preset_values("paper", "cnnv7", "synthetic") == {}
    assert preset_values("quick", "cnnv7", "synthetic") == {**QUICK_0_1, "model": {"filters": 16, "conv_a": 32, "conv_b": 64}}
    assert preset_values("quick", "deepecg13", "synthetic") == {**QUICK_0_1, "model": {"layers": DEEPECG13_QUICK}}
    assert preset_values("quick", "cnnv7-s8", "synthetic") == QUICK_0_1  # a variant is its own plugin: its defaults stay
    assert preset_values("cpu", "cnnv7-s8", "physionet2017") == {
        "split": {"val_fraction": 0.12, "test_fraction": 0.15, "test_seed": 0}, "trainer": CPU_TRAINER,
        "report": {"examples_per_class": 1}, "workers": 2,
    }


def test_preset_model_options_follow_an_alias_to_its_target():
    """`ecgzoo run goodfellow-v7 synthetic --preset quick` trained the full-width model: options were keyed by the typed name."""
    assert resolve_run_config("goodfellow-v7", "synthetic", "quick").model == {"filters": 16, "conv_a": 32, "conv_b": 64}
    with pytest.raises(ConfigError, match="unknown preset 'fast'; presets are paper, quick, cpu"):
        preset_values("fast", "cnnv7", "synthetic")


def test_quick_preset_keeps_a_datasets_own_preprocessing_where_it_differs():
    """`--preset quick` on PTB-XL trained on R-peak-normalised records (PhysioNet 2017's recipe, R-peaks on lead 0),
    not on PTB-XL's own z-scored 10-s records: the preset's steps now apply only to the datasets it names."""
    assert "preprocessing" not in preset_values("quick", "xresnet1d101", "ptbxl")
    assert resolve_run_config("xresnet1d101", "ptbxl", "quick").preprocessing is None  # Pipeline.for_dataset: zscore
    assert resolve_run_config("inception1d", "cinc2021", "quick").preprocessing is None
    for dataset in ("physionet2017", "synthetic", "wfdb-folder"):
        assert preset_values("quick", "cnnv7", dataset)["preprocessing"] == QUICK_0_1["preprocessing"]
    assert resolve_run_config("xresnet1d101", "ptbxl", "quick", None, parse_assignments(
        ['preprocessing=[{name = "zscore"}]'])).preprocessing == [{"name": "zscore"}]  # --set still wins
