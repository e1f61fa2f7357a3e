"""CNNv7 and DeepECG-13 against REFERENCE.md: sizes, receptive field, shapes, CAM identity, pooling."""

from __future__ import annotations

import pytest
import torch

import ecgzoo
from ecgzoo.models.model_facts import forward_flops, model_facts, parameter_count, receptive_field
from ecgzoo.testing import check_model_plugin

SMALL_DEEPECG = {"layers": [[8, 8, 1], [8, 8, 2], [8, 4, 2], [4, 4, 2]], "pool_after": [1, 3]}


@pytest.mark.parametrize("classes, expected", [(3, 1_656_704), (4, 1_657_216)])
def test_cnnv7_parameter_count_matches_the_paper(classes, expected):
    assert parameter_count(ecgzoo.create_model("cnnv7", num_classes=classes)) == expected


def test_cnnv7_receptive_field_is_2051_samples_by_gradient_probe():
    assert receptive_field(ecgzoo.create_model("cnnv7")) == 2051


def test_cnnv7_structure_no_bias_no_batchnorm_last_block_skip_only():
    model = ecgzoo.create_model("cnnv7")
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    assert all(getattr(m, "bias", None) is None for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear)))
    assert [b.filter_conv.dilation[0] for b in model.blocks] == [2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert model.blocks[-1].res_conv is None and all(b.res_conv is not None for b in model.blocks[:-1])


def test_cnnv7_flops_per_60_s_record_about_60_gflop():
    model = ecgzoo.create_model("cnnv7", num_classes=3)
    # hand count per output sample: input conv 2*1*3*128, 9 blocks of two k=3 convs (2*128*3*128 each)
    # and a 1x1 skip (2*128*128), 8 residual 1x1s, conv A 2*128*3*256, conv B 2*256*3*512; head 2*512*3
    per_sample = 2 * 3 * 128 + 9 * (2 * 2 * 128 * 3 * 128 + 2 * 128 * 128) + 8 * 2 * 128 * 128
    per_sample += 2 * 128 * 3 * 256 + 2 * 256 * 3 * 512
    assert forward_flops(model, 300) == per_sample * 300 + 2 * 512 * 3
    assert 59e9 < forward_flops(model, 18000) < 61e9


@pytest.mark.parametrize("name, options", [("cnnv7-small", {}), ("deepecg13", SMALL_DEEPECG)])
def test_conformance(name, options):
    check_model_plugin(name, length=600, **options)


def test_cnnv7_cam_identity_and_one_value_per_sample_multi_lead():
    model = ecgzoo.create_model("cnnv7-small", num_classes=3, in_leads=2).eval()
    x = torch.randn(2, 2, 777)
    with torch.no_grad():
        logits, cam = model.forward_with_cam(x)
    assert cam.shape == (2, 3, 777)
    torch.testing.assert_close(cam.mean(dim=-1), logits, atol=1e-5, rtol=1e-4)


def test_masked_pooling_matches_hand_computation():
    model = ecgzoo.create_model("cnnv7-small", num_classes=3, masked_pooling=True).eval()
    x = torch.randn(2, 1, 500)
    valid = torch.tensor([500, 120])
    with torch.no_grad():
        f = model.forward_features(x)
        logits = model(x, valid_length=valid)
        hand = torch.stack([f[0].mean(-1), f[1, :, :120].mean(-1)]) @ model.head.weight.T
    torch.testing.assert_close(logits, hand)
    unmasked = ecgzoo.create_model("cnnv7-small", num_classes=3).eval()
    unmasked.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(unmasked(x, valid_length=valid)[1], logits[1])  # paper: pools padding too


def test_padding_effect_on_logits_with_and_without_masking(capsys):
    """One 10-s record alone vs zero-padded to 60 s: masking removes most, not all, of the difference
    (the receptive field reaches ~3.4 s into the padding at the record's end)."""
    torch.manual_seed(0)
    masked = ecgzoo.create_model("cnnv7-small", masked_pooling=True).eval()
    plain = ecgzoo.create_model("cnnv7-small").eval()
    plain.load_state_dict(masked.state_dict())
    x = torch.randn(1, 1, 3000)
    padded = torch.nn.functional.pad(x, (0, 18000 - 3000))
    vl = torch.tensor([3000])
    with torch.no_grad():
        d_masked = (masked(padded, valid_length=vl) - masked(x)).abs().max().item()
        d_plain = (plain(padded, valid_length=vl) - plain(x)).abs().max().item()
    print(f"max |logit(padded) - logit(unpadded)|: masking on {d_masked:.4g}, off {d_plain:.4g}")
    assert d_masked < d_plain / 5


def test_deepecg13_paper_shapes_and_cam():
    model = ecgzoo.create_model("deepecg13", num_classes=3).eval()
    assert [layer[1].kernel_size[0] for layer in model.layers] == [24] + [16] * 4 + [8] * 8
    assert sum(isinstance(m, torch.nn.MaxPool1d) for m in model.modules()) == 3
    assert model.head.bias is None
    x = torch.randn(1, 1, 18000)
    with torch.no_grad():
        f = model.forward_features(x)
        logits, cam = model.forward_with_cam(x)
    assert f.shape == (1, 64, 2250) and cam.shape == (1, 3, 18000)
    maps = torch.einsum("ck,bkt->bct", model.head.weight, f)
    torch.testing.assert_close(maps.mean(-1), logits, atol=1e-5, rtol=1e-4)


def test_facts_for_info():
    facts = model_facts(ecgzoo.create_model("cnnv7-small"))
    assert facts["receptive field"].startswith("2,051 samples (6.84 s")
    assert facts["native CAM"] == "yes" and facts["Grad-CAM layer"] == "conv_b"
    info = ecgzoo.plugin_info("cnnv7-small", kind="model")
    assert info["facts"]["parameters"] == f"{parameter_count(ecgzoo.create_model('cnnv7-small')):,}"


def test_bad_options_are_clear_errors():
    with pytest.raises(ecgzoo.ConfigError, match="kernel_size must be odd"):
        ecgzoo.create_model("cnnv7", kernel_size=4)
    with pytest.raises(ecgzoo.ConfigError, match="option 'dropout'"):
        ecgzoo.create_model("cnnv7", dropout=1.5)
