"""Plugin discovery (code, entry points, registry.toml), name resolution and config errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch
import toy_plugins
from thirdparty import installed, pyproject

import ecgzoo
from ecgzoo.cli import main as cli
from ecgzoo.core.registry import Registry
from ecgzoo.testing import check_model_plugin


def test_register_from_code_and_create():
    ecgzoo.register_plugin(toy_plugins)
    assert "toy" in ecgzoo.list_models("to*")
    model = ecgzoo.create_model("toy", num_classes=4)
    assert model.num_classes == 4 and model.config.width == 4 and model.plugin_name == "toy"
    assert ecgzoo.create_model("toy-cam").num_classes == 3  # alias resolves to the same plugin
    check_model_plugin("toy", length=64)


def test_list_pattern_and_kind_filter():
    ecgzoo.register_plugin(toy_plugins)
    assert "toy-scale" in ecgzoo.list_plugins("preprocessor")
    assert "toy-scale" not in ecgzoo.list_plugins("model")
    assert ecgzoo.list_models("nothing-like-this*") == []
    with pytest.raises(ecgzoo.PluginError, match="unknown plugin kind 'modle'"):
        ecgzoo.list_plugins("modle")


def test_unknown_option_names_plugin_field_and_valid_options():
    ecgzoo.register_plugin(toy_plugins)
    with pytest.raises(ecgzoo.ConfigError) as err:
        ecgzoo.create_model("toy", widht=8)
    msg = str(err.value)
    assert "model plugin 'toy'" in msg and "'widht'" in msg and "did you mean 'width'" in msg
    assert "Valid options: num_classes, in_leads, init_weights, width" in msg


def test_wrong_value_names_field_and_value():
    ecgzoo.register_plugin(toy_plugins)
    with pytest.raises(ecgzoo.ConfigError, match=r"option 'num_classes'.*greater than or equal to 2.*got 1"):
        ecgzoo.create_model("toy", num_classes=1)
    with pytest.raises(ecgzoo.ConfigError, match=r"option 'width'.*got 'wide'"):
        ecgzoo.create_model("toy", width="wide")


def test_unknown_plugin_suggests_close_name():
    ecgzoo.register_plugin(toy_plugins)
    with pytest.raises(ecgzoo.PluginError, match=r"no model plugin named 'tyo'\. Did you mean 'toy'\?"):
        ecgzoo.create_model("tyo")


class _Twin:
    """A second plugin claiming the name 'toy'."""

    @staticmethod
    @ecgzoo.hookimpl
    def ecgzoo_models():
        return [ecgzoo.PluginSpec("toy", toy_plugins.ToyModel, toy_plugins.ToyConfig)]


def test_two_plugins_claiming_one_name_is_an_error_naming_both():
    ecgzoo.register_plugin(toy_plugins, name="first-source")
    ecgzoo.register_plugin(_Twin, name="second-source")
    with pytest.raises(ecgzoo.PluginError) as err:
        ecgzoo.create_model("toy")
    assert "first-source" in str(err.value) and "second-source" in str(err.value)
    assert "toy" not in ecgzoo.list_models()


class _Exploding:
    @staticmethod
    @ecgzoo.hookimpl
    def ecgzoo_models():
        raise RuntimeError("weights missing")


class _Misspelt:
    @staticmethod
    @ecgzoo.hookimpl
    def ecgzoo_modles():
        return []


def test_broken_plugins_are_reported_not_fatal(capsys):
    ecgzoo.register_plugin(toy_plugins)
    ecgzoo.register_plugin(_Exploding, name="exploding")
    ecgzoo.register_plugin(_Misspelt, name="misspelt")
    assert "toy" in ecgzoo.list_models()  # the healthy plugin still works
    errors = {b.source: b.error for b in ecgzoo.core.registry.get_registry().broken()}
    assert "weights missing" in errors["code: exploding"]
    assert "ecgzoo_modles" in errors["code: misspelt"]
    assert cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy" in out and "BROKEN (2)" in out and "weights missing" in out


def test_registry_toml_modules_aliases_variants_and_import_errors(tmp_path):
    reg_file = tmp_path / "registry.toml"
    reg_file.write_text(textwrap.dedent("""
        [[plugin]]
        module = "toy_plugins"
        [[plugin]]
        module = "no_such_module_for_ecgzoo"
        [model.toy]
        aliases = ["tiny"]
        [model.toy-wide]
        base = "toy"
        summary = "toy with more channels"
        defaults = { width = 16 }
        [model.toy-bad]
        base = "toy"
        defaults = { width = -1 }
    """))
    reg = Registry(registry_file=reg_file, entry_points=False)
    assert [e.name for e in reg.entries("model")] == ["toy", "toy-wide"]
    assert reg.create("model", "tiny").config.width == 4
    assert reg.create("model", "toy-wide").config.width == 16
    assert reg.create("model", "toy-wide", width=2).config.width == 2
    broken = {b.source: b.error for b in reg.broken()}
    assert any("no_such_module_for_ecgzoo" in s and "ModuleNotFoundError" in e for s, e in broken.items())
    assert any("toy-bad" in e and "'width'" in e for e in broken.values())
    with pytest.raises(ecgzoo.PluginError, match="model 'toy-bad' is broken"):
        reg.create("model", "toy-bad")


def test_info_shows_options_with_defaults_and_docs(capsys):
    ecgzoo.register_plugin(toy_plugins)
    info = ecgzoo.plugin_info("toy")
    assert info["kind"] == "model" and info["aliases"] == ["toy-cam"]
    opts = {o["name"]: o for o in info["options"]}
    assert opts["width"]["default"] == 4 and opts["width"]["doc"] == "channels of the feature map"
    assert info["schema"]["properties"]["num_classes"]["minimum"] == 2
    assert cli(["info", "toy"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  width +int = 4$", out, re.M) and "channels of the feature map" in out
    assert cli(["info", "nope"]) == 2
    assert "no plugin named 'nope'" in capsys.readouterr().err


THIRD_PARTY = {
    "pyproject.toml": pyproject("ecgzoo-thirdparty-probe", "ecgzoo_thirdparty_probe", "probe"),
    "ecgzoo_thirdparty_probe.py": """
        import torch
        from torch import nn
        import ecgzoo

        class Cfg(ecgzoo.PluginConfig):
            classes: int = 2

        class Probe(ecgzoo.EcgModel):
            has_cam = True
            def __init__(self, cfg):
                super().__init__()
                self.config, self.num_classes, self.in_leads = cfg, cfg.classes, 1
                self.conv = nn.Conv1d(1, 3, 3, padding=1)
                self.head = nn.Linear(3, cfg.classes, bias=False)
            def forward_features(self, x):
                return self.conv(x)

        @ecgzoo.hookimpl
        def ecgzoo_models():
            return [ecgzoo.PluginSpec("probe-net", Probe, Cfg, summary="installed from a third-party package")]
    """,
}


def test_third_party_package_found_through_entry_point(tmp_path, capsys):
    with installed(tmp_path / "probe", "ecgzoo-thirdparty-probe", THIRD_PARTY):
        model = ecgzoo.create_model("probe-net")
        assert model(torch.zeros(1, 1, 10)).shape == (1, 2)
        assert cli(["list", "model"]) == 0
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if line.startswith("probe-net"))
        assert "entry point probe = ecgzoo_thirdparty_probe" in line and "third-party package" in line
    assert "probe-net" not in ecgzoo.list_models()


def test_reference_registry_file_is_valid():
    """registry.toml (shipped as ecgzoo_plugins/registry.toml) loads with no broken entries."""
    reg = Registry(registry_file=Path(__file__).resolve().parent.parent / "plugins" / "registry.toml", entry_points=False)
    assert reg.broken() == []
