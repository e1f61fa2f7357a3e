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
    return [ecgzoo.PluginSpec("toy-scale", Scale, ScaleConfig, summary="multiply by a constant")]


class GatedConfig(ecgzoo.PluginConfig):
    records: int = pydantic.Field(12, ge=1, description="synthetic records (as the synthetic dataset)")
    stop_at: int = pydantic.Field(3, ge=0, description="index of the record whose load waits at the gate")
    gate: str = pydantic.Field("", description="file path: at record stop_at, write GATE.reached and wait for GATE")
    cache_dir: str | None = pydantic.Field(None, description="cache folder for prepare()")


class GatedDataset(ecgzoo.Dataset):
    """Synthetic records whose loading stops at a known record until a file appears.

    A test starts a process that loads these records, waits for `GATE.reached`, and then
    kills the process at exactly that point (no timing guess): the process is inside
    `prepare()` with some records written to its partial cache entry.
    """

    def __init__(self, config: GatedConfig) -> None:
        self.config = config
        self.inner = ecgzoo.get_dataset("synthetic", records=config.records, seconds=4.0)
        self.classes = self.inner.classes
        self.cache_dir = config.cache_dir

    def record_ids(self) -> list[str]:
        return self.inner.record_ids()

    def label(self, record_id: str) -> str:
        return self.inner.label(record_id)

    def load(self, record_id: str) -> ecgzoo.Record:
        import pathlib
        import time

        if self.config.gate and self.record_ids().index(record_id) == self.config.stop_at:
            gate = pathlib.Path(self.config.gate)
            pathlib.Path(f"{gate}.reached").write_text("waiting")
            for _ in range(1200):  # at most 60 s, then carry on
                if gate.exists():
                    break
                time.sleep(0.05)
        return self.inner.load(record_id)


@ecgzoo.hookimpl
def ecgzoo_datasets():
    return [ecgzoo.PluginSpec("toy-gated", GatedDataset, GatedConfig, summary="synthetic records that wait at a gate")]
