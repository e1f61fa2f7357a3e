"""Throwaway plugins used by the core tests: a tiny CAM model and a scaling preprocessor."""

from __future__ import annotations

import pydantic
import torch
from torch import nn

import ecgzoo


class ToyConfig(ecgzoo.ModelConfig):
    num_classes: int = pydantic.Field(3, ge=2, description="number of output classes")
    width: int = pydantic.Field(4, ge=1, description="channels of the feature map")


class ToyModel(ecgzoo.EcgModel):
    has_cam = True
    gradcam_layer = "conv"

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config, self.num_classes, self.in_leads = config, config.num_classes, config.in_leads
        self.conv = nn.Conv1d(config.in_leads, config.width, 5, padding=2)
        self.head = nn.Linear(config.width, config.num_classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class ScaleConfig(ecgzoo.PluginConfig):
    factor: float = pydantic.Field(2.0, description="multiply the signal by this")


class Scale(ecgzoo.Preprocessor):
    def __init__(self, config: ScaleConfig):
        self.config = config

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        return record.replace(signal=record.signal * self.config.factor)


@ecgzoo.hookimpl
def ecgzoo_models():
    return [ecgzoo.PluginSpec("toy", ToyModel, ToyConfig, summary="tiny CAM model", aliases=("toy-cam",))]


@ecgzoo.hookimpl
def ecgzoo_preprocessors():
    return [ecgzoo.PluginSpec("scale", Scale, ScaleConfig, summary="multiply by a constant")]
