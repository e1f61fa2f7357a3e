"""One fast engine per model and weights: rebuilt only when a weight or buffer changed.

Explainers ask for the model's engine on every `explain` call (`EcgModel.fast_engine`), so the engine
always computes with the current weights. Building one rearranges or folds every weight (for
XResNet1d-101 several forward passes of a 10-s record), so it is kept on the model with a key of
every parameter's and buffer's identity and version counter (bumped by every in-place change:
optimiser steps, `load_state_dict`, batch-norm statistics in train mode) and the precision.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

_SLOT = "_ecgzoo_fast_engine"


def weights_key(model: nn.Module, dtype: torch.dtype) -> tuple:
    """Changes whenever any parameter or buffer of `model` is replaced or changed in place."""
    return dtype, tuple((id(t), t._version) for t in itertools.chain(model.parameters(), model.buffers()))


def cached_engine(model: nn.Module, dtype: torch.dtype, build: Callable[[], Any]) -> Any:
    """The engine built for the model's current weights and `dtype`, building it (`build()`) when needed.
    Kept outside the module's registries (not a submodule, not in the state dict)."""
    key = weights_key(model, dtype)
    slot = model.__dict__.get(_SLOT)
    if slot is not None and slot[0] == key:
        return slot[1]
    engine = build()
    model.__dict__[_SLOT] = (weights_key(model, dtype), engine)
    return engine


def without_cache(model: nn.Module) -> nn.Module:
    """`model` with no cached engine (for an engine that deep-copies the model it is built from)."""
    model.__dict__.pop(_SLOT, None)
    return model
