"""`gradcam`: Grad-CAM (Selvaraju et al. 2017) on the layer a model declares, upsampled to the input."""

from __future__ import annotations

import pydantic
import torch
import torch.nn.functional as F

import ecgzoo


class GradCamConfig(ecgzoo.PluginConfig):
    layer: str = pydantic.Field(
        "", description="dotted name of the sub-module to hook; empty: the model's declared gradcam_layer"
    )
    relu: bool = pydantic.Field(True, description="keep only positive evidence (ReLU of the weighted sum), as in the paper")


class GradCam(ecgzoo.Explainer):
    """ReLU(sum_k alpha_k A_k(t)) with alpha_k the time-mean gradient of the target logit w.r.t. A_k."""

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
        captured: list[torch.Tensor] = []

        def keep(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            captured.append(output)

        handle = layer.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                inp = x.detach().clone().requires_grad_(True)  # activations join the graph even with frozen weights
                logits = model(inp, valid_length=valid_length)
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
                score = logits.gather(1, target[:, None]).sum()
                (grad,) = torch.autograd.grad(score, activation)
        finally:
            handle.remove()
        weights = grad.mean(dim=-1, keepdim=True)  # (B, C, 1)
        cam = (weights * activation).sum(dim=1, keepdim=True).detach()  # (B, 1, T')
        if self.config.relu:
            cam = torch.relu(cam)
        if cam.shape[-1] != x.shape[-1]:
            cam = F.interpolate(cam, size=x.shape[-1], mode="linear", align_corners=False)
        return cam[:, 0].float()


@ecgzoo.hookimpl
def ecgzoo_explainers() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("gradcam", GradCam, GradCamConfig, aliases=("grad-cam",),
                              summary="Grad-CAM on the model's declared layer, upsampled to the input")]
