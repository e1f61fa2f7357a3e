"""Fast explainer paths compute what the slow ones compute: CNNv7's engine (GEMM layout, hand-written
input gradient, receptive-field occlusion) against autograd and captum on the eager model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ecgzoo
from ecgzoo.models.model_facts import receptive_field
from ecgzoo_plugins.cnnv7_fast import FastCNNv7

TINY = {"filters": 6, "conv_a": 8, "conv_b": 12}


def tiny_cnnv7(**kw) -> ecgzoo.EcgModel:
    torch.manual_seed(0)
    return ecgzoo.create_model("cnnv7-small", **{**TINY, "num_classes": 3, **kw}).eval()


EXPLAINERS = [
    ("saliency", {}),
    ("integrated-gradients", {"n_steps": 8, "internal_batch_size": 3}),
    ("occlusion", {"fs": 100, "window_s": 0.3, "stride_s": 0.2}),
    ("gradcam", {}),
    ("cam", {}),
]


@pytest.mark.parametrize("name,opts", EXPLAINERS, ids=[n for n, _ in EXPLAINERS])
@pytest.mark.parametrize("masked,output", [(False, "logit"), (True, "probability")])
def test_engine_path_equals_autograd_and_captum(name, opts, masked, output):
    model = tiny_cnnv7(in_leads=2, dilations=[1, 2, 4, 8], masked_pooling=masked)
    torch.manual_seed(1)
    x = torch.randn(2, 2, 300)
    vl = torch.tensor([300, 211]) if masked else None
    if name not in ("cam", "gradcam"):
        opts = {**opts, "output": output}
    fast = ecgzoo.create_explainer(name, **opts).explain(model, x, valid_length=vl)
    slow = ecgzoo.create_explainer(name, fast=False, **opts).explain(model, x, valid_length=vl)
    assert fast.shape == (2, 300)
    scale = slow.abs().max().item()
    if name == "occlusion":  # drops are differences of two outputs: float32 rounding of the output's size
        with torch.no_grad():
            scale = max(scale, 1.0 if output == "probability" else model(x, valid_length=vl).abs().max().item())
    torch.testing.assert_close(fast, slow, atol=1e-6 * scale + 1e-9, rtol=1e-4)


def test_input_gradient_equals_autograd_on_the_paper_dilations():
    model = tiny_cnnv7()
    x = torch.randn(2, 1, 1500, requires_grad=True)
    target = torch.tensor([2, 0])
    (expected,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    logits, grad = FastCNNv7(model).input_gradient(
        x.detach(), lambda lg: torch.nn.functional.one_hot(target, 3).float())
    torch.testing.assert_close(logits, model(x).detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grad, expected, atol=1e-7, rtol=1e-4)


def test_receptive_field_occlusion_equals_full_recomputation():
    """Each window's logit change, recomputed on its receptive field only, against occluding the input
    and running the whole eager model; windows at both ends and one running past the end."""
    model = tiny_cnnv7(in_leads=2)  # the paper's dilations 2..512: radius 1,025 samples
    torch.manual_seed(2)
    x = torch.randn(2, 3000)
    width, starts = 120, [0, 5, 900, 1450, 2880, 2950]
    changes = FastCNNv7(model).occlusion_logit_changes(x, starts, width, torch.full((3000,), 1 / 3000))
    with torch.no_grad():
        base = model(x[None])[0]
        expected = []
        for s in starts:
            occluded = x.clone()
            occluded[:, s:s + width] = 0
            expected.append(model(occluded[None])[0] - base)
    torch.testing.assert_close(changes, torch.stack(expected), atol=2e-6, rtol=1e-4)


def test_declared_receptive_radius_matches_the_measured_receptive_field():
    for kw in ({}, {"kernel_size": 5, "dilations": [1, 3, 9]}):
        model = tiny_cnnv7(**kw)
        assert receptive_field(model) == 2 * model.receptive_radius + 1


def test_engine_only_for_the_exact_eval_mode_cnnv7():
    model = tiny_cnnv7()
    assert isinstance(model.fast_engine(), FastCNNv7)
    assert model.train().fast_engine() is None

    class Changed(type(model)):
        def forward_features(self, x):
            return super().forward_features(x) * 2

    changed = Changed(model.config).eval()
    assert changed.fast_engine() is None

    class ChangedTrunk(type(model)):  # the feature map's second half changed, forward_features inherited
        def feature_map(self, skips):
            return super().feature_map(skips) * 2

    assert ChangedTrunk(model.config).eval().fast_engine() is None
    assert ecgzoo.create_model("deepecg13", num_classes=3).eval().fast_engine() is None
    strided = tiny_cnnv7(stem_stride=2)  # strided and batch-normalised layouts: tests/test_cnnv7_strided_engine.py
    # stem: 2 samples; the 9 blocks (dilations sum to 1022), conv A and conv B: 1 step of 2 samples per unit
    assert isinstance(strided.fast_engine(), FastCNNv7) and strided.receptive_radius == 2 + 2 * (1022 + 2)


class FeatureLayerNet(ecgzoo.EcgModel):
    """GAP + bias-free head, Grad-CAM layer = the feature map itself (as CNNv7's conv_b)."""

    has_cam, gradcam_layer, masked_pooling = True, "body", True

    def __init__(self):
        super().__init__()
        self.num_classes, self.in_leads = 3, 1
        self.body = nn.Sequential(nn.Conv1d(1, 5, 7, padding=3), nn.ReLU(), nn.Conv1d(5, 5, 5, padding=4, dilation=2), nn.ReLU())
        self.head = nn.Linear(5, 3, bias=False)

    def forward_features(self, x):
        return self.body(x)


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_without_backward_on_the_feature_layer_equals_autograd(relu):
    torch.manual_seed(0)
    model = FeatureLayerNet().eval()
    x, vl = torch.randn(2, 1, 200), torch.tensor([200, 120])
    fast = ecgzoo.create_explainer("gradcam", relu=relu).explain(model, x, valid_length=vl)
    slow = ecgzoo.create_explainer("gradcam", relu=relu, fast=False).explain(model, x, valid_length=vl)
    torch.testing.assert_close(fast, slow, atol=1e-7, rtol=1e-5)


BF16_TOLERANCE = 0.05  # relative L2 error of the map, as stated in README and BENCHMARKS


@pytest.mark.parametrize("name,opts", [
    ("cam", {}), ("gradcam", {}), ("integrated-gradients", {"n_steps": 8}),
    ("occlusion", {"fs": 300, "window_s": 1.0, "stride_s": 1.0}),
])
def test_bfloat16_maps_stay_within_the_stated_tolerance(name, opts):
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=4).eval()
    x = torch.randn(1, 1, 3000)
    target = torch.tensor([1])
    ref = ecgzoo.create_explainer(name, **opts).explain(model, x, target=target)
    low = ecgzoo.create_explainer(name, precision="bf16", **opts).explain(model, x, target=target)
    assert ((low - ref).norm() / ref.norm()).item() < BF16_TOLERANCE
    assert torch.corrcoef(torch.stack([low[0], ref[0]]))[0, 1] > 0.99


