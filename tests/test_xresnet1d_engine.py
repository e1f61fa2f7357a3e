"""XResNet1d's engine (batch norms folded; path points and occluded copies batched) computes what
autograd/captum compute on the eager model, at small width, 12 leads, 100 Hz.

Tolerance: atol 1e-6 x the map's largest value and rtol 1e-4: folding changes float32 rounding only.
Occlusion's drops are differences of two logits of a 50-layer network: atol 1e-5 x the largest logit
(the un-normalised small models here have logits ~50; measured error 4e-6 of that)."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import randomise_batch_norms

import ecgzoo
from ecgzoo_plugins.xresnet1d_fast import FoldedXResNet1d


def small_xresnet(head: str = "gap") -> ecgzoo.EcgModel:
    """A small XResNet1d whose batch norms hold non-trivial running statistics and affine parameters."""
    torch.manual_seed(0)
    model = ecgzoo.create_model("xresnet1d50", num_classes=5, in_leads=12, layers=[1, 2], width=8, stem=[8, 8, 16],
                                head=head)
    return randomise_batch_norms(model, 4)


def test_folded_engine_computes_the_models_logits_and_cam():
    model = small_xresnet()
    engine = model.fast_engine()
    assert isinstance(engine, FoldedXResNet1d) and engine.folded == sum(
        isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in engine.modules())
    x = torch.randn(2, 12, 1000)
    with torch.no_grad():
        ref_logits, ref_cam = model.forward_with_cam(x)
    logits, cam = engine.forward_with_cam(x)
    for got, ref in ((logits, ref_logits), (cam, ref_cam)):
        torch.testing.assert_close(got, ref, atol=1e-6 * ref.abs().max().item(), rtol=1e-4)
    assert model.train().fast_engine() is None and model.eval().fast_engine(torch.bfloat16) is None


EXPLAINERS = [
    ("saliency", {}),
    ("integrated-gradients", {"n_steps": 16, "internal_batch_size": 4}),
    ("occlusion", {"fs": 100, "window_s": 0.5, "stride_s": 0.25}),
    ("gradcam", {}),
]


@pytest.mark.parametrize("name,opts", EXPLAINERS, ids=[n for n, _ in EXPLAINERS])
@pytest.mark.parametrize("head", ["gap", "concat-mlp"])
def test_engine_explainers_equal_autograd_and_captum(name, opts, head):
    model = small_xresnet(head)
    torch.manual_seed(1)
    x = torch.randn(2, 12, 1000)
    target = torch.tensor([3, 0])
    fast_explainer = ecgzoo.create_explainer(name, **opts)
    fast = fast_explainer.explain(model, x, target=target)
    slow = ecgzoo.create_explainer(name, fast=False, **opts).explain(model, x, target=target)
    engine = "FoldedXResNet1d" if head == "gap" or name != "gradcam" else "autograd"
    assert fast_explainer.engine_used == engine
    atol = 1e-6 * slow.abs().max().item()
    if name == "occlusion":
        with torch.no_grad():
            atol = max(atol, 1e-5 * model(x).abs().max().item())
    torch.testing.assert_close(fast, slow, atol=atol + 1e-9, rtol=1e-4)


def test_integrated_gradients_runs_all_path_points_of_a_record_in_one_pass():
    """16 points of a 10-s 12-lead record: one forward and one backward through the engine."""
    model = small_xresnet()
    engine = model.fast_engine()
    x = torch.randn(1, 12, 1000)
    assert engine.path_points_per_pass(x, 4) == 16
    assert engine.path_points_per_pass(torch.randn(1, 12, 6000), 4) == 4  # a 60-s record: the option's bound
    calls = []
    original = FoldedXResNet1d.input_gradient

    def counted(self, points, *args):
        calls.append(points.shape[0])
        return original(self, points, *args)

    FoldedXResNet1d.input_gradient = counted
    try:
        ecgzoo.create_explainer("integrated-gradients", n_steps=16).explain(model, x, target=torch.tensor([1]))
    finally:
        FoldedXResNet1d.input_gradient = original
    assert calls == [16]


@pytest.mark.parametrize("name", ["xresnet1d50", "cnnv7-s8"])
def test_engine_is_reused_until_a_weight_changes(name):
    """Building an engine folds every weight (several forward passes for XResNet1d-101): it is kept on the model
    while no parameter or buffer changes, and rebuilt, computing with the new weights, when one does."""
    model = small_xresnet() if name == "xresnet1d50" else ecgzoo.create_model(name, num_classes=3, filters=4, conv_a=4,
                                                                              conv_b=4).eval()
    first = model.fast_engine()
    assert model.fast_engine() is first
    assert all(not k.startswith("_ecgzoo") for k in model.state_dict())
    x = torch.randn(1, model.in_leads, 800)
    with torch.no_grad():
        next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)).running_mean.add_(0.5)
        rebuilt = model.fast_engine()
        assert rebuilt is not first
        torch.testing.assert_close(rebuilt(x), model(x), atol=1e-5, rtol=1e-4)
        assert (first(x) - model(x)).abs().max() > 1e-3  # the old engine computed with the old statistics
