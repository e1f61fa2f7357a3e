"""cnnv7-local / cnnv7-s8-rf2: the map is local (one CAM value sees t +- cam_radius and nothing else),
the record-wide context enters the logits only as a per-class bias: logits = masked mean of the CAM on
the feature grid + logit_offset."""

from __future__ import annotations

import pytest
import torch

import ecgzoo
from ecgzoo.core.model import masked_mean
from ecgzoo.models.model_facts import receptive_field
from ecgzoo.testing import check_model_plugin

TINY = {"filters": 4, "conv_a": 4, "conv_b": 4, "context_filters": 3}


def _model(name: str = "cnnv7-s8-rf2", seed: int = 0, **options) -> ecgzoo.EcgModel:
    """A small random model whose context head is random too (it starts at zero: the bias would be 0)."""
    torch.manual_seed(seed)
    sizes = TINY if name != "cnnv7-s8" else {k: v for k, v in TINY.items() if k != "context_filters"}
    model = ecgzoo.create_model(name, num_classes=3, **{**sizes, **options}).eval()
    if hasattr(model, "context_head"):
        with torch.no_grad():
            model.context_head.weight.normal_()
            model.context_head.bias.normal_()
    return model


def _input_gradient(model: ecgzoo.EcgModel, n: int, output) -> torch.Tensor:
    """|d output(model, x) / dx| over the samples of one random input of n samples."""
    x = torch.randn(1, 1, n, generator=torch.Generator().manual_seed(1), requires_grad=True)
    output(model, x).backward()
    return x.grad[0, 0].abs()


def _cam_value(t: int, c: int = 1):
    return lambda model, x: model.forward_with_cam(x)[1][0, c, t]


def test_conformance_kit():
    check_model_plugin("cnnv7-s8-rf2", length=600, **TINY)
    check_model_plugin("cnnv7-local", length=600, **TINY)


def test_the_variant_is_cnnv7_s8_with_capped_dilations_and_a_591_sample_cam_field():
    model = ecgzoo.create_model("cnnv7-s8-rf2", num_classes=4)
    shipped = ecgzoo.create_model("cnnv7-s8", num_classes=4)
    for key in ("stem_stride", "filters", "conv_a", "conv_b", "norm", "dropout", "masked_pooling", "kernel_size"):
        assert getattr(model.config, key) == getattr(shipped.config, key), key
    assert model.config.dilations == [1, 2, 4, 8, 16, 32, 1, 2, 4]
    # R = sum(d) + 2 = 72 positions at stride 8: a feature sees 8 * 72 + 8 either side, a CAM value 7 more
    assert model.cam_radius == 8 * 72 + 15 == 591
    assert receptive_field(model) == 2 * (8 * 72 + 8) + 1 == 1169


@pytest.mark.parametrize("t", [1496, 1497, 1503])  # on the stride-8 grid, just after it, just before the next
def test_one_cam_value_depends_only_on_its_stated_field(t):
    # 16 channels: a path to the field's edge dies only where every channel's ReLU is off on it
    model = _model(filters=16, conv_a=16, conv_b=16)
    r = model.cam_radius
    grad = _input_gradient(model, 3000, _cam_value(t))
    seen = grad.nonzero().flatten()
    assert seen.min() >= t - r and seen.max() <= t + r
    # tight: off the grid the field reaches the stated radius on one side
    if t % 8:
        assert max(t - int(seen.min()), int(seen.max()) - t) == r
    # the plain cnnv7-s8 (dilations to 512) sees far beyond: this probe can fail
    wide = _input_gradient(_model("cnnv7-s8"), 3000, _cam_value(t))
    assert (wide[: t - r] > 0).any() or (wide[t + r + 1:] > 0).any()


def test_the_logits_see_the_whole_record_through_the_bias_only():
    model = _model()
    t, n = 400, 3000
    logit_grad = _input_gradient(model, n, lambda m, x: m(x)[0, 1])
    bias_grad = _input_gradient(model, n, lambda m, x: m.logit_offset(x)[0, 1])
    far = slice(t + model.cam_radius + 1, None)
    assert (_input_gradient(model, n, _cam_value(t))[far] == 0).all()
    assert (bias_grad[far] > 0).any() and (logit_grad[far] > 0).any()


def test_logits_are_the_masked_cam_mean_on_the_feature_grid_plus_the_bias():
    model = _model(masked_pooling=True)
    x = torch.randn(2, 1, 803, generator=torch.Generator().manual_seed(3))
    vl = torch.tensor([803, 400])
    with torch.no_grad():
        logits, cam = model.forward_with_cam(x, vl)
        maps = torch.einsum("ck,bkt->bct", model.head.weight, model.forward_features(x))
        bias = model.logit_offset(x, vl)
        assert torch.equal(model(x, vl), logits)
    assert maps.shape[-1] == 101  # ceil(803 / 8)
    torch.testing.assert_close(masked_mean(maps, vl, 803) + bias, logits, atol=1e-5, rtol=1e-5)
    assert bias.abs().min() > 1e-3  # the bias is there: the plain mean alone is not the logit
    # one record's bias is its own (eval mode: nothing pooled across the batch) and pools its valid part
    with torch.no_grad():
        torch.testing.assert_close(model.logit_offset(x[1:], vl[1:])[0], bias[1], atol=1e-5, rtol=1e-5)
        assert (model.logit_offset(x[1:], None)[0] - bias[1]).abs().max() > 1e-3
    # the CAM explainer returns the same local map
    target = torch.tensor([0, 2])
    explained = ecgzoo.create_explainer("cam").explain(model, x, target, vl)
    torch.testing.assert_close(explained, cam[torch.arange(2), target])


def test_gradcam_on_the_local_model_is_relu_cam_over_the_feature_length():
    """The bias enters the logits, not conv B's output: Grad-CAM's weights are w / T' as for plain CNNv7."""
    model = _model()
    x = torch.randn(2, 1, 243, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([1, 0])
    cam = ecgzoo.create_explainer("cam").explain(model, x, target)
    plain = ecgzoo.create_explainer("gradcam", relu=False, fast=False).explain(model, x, target)
    torch.testing.assert_close(plain, cam / 31, atol=1e-6, rtol=1e-5)


def test_unstrided_cam_radius_matches_the_measured_field():
    model = _model("cnnv7-local", stem_stride=1, dilations=[2, 4])
    assert 2 * model.cam_radius + 1 == receptive_field(model) == 2 * (2 + 4 + 3) + 1
    assert model.fast_engine() is None  # the fast engines would drop the bias


def test_facts_state_the_cam_field():
    facts = ecgzoo.plugin_info("cnnv7-s8-rf2", kind="model")["facts"]
    assert facts["CAM value field"].startswith("t +- 591 samples (+-1.97 s at 300 Hz)")
    assert facts["receptive field"].startswith("1,169 samples (3.90 s")
    assert "[8, 32, 128, 512]" in facts["rhythm context"]
