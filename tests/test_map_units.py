"""Maps drawn in one unit: % per second of the class logit (complete maps) or of the map's total |value|,
checked against a hand computation from the model's own logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecgzoo
from ecgzoo.report.map_units import NET_FLOOR, map_share, sums_to

FS = 100.0


def test_a_share_by_hand():
    v = np.array([1.0, 3.0, -2.0, 6.0, 99.0])  # the last sample is padding: not summed
    share = map_share(v, FS, 4, sums_to="the class logit", explainer="cam")
    np.testing.assert_allclose(share.values, 100 * FS * v / 8.0, rtol=1e-6)  # |1 + 3 - 2 + 6| = 8
    assert share.label == "cam: % of the class logit per s" and share.denominator == 8.0
    assert (share.values[:4] / FS).sum() == pytest.approx(100.0)  # the recorded shares add up to 100 %
    total = map_share(v, FS, 4)  # no completeness: of the total |value| 1 + 3 + 2 + 6 = 12
    np.testing.assert_allclose(total.values, 100 * FS * v / 12.0, rtol=1e-6)
    assert total.label == "% of the map's total |value| per s"


def test_a_complete_map_with_a_net_total_near_zero_is_drawn_as_share_of_its_total_and_says_why():
    v = np.array([5.0, -5.0, 0.1])  # net 0.1 < NET_FLOOR x 10.1
    assert 0.1 < NET_FLOOR * 10.1
    share = map_share(v, FS, sums_to="the class logit")
    np.testing.assert_allclose(share.values, 100 * FS * v / 10.1, rtol=1e-6)
    assert share.label == "% of the map's total |value| per s (the class logit, its net total, is near zero)"
    zero = map_share(np.zeros(4), FS, sums_to="the class logit", explainer="cam")
    assert zero.label == "cam: map is zero everywhere" and not zero.values.any()


def _model_and_input():
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-small", num_classes=3).eval()
    x = torch.randn(1, 1, 600)  # 6 s at 100 Hz
    return model, x


def test_the_cam_is_drawn_as_share_of_the_class_logit_the_model_outputs():
    model, x = _model_and_input()
    cam = ecgzoo.create_explainer("cam")
    assert sums_to(cam) == "the class logit"
    with torch.no_grad():
        logits = model(x)[0]
    c = int(logits.argmax())
    m = cam.explain(model, x, torch.tensor([c]), fs=FS)[0].numpy()
    share = map_share(m, FS, sums_to=sums_to(cam), explainer="cam")
    expected = 100 * FS * m / (x.shape[-1] * abs(float(logits[c])))  # a CAM's mean is the logit: M(t) / (T |logit|)
    np.testing.assert_allclose(share.values, expected, rtol=1e-4, atol=1e-4)


def test_a_model_with_a_logit_offset_draws_its_cam_as_share_of_the_logit_minus_the_offset():
    """cnnv7-local: logits = CAM mean + a per-class offset, so its CAM is a share of the logit less that offset."""
    torch.manual_seed(0)
    model = ecgzoo.create_model("cnnv7-local", num_classes=3).eval()
    x = torch.randn(1, 1, 600)
    cam = ecgzoo.create_explainer("cam")
    unit = sums_to(cam, model)
    assert unit == "the class logit minus the model's logit_offset" and sums_to(cam, _model_and_input()[0]) == "the class logit"
    with torch.no_grad():
        part = float(model(x)[0, 2] - model.logit_offset(x)[0, 2])
    m = cam.explain(model, x, torch.tensor([2]), fs=FS)[0].numpy()
    np.testing.assert_allclose(map_share(m, FS, sums_to=unit).values, 100 * FS * m / (x.shape[-1] * abs(part)), rtol=1e-3, atol=1e-3)


def test_integrated_gradients_are_drawn_as_share_of_the_logit_minus_the_zero_signals():
    model, x = _model_and_input()
    ig = ecgzoo.create_explainer("integrated-gradients", n_steps=64)
    assert sums_to(ig) == "the class logit minus the zero signal's"
    with torch.no_grad():
        difference = float(model(x)[0, 1] - model(torch.zeros_like(x))[0, 1])
    v = ig.explain(model, x, torch.tensor([1]), fs=FS)[0].numpy()
    share = map_share(v, FS, sums_to=sums_to(ig))
    np.testing.assert_allclose(share.values, 100 * FS * v / abs(difference), rtol=0.05, atol=1e-3 * np.abs(share.values).max())


def test_clipped_and_gradient_maps_state_no_sum():
    assert sums_to(ecgzoo.create_explainer("cam", positive_only=True)) is None
    assert sums_to(ecgzoo.create_explainer("gradcam")) is None
    assert sums_to(ecgzoo.create_explainer("saliency")) is None
    assert sums_to(ecgzoo.create_explainer("integrated-gradients", output="probability")) == (
        "the class probability minus the zero signal's")


def test_explain_draws_the_recorded_part_in_mv_with_the_map_as_share_of_the_logit(tiny_run, tmp_path, monkeypatch):
    """`ecgzoo explain` of a record a third of the model's input: the picture spans the recorded seconds, the
    trace is the file's mV values (not the normalised model input), the colour bar names the unit, the title
    says the record was padded."""
    from run_helpers import cli, register_toy

    import ecgzoo._infra.files
    from ecgzoo.report.figures import axes_by_label
    from ecgzoo.serving.loaded_run import load_run

    register_toy()
    run = load_run(tiny_run)
    data = ecgzoo.get_dataset("synthetic", records=24)
    short = data.load(data.record_ids()[0]).signal[:, : run.input_samples // 3]
    np.save(tmp_path / "short.npy", short)
    figures = {}
    save = ecgzoo._infra.files.save_figure
    monkeypatch.setattr(ecgzoo._infra.files, "save_figure", lambda path, fig: figures.setdefault(path.name, fig) and save(path, fig))
    code, out, err = cli("explain", str(tiny_run), str(tmp_path / "short.npy"), "--fs", str(run.input_fs), "--out", str(tmp_path / "x"))
    assert code == 0, err
    fig = figures["short_cam.png"]
    (ax,) = axes_by_label(fig, "signal")
    seconds = short.shape[1] / run.input_fs
    assert ax.get_xlim() == pytest.approx((0.0, seconds))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), short[0], atol=1e-5)  # the recording in mV
    assert ax.get_ylabel() == "amplitude (mV)"
    assert axes_by_label(fig, "colorbar")[0].get_ylabel() == "cam: % of the class logit per s"
    assert f"recorded {seconds:g} s, padded to {run.input_samples / run.input_fs:g} s" in fig._suptitle.get_text()
