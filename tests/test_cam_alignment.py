"""Maps of strided models sit where their receptive field is centred, and Grad-CAM on a CAM model is
relu(CAM) / T' (T' the feature map's length): the two are one explainer there."""

from __future__ import annotations

import pytest
import torch

import ecgzoo


def impulse_cnnv7(stride: int, name: str = "cnnv7") -> ecgzoo.EcgModel:
    """A one-channel CNNv7 set by hand: the strided stem is a symmetric triangle, every later layer passes
    its input through (centre tap 1, gate 0), so feature t is the triangle-weighted input around stride*t.
    (cnnv7-local: its context path's weights are zero too, so its logit bias is 0.)"""
    model = ecgzoo.create_model(name, num_classes=2, filters=1, dilations=[2], conv_a=1, conv_b=1,
                                stem_stride=stride).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        taps = torch.arange(2 * stride + 1, dtype=torch.float32)
        model.input_conv.weight.copy_((1 - (taps - stride).abs() / (stride + 1))[None, None])
        block = model.blocks[0]
        block.filter_conv.weight[0, 0, 1] = 1.0
        block.skip_conv.weight.fill_(1.0)
        model.conv_a[0].weight[0, 0, 1] = 1.0
        model.conv_b[0].weight[0, 0, 1] = 1.0
        model.head.weight[0] = 1.0  # class 0 sees the feature; class 1 nothing
    return model


@pytest.mark.parametrize("fast", [True, False])  # the model's fast engine (where it has one) and its own forward/hook
@pytest.mark.parametrize("model_name", ["cnnv7", "cnnv7-local"])
@pytest.mark.parametrize("stride", [4, 8])
@pytest.mark.parametrize("name", ["cam", "gradcam"])
def test_map_of_a_strided_model_peaks_at_the_impulse(name, stride, model_name, fast):
    model = impulse_cnnv7(stride, model_name)
    explainer = ecgzoo.create_explainer(name, fast=fast)
    for at in (0, 8 * stride, 40 * stride, 50 * stride):  # on the stem's grid; the last one ends the record
        x = torch.zeros(1, 1, 50 * stride + 1)
        x[0, 0, at] = 1.0
        attr = explainer.explain(model, x, torch.tensor([0]))[0]
        assert int(attr.argmax()) == at, f"{name} stride {stride}: impulse at {at}, map peaks at {int(attr.argmax())}"
        # symmetric about the impulse: what lies at at - d equals what lies at at + d (inside the record)
        d = torch.arange(1, 2 * stride)
        inside = (at - d >= 0) & (at + d < x.shape[-1])
        assert torch.allclose(attr[at - d[inside]], attr[at + d[inside]], atol=1e-6)
    engine = fast and model.fast_engine() is not None  # cnnv7-local has none: its logits add a context bias
    assert engine == (fast and model_name == "cnnv7")
    assert explainer.engine_used == ("FastCNNv7" if engine else "model" if name == "cam" else "autograd")


def test_unstrided_and_evenly_pooled_maps_keep_their_grid():
    model = impulse_cnnv7(1)
    assert model.feature_grid is None and impulse_cnnv7(8).feature_grid == (8, 0.0)
    maps = torch.arange(4.0)[None, None]
    # no declared grid: position t centred on (t + 1/2) T / T' - 1/2, as F.interpolate(align_corners=False)
    assert model.upsample_map(maps, 8)[0, 0].tolist() == [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3]
    assert impulse_cnnv7(2).upsample_map(maps, 8)[0, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]


def _random_cnnv7(**kw) -> ecgzoo.EcgModel:
    torch.manual_seed(0)
    return ecgzoo.create_model("cnnv7", num_classes=3, filters=6, dilations=[2, 4], conv_a=8, conv_b=12, **kw).eval()


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_gradcam_is_relu_cam_over_the_feature_length(fast, masked):
    model = _random_cnnv7(masked_pooling=masked)
    x = torch.randn(2, 1, 240, generator=torch.Generator().manual_seed(1))
    vl = torch.tensor([240, 170]) if masked else None
    target = torch.tensor([0, 2])
    cam = ecgzoo.create_explainer("cam").explain(model, x, target, vl)
    # fast=False takes the real gradient of the logit (autograd), not the shortcut w / T'
    grad = ecgzoo.create_explainer("gradcam", fast=fast).explain(model, x, target, vl)
    assert torch.allclose(grad, torch.relu(cam) / 240, atol=1e-6)
    assert (cam < 0).any() and (cam > 0).any()  # the ReLU does cut something


def test_strided_gradcam_is_cam_over_the_feature_length():
    model = _random_cnnv7(stem_stride=8)
    x = torch.randn(2, 1, 243, generator=torch.Generator().manual_seed(2))
    t_feat = model.forward_features(x).shape[-1]
    assert t_feat == 31
    target = torch.tensor([1, 0])
    cam = ecgzoo.create_explainer("cam").explain(model, x, target)
    plain = ecgzoo.create_explainer("gradcam", relu=False, fast=False).explain(model, x, target)
    assert torch.allclose(plain, cam / t_feat, atol=1e-6)
    # with the ReLU, Grad-CAM clips on the feature grid, then upsamples: relu(CAM) / T' on that grid
    clipped = ecgzoo.create_explainer("gradcam", fast=False).explain(model, x, target)
    with torch.no_grad():
        feats = model.forward_features(x)
        cam_feat = torch.einsum("ck,bkt->bct", model.head.weight, feats)[torch.arange(2), target][:, None]
    assert torch.allclose(clipped, model.upsample_map(torch.relu(cam_feat) / t_feat, 243)[:, 0], atol=1e-6)
