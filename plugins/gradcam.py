"""`gradcam`: Grad-CAM (Selvaraju et al. 2017) on the layer a model declares, upsampled to the input.

On a CAM model (global average pooling and a bias-free linear head on the hooked layer, as CNNv7's
and DeepECG-13's declared layers) Grad-CAM IS the class activation map: the gradient of logit c
w.r.t. A_k(t) is w[c, k] / T' at every position (masked pooling too: its time-mean is the same), so
Grad-CAM = relu(CAM) / T', T' the feature map's length (the input length at stride 1); with
`relu=False` it is CAM / T'. On a strided model the ReLU is taken on the feature grid before
upsampling (tests/test_cam_alignment.py checks both). Its faithfulness and its ranking of the input
are then those of `cam`: a table listing both lists one explainer twice.
"""

from __future__ import annotations

import pydantic
import torch

import ecgzoo
from ecgzoo.plugin_api import FastPathConfig, engine_for


class GradCamConfig(FastPathConfig):
    layer: str = pydantic.Field(
        "", description="dotted name of the sub-module to hook; empty: the model's declared gradcam_layer"
    )
    relu: bool = pydantic.Field(True, description="keep only positive evidence (ReLU of the weighted sum), as in the paper")


class GradCam(ecgzoo.Explainer):
    """ReLU(sum_k alpha_k A_k(t)) with alpha_k the time-mean gradient of the target logit w.r.t. A_k.

    On a CAM model's declared layer this is relu(CAM) / T' exactly (module docstring), computed from
    the CAM without a backward pass: through the model's fast engine where it has one, else from the
    hooked layer's output. `engine_used` names what ran in the last `explain` call.
    """

    #: what computed the last `explain` call's map: the fast engine's class name, or "autograd"
    engine_used: str = ""

    def __init__(self, config: GradCamConfig):
        self.config = config

    @property
    def non_negative(self) -> bool:  # type: ignore[override]
        return self.config.relu

    def supports(self, model: ecgzoo.EcgModel) -> str | None:
        name = self.config.layer or model.gradcam_layer
        if not name:
            return (f"model {type(model).__name__} declares no gradcam_layer; "
                    f"give one with the option layer=<dotted sub-module name>")
        try:
            model.get_submodule(name)
        except AttributeError:
            return f"model {type(model).__name__} has no sub-module {name!r}"
        return None

    def _layer(self, model: ecgzoo.EcgModel) -> torch.nn.Module:
        name = self.config.layer or model.gradcam_layer
        reason = self.supports(model)
        if reason:  # no layer declared: the model's kind is wrong; a wrong name: the option's value is
            raise (ValueError if name else TypeError)(f"explainer 'gradcam': {reason}")
        return model.get_submodule(name)

    def explain(
        self,
        model: ecgzoo.EcgModel,
        x: torch.Tensor,
        target: torch.Tensor | None = None,
        valid_length: torch.Tensor | None = None,
        fs: float | None = None,
    ) -> torch.Tensor:
        layer = self._layer(model)
        declared = not self.config.layer or self.config.layer == model.gradcam_layer
        engine = engine_for(model, self.config, x) if declared and model.has_cam else None
        if engine is not None:  # the engine's CAM is built from the declared layer's output
            with torch.no_grad():
                logits, maps = engine.forward_with_feature_cam(x, valid_length)  # on the feature grid (B, K, T')
            target = logits.argmax(dim=1) if target is None else self.resolve_target(model, x, target, valid_length)
            cam = maps[torch.arange(x.shape[0]), target][:, None] / maps.shape[-1]
            self.engine_used = type(engine).__name__
        else:
            cam = self._autograd_cam(model, layer, x, target, valid_length)
            self.engine_used = "autograd"
        if self.config.relu:
            cam = torch.relu(cam)
        return model.upsample_map(cam, x.shape[-1])[:, 0].float()

    def _autograd_cam(self, model: ecgzoo.EcgModel, layer: torch.nn.Module, x: torch.Tensor,
                      target: torch.Tensor | None, valid_length: torch.Tensor | None) -> torch.Tensor:
        """sum_k alpha_k A_k(t) (B, 1, T') from the hooked layer's output and the target logit's gradient.

        On a GAP + bias-free-head model whose hooked layer is the feature map itself, alpha_k is
        w[c, k] / T' exactly (masked or not, the gradient's time-mean is that), so no backward runs.
        """
        captured: list[torch.Tensor] = []

        def keep(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            captured.append(output)

        handle = layer.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                inp = x.detach().clone().requires_grad_(True)  # activations join the graph even with frozen weights
                if type(model).forward is ecgzoo.EcgModel.forward:  # the features are what the head pools
                    features = model.forward_features(inp)
                    logits = model.forward_head(features, valid_length, x.shape[-1])
                else:
                    features, logits = None, model(inp, valid_length=valid_length)
                if not captured:
                    raise RuntimeError(f"explainer 'gradcam': layer {layer!r} was not called in the forward pass")
                activation = captured[-1]
                if activation.dim() != 3:
                    raise ValueError(
                        f"explainer 'gradcam': layer output must be (B, C, T'), got shape {tuple(activation.shape)}"
                    )
                if target is None:
                    target = logits.argmax(dim=1)
                else:
                    target = self.resolve_target(model, x, target, valid_length)
                if model.has_cam and activation is features and self.config.fast:
                    grad = model.head.weight[target][:, :, None].expand_as(activation) / activation.shape[-1]
                else:
                    score = logits.gather(1, target[:, None]).sum()
                    (grad,) = torch.autograd.grad(score, activation)
        finally:
            handle.remove()
        weights = grad.mean(dim=-1, keepdim=True)  # (B, C, 1)
        return (weights * activation).sum(dim=1, keepdim=True).detach()  # (B, 1, T')


@ecgzoo.hookimpl
def ecgzoo_explainers() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("gradcam", GradCam, GradCamConfig, aliases=("grad-cam",),
                              summary="Grad-CAM on the model's declared layer, upsampled to the input")]
