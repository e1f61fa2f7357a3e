"""`examplenet`: a small convolutional ECG classifier with a native class activation map.

The module is the plugin: ecgzoo finds it through the entry point in pyproject.toml and calls
its `@ecgzoo.hookimpl` functions. A plugin imports `ecgzoo` and `ecgzoo.plugin_api` only.
"""

from __future__ import annotations

import pydantic
import torch
from torch import nn

import ecgzoo


class ExampleNetConfig(ecgzoo.ModelConfig):  # brings num_classes and in_leads, set from the data by `ecgzoo run`
    width: int = pydantic.Field(16, ge=1, description="channels of the feature map")
    kernel: int = pydantic.Field(9, ge=1, description="length of each convolution kernel in samples (odd keeps the length)")


class ExampleNet(ecgzoo.EcgModel):
    """Three strided convolutions and a bias-free linear head; `ecgzoo.EcgModel` pools the features over the
    recorded part (padding left out), so the logits are the mean of the class activation map."""

    has_cam = True  # the map is exact: the logits are its mean
    gradcam_layer = "body"

    def __init__(self, config: ExampleNetConfig):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, config.num_classes, config.in_leads
        w, k = config.width, config.kernel
        self.body = nn.Sequential(
            nn.Conv1d(config.in_leads, w, k, stride=2, padding=k // 2), nn.BatchNorm1d(w), nn.ReLU(),
            nn.Conv1d(w, w, k, stride=2, padding=k // 2), nn.BatchNorm1d(w), nn.ReLU(),
            nn.Conv1d(w, w, k, stride=2, padding=k // 2), nn.BatchNorm1d(w), nn.ReLU(),
        )
        self.head = nn.Linear(w, config.num_classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@ecgzoo.hookimpl
def ecgzoo_models() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("examplenet", ExampleNet, ExampleNetConfig, summary="example package: three convolutions, exact CAM")]
