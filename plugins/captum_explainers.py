"""`saliency`, `integrated-gradients`, `occlusion` through captum, with ECG defaults.

Baselines are the zero signal (flat line); occlusion windows are given in seconds and
converted with the input's sampling rate; Integrated Gradients runs its interpolation steps
in bounded chunks so a 60-s record does not need n_steps copies in memory at once. Each
returns one value per input sample: the per-lead attributions are summed over leads.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Literal

import pydantic
import torch

import ecgzoo


class CaptumConfig(ecgzoo.PluginConfig):
    output: Literal["logit", "probability"] = pydantic.Field(
        "logit", description="what is attributed: the target class logit or its softmax probability"
    )


class SaliencyConfig(CaptumConfig):
    absolute: bool = pydantic.Field(True, description="use |d output / d input| (Simonyan et al. 2014) instead of the signed gradient")


class IntegratedGradientsConfig(CaptumConfig):
    n_steps: int = pydantic.Field(32, ge=2, description="points on the path from the zero baseline to the input")
    internal_batch_size: int = pydantic.Field(
        4, ge=1, description="path points evaluated per forward pass and record (bounds memory on long inputs)"
    )
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_middle"] = pydantic.Field(
        "gausslegendre", description="quadrature rule along the path"
    )


class OcclusionConfig(CaptumConfig):
    fs: float | None = pydantic.Field(
        None, gt=0, description="sampling rate of the input in Hz when the caller passes none (ecgzoo run/explain pass it)"
    )
    window_s: float = pydantic.Field(0.5, gt=0, description="occluded window length in seconds")
    stride_s: float = pydantic.Field(0.25, gt=0, description="step between windows in seconds")
    perturbations_per_eval: int = pydantic.Field(8, ge=1, description="occluded copies per forward pass (bounds memory)")


def _forward(model: ecgzoo.EcgModel, output: str) -> Callable[..., torch.Tensor]:
    def forward(inp: torch.Tensor, valid_length: torch.Tensor | None = None) -> torch.Tensor:
        logits = model(inp, valid_length=valid_length)
        return torch.softmax(logits, dim=1) if output == "probability" else logits

    return forward


class _CaptumExplainer(ecgzoo.Explainer):
    config: CaptumConfig

    def __init__(self, config: CaptumConfig):
        self.config = config

    @abc.abstractmethod
    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        """Captum attributions (B, leads, T) of `forward` for `target`."""

    def explain(
        self,
        model: ecgzoo.EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        target = self.resolve_target(model, x, target, valid_length)
        extra = (valid_length.to(x.device),) if valid_length is not None else ()
        with torch.enable_grad():
            inp = x.detach().clone().requires_grad_(True)
            attr = self._attribute(_forward(model, self.config.output), inp, target, extra, fs)
        return attr.detach().sum(dim=1).float()


class Saliency(_CaptumExplainer):
    """Gradient of the target output w.r.t. each input sample."""

    @property
    def non_negative(self) -> bool:  # type: ignore[override]
        return self.config.absolute

    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        from captum.attr import Saliency as CaptumSaliency

        return CaptumSaliency(forward).attribute(
            x, target=target, abs=self.config.absolute, additional_forward_args=extra or None
        )


class IntegratedGradients(_CaptumExplainer):
    """Path integral of gradients from the zero signal to the input (Sundararajan et al. 2017)."""

    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        from captum.attr import IntegratedGradients as CaptumIG

        c = self.config
        return CaptumIG(forward).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=c.n_steps, method=c.method,
            internal_batch_size=c.internal_batch_size * x.shape[0], additional_forward_args=extra or None,
        )


class Occlusion(_CaptumExplainer):
    """Drop in the target output when a window of the signal is set to zero (Zeiler and Fergus 2014)."""

    def window_samples(self, fs: float | None = None) -> tuple[int, int]:
        """(window, stride) in samples at rate `fs` (the caller's; else the option `fs`)."""
        if fs is not None and self.config.fs is not None and abs(fs - self.config.fs) > 1e-6 * fs:
            raise ValueError(f"explainer 'occlusion': the input is sampled at {fs:g} Hz but the option fs is "
                             f"{self.config.fs:g} Hz; leave the option out")
        fs = fs or self.config.fs
        if fs is None:
            raise ValueError(
                "explainer 'occlusion': the sampling rate is unknown; pass it (explain(..., fs=300)) or set the "
                "option fs (Hz), so window_s and stride_s can be turned into samples"
            )
        return max(1, round(self.config.window_s * fs)), max(1, round(self.config.stride_s * fs))

    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        from captum.attr import Occlusion as CaptumOcclusion

        window, stride = self.window_samples(fs)
        if window > x.shape[-1]:
            raise ValueError(
                f"explainer 'occlusion': window of {self.config.window_s} s = {window} samples is longer "
                f"than the input ({x.shape[-1]} samples)"
            )
        with torch.no_grad():
            return CaptumOcclusion(forward).attribute(
                x, sliding_window_shapes=(x.shape[1], window), strides=(x.shape[1], stride),
                baselines=0.0, target=target, additional_forward_args=extra or None,
                perturbations_per_eval=self.config.perturbations_per_eval,
            )


@ecgzoo.hookimpl
def ecgzoo_explainers() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec("saliency", Saliency, SaliencyConfig, aliases=("gradient",),
                          summary="input gradient (captum Saliency), summed over leads"),
        ecgzoo.PluginSpec("integrated-gradients", IntegratedGradients, IntegratedGradientsConfig, aliases=("ig",),
                          summary="Integrated Gradients from the zero signal (captum), bounded batches"),
        ecgzoo.PluginSpec("occlusion", Occlusion, OcclusionConfig,
                          summary="occlusion with windows in seconds (captum), needs fs"),
    ]
