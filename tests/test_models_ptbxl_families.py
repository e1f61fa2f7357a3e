"""xresnet1d and inception1d: conformance kit at tiny widths, any leads and lengths, CAM, sizes."""

from __future__ import annotations

import pytest
import torch

import ecgzoo
from ecgzoo.models.model_facts import parameter_count
from ecgzoo.testing import check_explainer_plugin, check_model_plugin

TINY = {
    "xresnet1d101": {"layers": [1, 2, 1, 1], "width": 4, "stem": [4, 4, 8]},
    "xresnet1d50": {"width": 4, "stem": [4, 4, 8]},
    "inception1d": {"depth": 3, "filters": 4, "bottleneck": 4},
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("leads", [1, 12])
def test_conformance_any_leads_and_lengths_with_native_cam(name, leads):
    model = check_model_plugin(name, length=600, in_leads=leads, num_classes=5, **TINY[name])
    assert model.has_cam and model.get_submodule(model.gradcam_layer) is not None
    with torch.no_grad():
        for t in (37, 1000, 5000):
            assert model(torch.randn(1, leads, t)).shape == (1, 5)


@pytest.mark.parametrize("name", ["xresnet1d101", "inception1d"])
def test_benchmark_head_passes_the_kit_without_native_cam_and_grad_cam_works(name):
    model = check_model_plugin(name, length=500, in_leads=12, num_classes=3, head="concat-mlp", **TINY[name])
    assert not model.has_cam
    check_explainer_plugin("gradcam", model.eval(), torch.randn(2, 12, 500))


def test_inception1d_keeps_full_time_resolution_and_kernels_39_19_9():
    model = ecgzoo.create_model("inception1d", in_leads=12, num_classes=2)
    assert model.forward_features(torch.randn(1, 12, 333)).shape == (1, 128, 333)
    assert [c.kernel_size[0] for c in model.backbone.blocks[0].convs] == [39, 19, 9]


def test_xresnet1d_shrinks_time_32x_and_blocks_start_as_identity():
    model = ecgzoo.create_model("xresnet1d50", in_leads=12, num_classes=2)
    assert model.forward_features(torch.randn(1, 12, 1000)).shape == (1, 256, 32)
    block = model.stages[1][1]
    assert torch.count_nonzero(block.convs[-1][1].weight) == 0  # zero-initialised last BatchNorm


def test_full_size_parameter_counts_match_the_architecture_written_out():
    """Counts from the layer shapes (12 leads, 71 classes of PTB-XL 'all'); no published count was found to pin."""
    bn = 2  # weight and bias per channel
    # inception1d: per block bottleneck 1x1, convs 39/19/9 from 32 channels, pool-branch 1x1, BN of 128
    block = lambda c_in: c_in * 32 + 32 * 32 * (39 + 19 + 9) + c_in * 32 + bn * 128  # noqa: E731
    inception = block(12) + 5 * block(128) + (12 * 128 + bn * 128) + (128 * 128 + bn * 128) + 128 * 71
    assert parameter_count(ecgzoo.create_model("inception1d", in_leads=12, num_classes=71)) == inception == 482_432
    # xresnet1d101: stem 12->32->32->64 (kernel 5), 33 bottlenecks (1x1, 5, 1x1 at width 64 -> 256), one projection
    stem = 12 * 32 * 5 + bn * 32 + 32 * 32 * 5 + bn * 32 + 32 * 64 * 5 + bn * 64
    bottleneck = lambda c_in: c_in * 64 + bn * 64 + 64 * 64 * 5 + bn * 64 + 64 * 256 + bn * 256  # noqa: E731
    xresnet = stem + bottleneck(64) + (64 * 256 + bn * 256) + 32 * bottleneck(256) + 256 * 71
    assert parameter_count(ecgzoo.create_model("xresnet1d101", in_leads=12, num_classes=71)) == xresnet == 1_822_848
    assert parameter_count(ecgzoo.create_model("xresnet1d50", in_leads=12, num_classes=71)) == xresnet - 17 * bottleneck(256)


def test_odd_kernel_and_depth_validation_names_the_field():
    with pytest.raises(ecgzoo.ConfigError, match="kernel_size"):
        ecgzoo.create_model("xresnet1d101", kernel_size=4)
    with pytest.raises(ecgzoo.ConfigError, match="depth"):
        ecgzoo.create_model("inception1d", depth=4)
