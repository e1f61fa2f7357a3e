"""The cpu recipe's pieces against hand computations: crops, augmentation, warm-up cosine, weight average."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ecgzoo_plugins.augment import BatchAugment, random_crop
from ecgzoo_plugins.trainer_ema import WeightAverage
from ecgzoo_plugins.trainer_schedule import warmup_cosine


def test_random_crop_takes_windows_inside_the_valid_part_only():
    torch.manual_seed(0)
    t = torch.arange(100, dtype=torch.float32)
    x = torch.stack([t, t, t])[:, None, :].clone()
    x[0, :, 60:] = 0  # record 0: 60 valid samples then padding
    x[1, :, 20:] = 0  # record 1: shorter than the window
    valid = torch.tensor([60, 20, 100])
    for _ in range(50):
        out, new_valid = random_crop(x, valid, 30)
        assert out.shape == (3, 1, 30) and new_valid.tolist() == [30, 20, 30]
        start = int(out[0, 0, 0])
        assert 0 <= start <= 30 and torch.equal(out[0, 0], t[start : start + 30])  # contiguous, never into padding
        assert torch.equal(out[1, 0, :20], t[:20]) and not out[1, 0, 20:].any()  # kept whole, zeros after
        start = int(out[2, 0, 0])
        assert torch.equal(out[2, 0], t[start : start + 30])


def test_augmentation_keeps_padding_zero_and_scales_within_range():
    torch.manual_seed(1)
    x = torch.ones(64, 1, 50)
    x[:, :, 40:] = 0
    valid = torch.full((64,), 40)
    out, _ = BatchAugment(scale=(0.5, 2.0), flip=True)(x, valid)
    factors = out[:, 0, 0]
    assert ((factors.abs() >= 0.5) & (factors.abs() <= 2.0)).all()
    assert (factors < 0).any() and (factors > 0).any()  # polarity flipped for some records, not all
    noisy, _ = BatchAugment(noise=0.1)(x, valid)
    assert not noisy[:, :, 40:].any() and (noisy[:, :, :40] != 1).all()
    assert not BatchAugment().active and BatchAugment(flip=True).active


def test_warmup_cosine_by_hand():
    warm, total = 4, 14
    assert [warmup_cosine(s, warm, total) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert warmup_cosine(4, warm, total) == pytest.approx(1.0)
    assert warmup_cosine(9, warm, total) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert warmup_cosine(14, warm, total) == pytest.approx(0.0)


def test_weight_average_by_hand_and_swap_restores_the_trained_weights():
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    avg = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(3.0)
    avg.update(model)  # decay ramps: min(0.9, 2/11) = 2/11
    expected = 1.0 + (3.0 - 1.0) * (1 - 2 / 11)
    assert avg.state["weight"].item() == pytest.approx(expected)
    with avg.swapped_in(model):
        assert model.weight.item() == pytest.approx(expected)
    assert model.weight.item() == 3.0
    restored = WeightAverage(model, decay=0.9)
    restored.load_state_dict(avg.state_dict())
    assert restored.updates == 1 and restored.state["weight"].item() == pytest.approx(expected)
