"""FastCNNv7 on the shipped layouts (strided stem, batch norm, masked pooling: `cnnv7-s8`, `cnnv7-s2`)
computes what the eager model and autograd/captum compute, at small width.

Tolerances: logits and maps within atol 1e-6 x the map's largest value (+1e-9) and rtol 1e-4 of the
slow path (float32 rounding of the folded batch norm and of another summation order); occlusion's
drops are differences of two logits, so their atol is 1e-6 x the largest logit instead."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import randomise_batch_norms

import ecgzoo
from ecgzoo.explain.long_inputs import explain_long
from ecgzoo_plugins.cnnv7_fast import FastCNNv7, unsupported

VARIANTS = ["cnnv7-s8", "cnnv7-s2"]


def shipped_layout(variant: str, **kw) -> ecgzoo.EcgModel:
    """A small model of the variant's layout whose batch norms hold non-trivial running statistics and
    affine parameters (fresh ones are the identity, which folding would reproduce trivially)."""
    torch.manual_seed(0)
    opts = {"num_classes": 3, "filters": 6, "conv_a": 8, "conv_b": 10, "dilations": [1, 2, 4], **kw}
    model = ecgzoo.create_model(variant, **opts).eval()
    return randomise_batch_norms(model, 5)


def close(got: torch.Tensor, ref: torch.Tensor, scale: float | None = None) -> None:
    scale = ref.abs().max().item() if scale is None else scale
    torch.testing.assert_close(got, ref, atol=1e-6 * scale + 1e-9, rtol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("norm_blocks", [False, True])
def test_engine_logits_and_cam_equal_the_eager_model(variant, norm_blocks):
    model = shipped_layout(variant, in_leads=2, norm_blocks=norm_blocks)
    assert unsupported(model) is None and isinstance(model.fast_engine(), FastCNNv7)
    x, vl = torch.randn(3, 2, 203), torch.tensor([203, 150, 9])  # 203: not a multiple of the stride
    with torch.no_grad():
        ref_logits, ref_cam = model.forward_with_cam(x, vl)
    logits, cam = model.fast_engine().forward_with_cam(x, vl)
    assert cam.shape == (3, 3, 203)
    close(logits, ref_logits)
    close(cam, ref_cam)


EXPLAINERS = [
    ("saliency", {}),
    ("integrated-gradients", {"n_steps": 6, "internal_batch_size": 4}),
    ("occlusion", {"fs": 100, "window_s": 0.13, "stride_s": 0.07}),  # 13 and 7 samples: off the stride's grid
    ("gradcam", {}),
    ("cam", {}),
]


CASES = [(n, o, out) for n, o in EXPLAINERS for out in (["logit"] if n in ("cam", "gradcam") else ["logit", "probability"])]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,opts,output", CASES, ids=[f"{n}-{out}" for n, _, out in CASES])
def test_engine_explainers_equal_autograd_and_captum(variant, name, opts, output):
    model = shipped_layout(variant, in_leads=2)
    torch.manual_seed(1)
    x, vl = torch.randn(2, 2, 250), torch.tensor([250, 171])
    if name not in ("cam", "gradcam"):  # they explain the logit
        opts = {**opts, "output": output}
    fast_explainer = ecgzoo.create_explainer(name, **opts)
    fast = fast_explainer.explain(model, x, valid_length=vl)
    slow_explainer = ecgzoo.create_explainer(name, fast=False, **opts)
    slow = slow_explainer.explain(model, x, valid_length=vl)
    assert fast_explainer.engine_used == "FastCNNv7" and slow_explainer.engine_used in ("captum", "autograd", "model")
    assert fast.shape == (2, 250)
    with torch.no_grad():
        logits = model(x, valid_length=vl)
    close(fast, slow, max(slow.abs().max().item(), logits.abs().max().item()) if name == "occlusion" else None)


@pytest.mark.parametrize("variant", VARIANTS)
def test_input_gradient_equals_autograd(variant):
    model = shipped_layout(variant, in_leads=2, norm_blocks=True)
    x, vl = torch.randn(2, 2, 333, requires_grad=True), torch.tensor([333, 100])
    target = torch.tensor([2, 0])
    (expected,) = torch.autograd.grad(model(x, valid_length=vl).gather(1, target[:, None]).sum(), x)
    logits, grad = model.fast_engine().input_gradient(
        x.detach(), lambda lg: torch.nn.functional.one_hot(target, 3).float(), vl)
    close(logits, model(x, valid_length=vl).detach())
    close(grad, expected)


@pytest.mark.parametrize("variant", VARIANTS)
def test_receptive_field_occlusion_equals_occluding_and_rerunning(variant):
    """Windows at both ends, off the stride's grid, one running past the end; masked pooling weights."""
    model = shipped_layout(variant, in_leads=2, norm_blocks=True)
    torch.manual_seed(2)
    x, vl = torch.randn(2, 901), torch.tensor([700])
    fast = model.fast_engine()
    width, starts = 23, [0, 3, 5, 400, 689, 880, 890]
    weights = fast.pooling_weights(1, 901, vl)[0]
    changes = fast.occlusion_logit_changes(x, starts, width, weights)
    with torch.no_grad():
        base = model(x[None], valid_length=vl)[0]
        expected = []
        for s in starts:
            occluded = x.clone()
            occluded[:, s:s + width] = 0
            expected.append(model(occluded[None], valid_length=vl)[0] - base)
    close(changes, torch.stack(expected), base.abs().max().item())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["cam", "gradcam", "occlusion"])
def test_long_input_in_stretches_equals_the_whole_input(variant, name):
    """Stretches of 100 samples (not a multiple of the stride 8: rounded up to its grid) with the
    receptive field as overlap give the whole input's map, as computed by the fast explainer."""
    model = shipped_layout(variant, in_leads=2, masked_pooling=False)
    torch.manual_seed(3)
    signal = torch.randn(2, 6 * 2 * model.receptive_radius + 5)
    opts = {"fs": 100.0, "window_s": 0.3, "stride_s": 0.3} if name == "occlusion" else {}
    whole = ecgzoo.create_explainer(name, **opts).explain(model, signal[None], target=torch.tensor([1]))[0]
    got, cls, logits = explain_long(model, signal.numpy(), name, chunk=100, target=1, window=30, stride=30,
                                    engine=model.fast_engine())
    assert cls == 1 and got.shape == (signal.shape[-1],)
    torch.testing.assert_close(torch.from_numpy(logits).float(), model(signal[None])[0].detach(), atol=1e-5, rtol=1e-4)
    close(torch.from_numpy(got), whole, max(whole.abs().max().item(), float(abs(logits).max())))


@pytest.mark.parametrize("variant", VARIANTS)
def test_declared_receptive_radius_is_what_a_feature_step_sees(variant):
    """Changing one input sample just outside R of feature step t's centre leaves step t alone; just inside, not."""
    model = shipped_layout(variant)
    s, r = model.feature_grid[0], model.receptive_radius
    t = 3 * r // s + 2
    x = torch.randn(1, 1, 2 * s * t)
    with torch.no_grad():
        base = model.forward_features(x)[0, :, t]
        for offset, changes in ((r + 1, False), (r, True), (-r - 1, False), (-r, True)):
            y = x.clone()
            y[0, 0, s * t + offset] += 10.0
            moved = (model.forward_features(y)[0, :, t] - base).abs().max().item() > 0
            assert moved == changes, f"sample s*t{offset:+d}: feature {'changed' if moved else 'unchanged'}"
