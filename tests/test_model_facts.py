"""Model facts (`ecgzoo info`): FLOPs from layer shapes against hand counts, free of arithmetic."""

from __future__ import annotations

import torch

import ecgzoo
from ecgzoo.models.model_facts import conv_flops, forward_flops, parameter_count, receptive_field

TINY_DEEPECG = {"layers": [[4, 8, 1], [6, 4, 2], [2, 4, 1]], "pool_after": [1, 2]}


def test_flops_follow_pooled_lengths_hand_count():
    model = ecgzoo.create_model("deepecg13", num_classes=3, in_leads=2, **TINY_DEEPECG)
    # 800 samples; max-pool after layers 1 and 2: layer outputs 800, 800 (then 400), 400 (then 200)
    hand = 2 * 2 * 8 * 4 * 800 + 2 * 4 * 4 * 6 * 400 + 2 * 6 * 4 * 2 * 200 + 2 * 2 * 3
    assert forward_flops(model, 800) == hand
    assert conv_flops(2, 4, 8, 800) == 2 * 2 * 8 * 4 * 800


def test_flops_count_leaves_the_model_untouched():
    model = ecgzoo.create_model("cnnv7-small", num_classes=3).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    forward_flops(model, 1000)
    assert model.training and next(model.parameters()).device.type == "cpu"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_full_size_cnnv7_60_s_record_is_about_60_gflop():
    assert 59e9 < forward_flops(ecgzoo.create_model("cnnv7", num_classes=3), 18000) < 61e9


def test_receptive_field_of_tiny_deepecg_matches_its_geometry():
    model = ecgzoo.create_model("deepecg13", num_classes=3, layers=[[4, 3, 1], [4, 3, 2]], pool_after=[])
    # two 'same' convs, k=3 dilations 1 and 2: 1 + 2*1 + 2*2 = 7 samples
    assert receptive_field(model) == 7
    assert parameter_count(model) == (1 * 3 * 4 + 4) + 8 + (4 * 3 * 4 + 4) + 8 + 4 * 3
