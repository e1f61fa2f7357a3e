"""Explainer interface: one attribution value per input sample for a target class."""

from __future__ import annotations

import abc

import torch

from ecgzoo.model import EcgModel


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
    if config is not None and "fs" in type(config).model_fields and config.fs is None:
        config.fs = float(fs)
    return explainer
