"""Explainer interface: one attribution value per input sample for a target class."""

from __future__ import annotations

import abc
from typing import Any, Literal

import pydantic
import torch

from ecgzoo.core.model import EcgModel
from ecgzoo.core.plugin_spec import PluginConfig


class FastPathConfig(PluginConfig):
    """Options of explainers that can run through a model's fast engine (`EcgModel.fast_engine`)."""

    fast: bool = pydantic.Field(
        True, description="use the model's fast exact engine where it has one (CNNv7, XResNet1d on the CPU); false: autograd on the module"
    )
    precision: Literal["fp32", "bf16"] = pydantic.Field(
        "fp32", description="bf16: the fast engine's matrix products in bfloat16 (CPUs with native bf16; docs/explainers.md: its error)"
    )


def engine_for(model: EcgModel, config: Any, x: torch.Tensor) -> Any | None:
    """The model's fast engine for this input when the config allows one, else None."""
    if not getattr(config, "fast", False) or x.device.type != "cpu" or model.training:
        return None
    dtype = torch.bfloat16 if getattr(config, "precision", "fp32") == "bf16" else torch.float32
    return model.fast_engine(dtype)


class Explainer(abc.ABC):
    """What the framework needs from an explainer plugin, and what it promises in return.

    Who calls what, when:

    * `supports(model)` is called by `ecgzoo run` before any data is read or any epoch trained
      (on a model built with the run's options) and by `ecgzoo explain` before any input is
      read; a reason (a string) stops the command with that reason. `explain` may still raise
      for inputs it cannot handle (too short for an occlusion window, say).
    * `explain(model, x, target, valid_length, fs=...)` is called with the model in eval mode and
      on the device of `x`; gradients may be taken, weights are never changed. `ecgzoo run`,
      `ecgzoo explain`, `compare_explainers` and `ecgzoo.testing.check_explainer_plugin` always
      pass `fs`, the sampling rate of `x` in Hz (the run's rate after preprocessing).

    Conventions every explainer keeps (`ecgzoo.testing.check_explainer_plugin` checks them):

    * shape: a float32 tensor (B, T) on `x`'s device, T = x.shape[-1], aligned sample for
      sample with the input (a map computed on a coarser feature map is interpolated to T).
      Multi-lead inputs: the per-lead attributions are summed over leads.
    * target: `target` (B class indices, or one for the whole batch) or, when None, the class
      the model predicts for each element.
    * sign: positive values are evidence *for* the target class. An explainer whose values are
      clipped or absolute (Grad-CAM with `relu`, saliency with `absolute`, CAM with
      `positive_only`) says so with `non_negative` = True; the others are signed.
    * scale and units: raw, never normalised per record (figures normalise for display), in
      units of the target logit (or probability, for captum's `output="probability"`):
      for a model that is linear in its input, the values of `cam` are T times each sample's
      contribution to the logit (their time-mean is the logit), those of `integrated-gradients`,
      `gradcam` (with relu off) and `occlusion` (one-sample windows) are each sample's
      contribution (they sum to the logit minus the logit of the zero signal), and `saliency`
      is d logit / d x(t) per input unit (mV). `tests/test_explainer_contract.py` checks each.
    * drawn unit (`sums_to`): the PNG pictures draw every map as a share per second
      (`ecgzoo.report.map_units`). An explainer whose map's recorded part sums, for every model it
      supports, to one quantity names it in `sums_to` (`cam`: "the class logit", since the CAM's
      time-mean is the logit; `integrated-gradients`: "the class logit minus the zero signal's", by
      completeness; on a model with a `logit_offset` the CAM's sum is the logit minus it, and the
      pictures say so); its maps are drawn in % of that quantity per second. `sums_to` None (clipped
      or absolute maps, gradients, occlusion, whose sums hold only for linear models): % of the
      map's total |value| per second. `tests/test_map_units.py` checks the stated sums.
    """

    #: True when every value is >= 0 (clipped at zero or absolute): no sign information
    non_negative: bool = False

    #: what the map's recorded part sums to for every supported model ("the class logit"), or None;
    #: decides the unit the map is drawn in (`ecgzoo.report.map_units.map_share`)
    sums_to: str | None = None

    def supports(self, model: EcgModel) -> str | None:
        """None when `explain` can explain this model; otherwise the reason, one sentence that
        names the model and, where there is one, the explainer to use instead."""
        return None

    @abc.abstractmethod
    def explain(
        self,
        model: EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        """Attribution (B, T) for the target class of each batch element of `x` (B, leads, T) sampled at `fs` Hz."""

    #: True when `explain_leads` tells the leads apart; False: one map shared by every lead
    per_lead: bool = False

    def explain_leads(
        self,
        model: EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        """Attribution (B, leads, T), for drawing one map per lead (`ecgzoo.report.figures_leads`).

        The default repeats the (B, T) map for every lead: right for maps built from feature maps
        that mix the leads (CAM, Grad-CAM). Explainers that can tell leads apart override this,
        set `per_lead = True`, and keep `explain` equal to the sum over leads.
        """
        attr = self.explain(model, x, target, valid_length, fs=fs)
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


class UnsupportedModelError(TypeError):
    """An explainer was asked to explain a model it does not support (`Explainer.supports` gave the reason)."""


def check_supports(explainer: Explainer, model: EcgModel, name: str | None = None) -> None:
    """Raise UnsupportedModelError with the explainer's reason when it does not support `model`."""
    reason = explainer.supports(model)
    if reason:
        label = name or getattr(explainer, "plugin_name", None) or type(explainer).__name__
        raise UnsupportedModelError(f"explainer {label!r} cannot explain model {type(model).__name__}: {reason}")
