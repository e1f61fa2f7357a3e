"""`cam`: the native class activation map of a GAP + bias-free-linear-head model, from one pass."""

from __future__ import annotations

import pydantic
import torch

import ecgzoo
from ecgzoo.plugin_api import FastPathConfig, engine_for


class CamConfig(FastPathConfig):
    positive_only: bool = pydantic.Field(
        False, description="clip the map at zero (keep only evidence for the target class)"
    )


class Cam(ecgzoo.Explainer):
    """M_c(t) = sum_k w[c, k] f_k(t): the map whose time-mean is the class logit (Zhou et al. 2016)."""

    #: what computed the last `explain` call's map: the fast engine's class name, or "model" (its own forward)
    engine_used: str = ""

    def __init__(self, config: CamConfig):
        self.config = config

    @property
    def non_negative(self) -> bool:  # type: ignore[override]
        return self.config.positive_only

    @property
    def sums_to(self) -> str | None:  # type: ignore[override]
        """The map's sum is T x the class logit (its time-mean is the logit); clipped, it has no such sum."""
        return None if self.config.positive_only else "the class logit"

    def supports(self, model: ecgzoo.EcgModel) -> str | None:
        if model.has_cam:
            return None
        return (f"model {type(model).__name__} declares no native class activation map "
                f"(has_cam=False; it needs global average pooling and a bias-free linear head); "
                f"use --explainer gradcam instead")

    def explain(
        self,
        model: ecgzoo.EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        reason = self.supports(model)
        if reason:
            raise TypeError(f"explainer 'cam': {reason}")
        engine = engine_for(model, self.config, x)
        with torch.no_grad():
            logits, maps = (engine or model).forward_with_cam(x, valid_length)
            self.engine_used = type(engine).__name__ if engine is not None else "model"
            if target is None:
                target = logits.argmax(dim=1)
            else:
                target = self.resolve_target(model, x, target, valid_length)
            out = maps[torch.arange(x.shape[0], device=maps.device), target]
        if self.config.positive_only:
            out = out.clamp_min(0)
        return out.float()


@ecgzoo.hookimpl
def ecgzoo_explainers() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("cam", Cam, CamConfig, summary="native class activation map (one pass; CNNv7, DeepECG-13)")]
