"""Explainer interface: one attribution value per input sample for a target class."""

from __future__ import annotations

import abc
from typing import Any, Literal

import pydantic
import torch

from ecgzoo.model import EcgModel
from ecgzoo.plugin_spec import PluginConfig


class FastPathConfig(PluginConfig):
    """Options of explainers that can run through a model's fast engine (`EcgModel.fast_engine`)."""

    fast: bool = pydantic.Field(
        True, description="use the model's fast exact engine where it has one (CNNv7 on the CPU); false: autograd on the module"
    )
    precision: Literal["fp32", "bf16"] = pydantic.Field(
        "fp32", description="bf16: the fast engine's matrix products in bfloat16 (CPUs with native bf16; see README for the error)"
    )


def engine_for(model: EcgModel, config: Any, x: torch.Tensor) -> Any | None:
    """The model's fast engine for this input when the config allows one, else None."""
    if not getattr(config, "fast", False) or x.device.type != "cpu" or model.training:
        return None
    dtype = torch.bfloat16 if getattr(config, "precision", "fp32") == "bf16" else torch.float32
    return model.fast_engine(dtype)


class Explainer(abc.ABC):
    """What the framework needs from an explainer plugin.

    `explain` receives a model in eval mode and a batch shaped (B, leads, T); it
    returns attributions shaped (B, T), aligned sample for sample with the input,
    for `target` (B class indices) or, when `target` is None, the predicted class.
    """

    @abc.abstractmethod
    def explain(
        self,
        model: EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attribution (B, T) for the target class of each batch element."""

    #: True when `explain_leads` tells the leads apart; False: one map shared by every lead
    per_lead: bool = False

    def explain_leads(
        self,
        model: EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attribution (B, leads, T), for drawing one map per lead (`ecgzoo.figures_leads`).

        The default repeats the (B, T) map for every lead: right for maps built from feature maps
        that mix the leads (CAM, Grad-CAM). Explainers that can tell leads apart override this,
        set `per_lead = True`, and keep `explain` equal to the sum over leads.
        """
        attr = self.explain(model, x, target, valid_length)
        return attr[:, None, :].expand(-1, x.shape[1], -1)

    @staticmethod
    def resolve_target(model: EcgModel, x: torch.Tensor, target: torch.Tensor | None,
                       valid_length: torch.Tensor | None = None) -> torch.Tensor:
        """The given targets, or the model's predicted class for each element."""
        if target is not None:
            target = torch.as_tensor(target, dtype=torch.long, device=x.device).reshape(-1)
            if target.numel() == 1 and x.shape[0] > 1:
                target = target.expand(x.shape[0])
            if target.shape[0] != x.shape[0]:
                raise ValueError(f"target has {target.shape[0]} entries for a batch of {x.shape[0]}")
            if (target < 0).any() or (target >= model.num_classes).any():
                raise ValueError(f"target classes must lie in 0..{model.num_classes - 1}, got {target.tolist()}")
            return target
        with torch.no_grad():
            return model(x, valid_length=valid_length).argmax(dim=1)


def with_sampling_rate(explainer: Explainer, fs: float) -> Explainer:
    """Give an explainer whose config has an unset `fs` option (occlusion: windows in seconds)
    the input's sampling rate; other explainers are returned unchanged."""
    config = getattr(explainer, "config", None)
    if config is not None and "fs" in type(config).model_fields and getattr(config, "fs") is None:
        config.fs = float(fs)
    return explainer
