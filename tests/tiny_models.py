"""The smallest options of every model family, for the tests that iterate the registry (conformance, a one-epoch
run, every explainer): a registered model whose family has none fails those tests, saying so."""

from __future__ import annotations

import pytest

import ecgzoo

#: tiny widths per model config class; a variant keeps its other defaults (cnnv7-s8 its stride-8 stem and batch norm)
TINY_BY_CONFIG = {
    "CNNv7Config": {"filters": 4, "conv_a": 4, "conv_b": 4},
    "CNNv7LocalConfig": {"filters": 4, "conv_a": 4, "conv_b": 4, "context_filters": 4},
    "DeepECG13Config": {"layers": [[4, 5, 1], [4, 3, 2]], "pool_after": [1]},
    "XResNet1dConfig": {"layers": [1, 1], "width": 4, "stem": [4, 4]},
    "Inception1dConfig": {"depth": 3, "filters": 4, "bottleneck": 4, "kernel_size": 8},
}
#: what "tiny" means: a model with its tiny options has at most this many parameters
MAX_PARAMETERS = 20_000


def registered_models() -> list[str]:
    """Every model of registry.toml and the installed entry points (not those a test registers)."""
    ecgzoo.reset_registry()
    try:
        return ecgzoo.list_models()
    finally:
        ecgzoo.reset_registry()


def tiny_options(name: str) -> dict:
    """Model `name`'s tiny options; fails (never skips) when its family has none."""
    config = ecgzoo.get_registry().resolve(name, "model").spec.config.__name__
    if config not in TINY_BY_CONFIG:
        pytest.fail(f"model {name!r} cannot run a tiny configuration: its config {config} has no entry in TINY_BY_CONFIG "
                    "(tests/tiny_models.py); add its smallest options there", pytrace=False)
    return dict(TINY_BY_CONFIG[config])
