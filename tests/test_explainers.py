"""Explainer plugins: CAM vs hand computation, Grad-CAM on known answers, alignment, sanity checks."""

from __future__ import annotations

import pytest
import torch
import toy_plugins
from torch import nn

import ecgzoo
from ecgzoo.testing import check_explainer_plugin


@pytest.fixture
def toy() -> ecgzoo.EcgModel:
    ecgzoo.register_plugin(toy_plugins)
    torch.manual_seed(0)
    return ecgzoo.create_model("toy", num_classes=3, width=6).eval()


class NoCamConfig(ecgzoo.ModelConfig):
    pass


class NoCamModel(ecgzoo.EcgModel):
    """A conv model with a biased head: no native CAM, but a Grad-CAM layer."""

    gradcam_layer = "conv"

    def __init__(self, config: NoCamConfig | None = None):
        super().__init__()
        self.config = config or NoCamConfig(num_classes=2)
        self.num_classes, self.in_leads = self.config.num_classes, self.config.in_leads
        self.conv = nn.Conv1d(self.in_leads, 4, 3, padding=1)
        self.head = nn.Linear(4, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def test_cam_equals_hand_computation_from_head_weights_and_feature_map(toy):
    x = torch.randn(2, 1, 300)
    target = torch.tensor([2, 0])
    attr = ecgzoo.create_explainer("cam").explain(toy, x, target=target)
    with torch.no_grad():
        features = torch.relu(toy.conv(x))  # (B, C, T), computed by hand from the toy's layers
        w = toy.head.weight  # (classes, C)
        expected = torch.stack([(w[c][:, None] * features[b]).sum(0) for b, c in enumerate(target.tolist())])
        logits = toy(x)
    assert attr.shape == (2, 300)
    assert torch.allclose(attr, expected, atol=1e-5)
    # the map's time-mean is the logit of its class (GAP + bias-free head)
    assert torch.allclose(attr.mean(dim=1), logits[torch.arange(2), target], atol=1e-5)


def test_cam_conformance_default_target_is_predicted(toy):
    attr = check_explainer_plugin("cam", toy, torch.randn(3, 1, 200))
    assert attr.shape == (3, 200)


def test_cam_positive_only_clips_at_zero(toy):
    x = torch.randn(1, 1, 200)
    raw = ecgzoo.create_explainer("cam").explain(toy, x)
    clipped = ecgzoo.create_explainer("cam", positive_only=True).explain(toy, x)
    assert torch.equal(clipped, raw.clamp_min(0))


def test_cam_refuses_model_without_native_map_and_suggests_gradcam():
    with pytest.raises(TypeError, match=r"NoCamModel.*gradcam"):
        ecgzoo.create_explainer("cam").explain(NoCamModel().eval(), torch.randn(1, 1, 50))


def test_cam_rejects_out_of_range_target(toy):
    with pytest.raises(ValueError, match="0..2"):
        ecgzoo.create_explainer("cam").explain(toy, torch.randn(1, 1, 50), target=torch.tensor([5]))
