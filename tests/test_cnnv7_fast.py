"""FastCNNv7 (GEMM layout for CPU inference) computes what the eager CNNv7 computes, from its weights."""

from __future__ import annotations

import pytest
import torch
from doc_blocks import run_block

import ecgzoo
from ecgzoo_plugins.cnnv7_fast import FastCNNv7

SMALL = {"filters": 8, "conv_a": 8, "conv_b": 16}


@pytest.mark.parametrize("length", [700, 300])  # 300 < dilation 512: the shifted copies are all padding
def test_fast_matches_eager_logits_and_cam(length):
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=3, in_leads=2, **SMALL).eval()
    x = torch.randn(3, 2, length)
    with torch.no_grad():
        ref_logits, ref_cam = model.forward_with_cam(x)
    logits, cam = FastCNNv7(model).forward_with_cam(x)
    assert cam.shape == (3, 3, length) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cam, ref_cam, atol=1e-5, rtol=1e-4)


def test_fast_matches_eager_for_other_kernel_and_dilations():
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=4, kernel_size=5, dilations=[1, 3, 9], **SMALL).eval()
    x = torch.randn(2, 1, 257)
    with torch.no_grad():
        ref_logits, ref_cam = model.forward_with_cam(x)
    logits, cam = FastCNNv7(model).forward_with_cam(x)
    torch.testing.assert_close(cam, ref_cam, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-4)


def test_fast_masked_pooling_matches_eager():
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=3, masked_pooling=True, **SMALL).eval()
    x, valid = torch.randn(2, 1, 900), torch.tensor([900, 250])
    with torch.no_grad():
        ref = model(x, valid_length=valid)
    torch.testing.assert_close(FastCNNv7(model)(x, valid_length=valid), ref, atol=1e-5, rtol=1e-4)


def test_records_in_one_batch_do_not_see_each_other():
    """The zero guard rows between records act as each record's own 'same' padding."""
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=3, **SMALL).eval()
    fast = FastCNNv7(model)
    x = torch.randn(3, 1, 400)
    logits, cam = fast.forward_with_cam(x)
    for i in range(3):
        alone_logits, alone_cam = fast.forward_with_cam(x[i:i + 1])
        torch.testing.assert_close(cam[i:i + 1], alone_cam, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(logits[i:i + 1], alone_logits, atol=1e-5, rtol=1e-4)


def test_fast_bfloat16_stays_close_to_float32():
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=3, **SMALL).eval()
    x = torch.randn(2, 1, 600)
    with torch.no_grad():
        ref_logits, ref_cam = model.forward_with_cam(x)
    logits, cam = FastCNNv7(model, torch.bfloat16).forward_with_cam(x)
    assert logits.dtype == torch.float32
    scale = ref_cam.abs().max()
    assert (cam - ref_cam).abs().max() < 0.05 * scale
    assert (logits - ref_logits).abs().max() < 0.05 * scale


def test_docs_example_runs():
    run_block("fast-cnnv7-example")  # docs/export.md


def test_models_outside_the_fast_layout_are_refused_not_miscomputed():
    from ecgzoo_plugins.cnnv7_fast import unsupported

    model = ecgzoo.create_model("cnnv7-s8", num_classes=4, filters=4, conv_a=4, conv_b=4)
    assert unsupported(model) is None  # strided stem and batch norm: folded and computed
    model.input_norm = torch.nn.BatchNorm1d(4, track_running_stats=False)  # normalises with the batch's statistics
    assert "keeps no running statistics" in unsupported(model)
    with pytest.raises(ValueError, match="cannot compute this model exactly"):
        FastCNNv7(model.eval())
    assert model.eval().fast_engine() is None
    assert "is not a CNNv7" in unsupported(ecgzoo.create_model("deepecg13", num_classes=3))
