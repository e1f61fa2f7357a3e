"""`saliency`, `integrated-gradients`, `occlusion` through captum, with ECG defaults.

Baselines are the zero signal (flat line); occlusion windows are given in seconds and
converted with the input's sampling rate; Integrated Gradients runs its interpolation steps
in bounded chunks so a 60-s record does not need n_steps copies in memory at once. Each
returns one value per input sample: the per-lead attributions are summed over leads.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any, Literal

import pydantic
import torch

import ecgzoo
from ecgzoo.plugin_api import FastPathConfig, engine_for


class CaptumConfig(FastPathConfig):
    output: Literal["logit", "probability"] = pydantic.Field(
        "logit", description="what is attributed: the target class logit or its softmax probability"
    )


class SaliencyConfig(CaptumConfig):
    absolute: bool = pydantic.Field(True, description="use |d output / d input| (Simonyan et al. 2014) instead of the signed gradient")

    @pydantic.field_validator("precision")
    @classmethod
    def _fp32_only(cls, value: str) -> str:
        if value != "fp32":
            raise ValueError("saliency runs in fp32 only: a single bfloat16 gradient differs from fp32 by ~10% "
                             "(relative L2), beyond the 5% the bf16 paths are held to")
        return value


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


def _output_weights(output: str, target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """d(explained output)/d(logits) per record: one-hot for the logit, p_c (e_c - p) for the probability."""
    def weights(logits: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
        if output == "logit":
            return onehot
        p = torch.softmax(logits, dim=1)
        return p.gather(1, target[:, None]) * (onehot - p)

    return weights


def _explained(output: str, logits: torch.Tensor, target: int) -> torch.Tensor:
    """The explained output (logit or probability of `target`) of logits (N, classes): (N,)."""
    return (torch.softmax(logits, dim=-1) if output == "probability" else logits)[..., target]


class _CaptumExplainer(ecgzoo.Explainer):
    config: CaptumConfig
    #: what computed the last `explain` call's map: the model's fast engine (its class name) where it has
    #: one covering this model and explainer, else "captum" (autograd on the module)
    engine_used: str = ""

    def __init__(self, config: CaptumConfig):
        self.config = config

    @abc.abstractmethod
    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        """Captum attributions (B, leads, T) of `forward` for `target`."""

    per_lead = True

    def explain_leads(
        self,
        model: ecgzoo.EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        """Captum's attributions as they come: (B, leads, T)."""
        target = self.resolve_target(model, x, target, valid_length)
        extra = (valid_length.to(x.device),) if valid_length is not None else ()
        with torch.enable_grad():
            inp = x.detach().clone().requires_grad_(True)
            attr = self._attribute(_forward(model, self.config.output), inp, target, extra, fs)
        return attr.detach().float()

    def explain(
        self,
        model: ecgzoo.EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        target = self.resolve_target(model, x, target, valid_length)
        engine = engine_for(model, self.config, x)
        if engine is not None:
            attr = self._fast(engine, x.detach(), target, valid_length, fs)
            if attr is not None:
                self.engine_used = type(engine).__name__
                return attr.sum(dim=1).float()
        self.engine_used = "captum"
        return self.explain_leads(model, x, target, valid_length, fs=fs).sum(dim=1)

    def _fast(self, engine: Any, x: torch.Tensor, target: torch.Tensor,
              valid_length: torch.Tensor | None, fs: float | None) -> torch.Tensor | None:
        """The same attributions (B, leads, T) through the model's fast engine; None: not offered."""
        return None


class Saliency(_CaptumExplainer):
    """Gradient of the target output w.r.t. each input sample."""

    @property
    def non_negative(self) -> bool:  # type: ignore[override]
        return self.config.absolute

    def _fast(self, engine: Any, x: torch.Tensor, target: torch.Tensor,
              valid_length: torch.Tensor | None, fs: float | None) -> torch.Tensor:
        grad = engine.input_gradient(x, _output_weights(self.config.output, target), valid_length)[1]
        return grad.abs() if self.config.absolute else grad

    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        from captum.attr import Saliency as CaptumSaliency

        return CaptumSaliency(forward).attribute(
            x, target=target, abs=self.config.absolute, additional_forward_args=extra or None
        )


class IntegratedGradients(_CaptumExplainer):
    """Path integral of gradients from the zero signal to the input (Sundararajan et al. 2017)."""

    @property
    def sums_to(self) -> str:  # type: ignore[override]
        """Completeness: the attributions sum to the explained output minus the zero signal's (up to the quadrature)."""
        return f"the class {self.config.output} minus the zero signal's"

    def _fast(self, engine: Any, x: torch.Tensor, target: torch.Tensor,
              valid_length: torch.Tensor | None, fs: float | None) -> torch.Tensor:
        """captum's quadrature (same points and weights); `internal_batch_size` path points per record
        go through the engine as one batch, so memory stays bounded by that many copies of x, or more
        where the engine says a pass holds more (`path_points_per_pass`: a short 12-lead record's 16
        points in one forward and one backward)."""
        from captum.attr._utils.approximation_methods import approximation_parameters

        c = self.config
        step_sizes_fn, alphas_fn = approximation_parameters(c.method)
        step_sizes, alphas = step_sizes_fn(c.n_steps), alphas_fn(c.n_steps)
        per_pass = c.internal_batch_size
        if hasattr(engine, "path_points_per_pass"):
            per_pass = engine.path_points_per_pass(x, per_pass)
        total = torch.zeros_like(x)
        for i in range(0, c.n_steps, per_pass):
            a = torch.tensor(alphas[i:i + per_pass], dtype=x.dtype)
            w = torch.tensor(step_sizes[i:i + per_pass], dtype=x.dtype)
            points = (a[:, None, None, None] * x[None]).flatten(0, 1)  # (steps * B, leads, T), step-major
            vl = None if valid_length is None else valid_length.repeat(len(a))
            grad = engine.input_gradient(points, _output_weights(c.output, target.repeat(len(a))), vl)[1]
            total += (w[:, None, None, None] * grad.view(len(a), *x.shape)).sum(dim=0)
        return total * x  # (input - zero baseline) x path-averaged gradient

    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        from captum.attr import IntegratedGradients as CaptumIG

        c = self.config
        return CaptumIG(forward).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=c.n_steps, method=c.method,
            internal_batch_size=c.internal_batch_size * x.shape[0], additional_forward_args=extra or None,
        )