def test_saliency_refuses_bfloat16_saying_why():
    with pytest.raises(ecgzoo.ConfigError, match="saliency runs in fp32 only"):
        ecgzoo.create_explainer("saliency", precision="bf16")


@pytest.mark.parametrize("name", ["cam", "gradcam", "occlusion"])
def test_long_input_in_stretches_equals_the_whole_input_computation(name):
    """A 'long' input (6 x the receptive field) cut into stretches of 700 samples with the receptive
    field as overlap gives the map the explainer computes on the whole input at once."""
    from ecgzoo.explain.long_inputs import explain_long

    model = tiny_cnnv7(in_leads=2, dilations=[1, 2, 4, 8, 16, 32])
    torch.manual_seed(3)
    signal = torch.randn(2, 6 * 2 * model.receptive_radius)
    opts = {"fs": 100.0, "window_s": 0.5, "stride_s": 0.5} if name == "occlusion" else {}
    whole = ecgzoo.create_explainer(name, **opts).explain(model, signal[None], target=torch.tensor([1]))[0]
    window = stride = 50
    got, cls, logits = explain_long(model, signal.numpy(), name, chunk=700, target=1, window=window, stride=stride,
                                    engine=model.fast_engine())
    assert cls == 1 and got.shape == (signal.shape[-1],)
    torch.testing.assert_close(torch.from_numpy(logits).float(), model(signal[None])[0].detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(got), whole, atol=1e-6 * whole.abs().max().item() + 1e-9, rtol=1e-4)


def test_long_input_needs_a_declared_receptive_field():
    from ecgzoo.explain.long_inputs import explain_long

    model = ecgzoo.create_model("deepecg13", num_classes=3).eval()
    with pytest.raises(TypeError, match="receptive_radius"):
        explain_long(model, torch.randn(1, 3000).numpy(), "cam", chunk=1000)