class Occlusion(_CaptumExplainer):
    """Drop in the target output when a window of the signal is set to zero (Zeiler and Fergus 2014).

    The window spans all leads at once, so its map does not tell leads apart (`per_lead` False).
    """

    per_lead = False

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

    def _fast(self, engine: Any, x: torch.Tensor, target: torch.Tensor,
              valid_length: torch.Tensor | None, fs: float | None) -> torch.Tensor | None:
        """captum's windows and averaging, each window's effect from its receptive field alone
        (`occlusion_logit_changes`) or from batches of occluded copies (`occluded_logits`)."""
        if not (hasattr(engine, "occlusion_logit_changes") or hasattr(engine, "occluded_logits")):
            return None
        window, stride = self._checked_window(x.shape[-1], fs)
        b, leads, t = x.shape
        starts = list(range(0, t - window + stride, stride))[:math.ceil((t - window) / stride) + 1]
        counts = torch.zeros(t)
        for s0 in starts:
            counts[s0:s0 + window] += 1
        logits = engine(x, valid_length)
        out = torch.zeros(b, leads, t)
        for i in range(b):
            vl = None if valid_length is None else valid_length[i:i + 1]
            if hasattr(engine, "occlusion_logit_changes"):
                weights = engine.pooling_weights(1, t, vl)[0]
                occluded = logits[i] + engine.occlusion_logit_changes(x[i], starts, window, weights)
            else:
                occluded = engine.occluded_logits(x[i], starts, window, vl)
            drop = (_explained(self.config.output, logits[i], int(target[i]))
                    - _explained(self.config.output, occluded, int(target[i])))
            for s0, d in zip(starts, drop.tolist(), strict=True):
                out[i, :, s0:s0 + window] += d
        return out / counts.clamp_min(1)

    def _checked_window(self, samples: int, fs: float | None) -> tuple[int, int]:
        window, stride = self.window_samples(fs)
        if window > samples:
            raise ValueError(
                f"explainer 'occlusion': window of {self.config.window_s} s = {window} samples is longer "
                f"than the input ({samples} samples)"
            )
        return window, stride

    def _attribute(self, forward: Callable, x: torch.Tensor, target: torch.Tensor, extra: tuple,
                   fs: float | None) -> torch.Tensor:
        from captum.attr import Occlusion as CaptumOcclusion

        window, stride = self._checked_window(x.shape[-1], fs)
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
