"""Deletion curves: hand-computed AUC, endpoints, padding respected, faithful maps beat random ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import toy_plugins
from test_explainers import SPIKE_AT, _one_thread, spike_detector, spike_signal  # noqa: F401 (autouse fixture)

import ecgzoo
from ecgzoo.explain.faithfulness import (
    RANDOM,
    DeletionCurve,
    compare_explainers,
    deletion_curve,
    deletion_table,
    window_order,
)
from ecgzoo.report.figures import axes_by_label, plot_deletion_curves

FS = 100.0


def test_auc_is_the_trapezoid_area():
    curve = DeletionCurve(np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.0]), target=0)
    assert curve.auc == pytest.approx(0.5)
    assert DeletionCurve(np.array([0.0, 0.25, 1.0]), np.array([0.8, 0.2, 0.2]), 0).auc == pytest.approx(
        0.25 * (0.8 + 0.2) / 2 + 0.75 * 0.2)


def test_window_order_ranks_by_mean_attribution_in_the_valid_part():
    attr = np.array([0, 0, 5, 5, 1, 1, 9, 9, 3, 3], dtype=float)  # windows of 2: means 0, 5, 1, 9, 3
    assert window_order(attr, 2, 10).tolist() == [3, 1, 4, 2, 0]
    assert window_order(attr, 2, 6).tolist() == [1, 2, 0]  # samples past valid_length are padding
    assert window_order(attr, 4, 10).tolist() == [1, 2, 0]  # last window is the 2-sample tail


def test_curve_starts_at_the_original_probability_and_ends_at_the_baseline():
    model = spike_detector()
    with torch.no_grad():
        model.head.weight.mul_(100)  # confident: probability near 1 with the spike, 0.5 without
    x = 0.02 * torch.randn(1, 300, generator=torch.Generator().manual_seed(0))
    x[0, SPIKE_AT] = 3.0
    attr = ecgzoo.create_explainer("cam").explain(model, x[None])[0]
    curve = deletion_curve(model, x, attr, FS, window_s=0.5, steps=6)
    with torch.no_grad():
        p0 = torch.softmax(model(x[None]), 1)[0, 1].item()
        p_zero = torch.softmax(model(torch.zeros_like(x)[None]), 1)[0, 1].item()
    assert curve.target == 1
    assert curve.fraction[0] == 0 and curve.fraction[-1] == 1
    assert np.all(np.diff(curve.fraction) > 0)
    assert curve.probability[0] == pytest.approx(p0, abs=1e-6)
    assert curve.probability[-1] == pytest.approx(p_zero, abs=1e-6)
    # the CAM points at the spike's window, so the first deletion step already removes the evidence
    assert curve.probability[0] > 0.9
    assert curve.probability[1] == pytest.approx(p_zero, abs=0.01)


def test_padding_is_never_deleted_nor_counted():
    ecgzoo.register_plugin(toy_plugins)
    torch.manual_seed(0)
    model = ecgzoo.create_model("toy", num_classes=2, width=3).eval()
    x = torch.randn(1, 300)
    x[:, 200:] = 7.0  # a padding made visible: the model sees it, deletion must leave it alone
    curve = deletion_curve(model, x, torch.rand(300), FS, window_s=0.5, steps=4, valid_length=200, target=0)
    expected_end = x.clone()
    expected_end[:, :200] = 0
    with torch.no_grad():
        p_end = torch.softmax(model(expected_end[None]), 1)[0, 0].item()
    assert curve.fraction.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]  # 4 windows of 50 valid samples
    assert curve.probability[-1] == pytest.approx(p_end, abs=1e-6)


def test_faithful_map_beats_random_and_reversed_map_loses():
    model = spike_detector()
    signals = torch.cat([spike_signal(s) for s in range(3)])
    cam = ecgzoo.create_explainer("cam").explain(model, signals)
    table = deletion_table(model, signals, {"cam": cam, "reversed": -cam}, FS, window_s=0.5, steps=6, seeds=(0, 1, 2))
    assert [r["explainer"] for r in table.rows] == ["cam", "reversed", RANDOM]
    assert all(r["records"] == 3 for r in table.rows)
    assert table.auc("cam") < table.auc(RANDOM) < table.auc("reversed")
    wins = {r["explainer"]: r["beats_random"] for r in table.rows}
    assert wins == {"cam": 3, "reversed": 0, RANDOM: None}
    text = table.to_text()
    assert "cam" in text and "random" in text and "lower = more faithful" in text and "3/3" in text


def test_compare_explainers_runs_each_and_draws_the_curves():
    model = spike_detector()
    signals = torch.cat([spike_signal(s) for s in range(2)])
    table, maps = compare_explainers(model, signals, ["cam", "occlusion"], FS, window_s=0.5, steps=4, seeds=(0,),
                                     options={"occlusion": {"window_s": 0.1, "stride_s": 0.05}})
    assert set(maps) == {"cam", "occlusion"} and [m.shape for m in maps["occlusion"]] == [(300,), (300,)]
    assert abs(int(maps["occlusion"][0].argmax()) - SPIKE_AT) <= 5  # fs was filled in from the call
    fig = plot_deletion_curves(table.curves, {r["explainer"]: r["auc_mean"] for r in table.rows})
    (ax,) = axes_by_label(fig, "deletion")
    assert len(ax.lines) == 3
    assert ax.get_xlim() == (0, 100)
    assert any("cam (AUC" in t.get_text() for t in ax.get_legend().get_texts())


def test_bad_inputs_are_named():
    model = spike_detector()
    with pytest.raises(ValueError, match=r"attribution must have shape \(300,\)"):
        deletion_curve(model, spike_signal()[0], np.zeros(299), FS)
    with pytest.raises(ValueError, match=r"one record \(leads, T\)"):
        deletion_curve(model, spike_signal(), np.zeros(300), FS)
    with pytest.raises(ValueError, match="2 maps for 1 records"):
        deletion_table(model, spike_signal(), {"cam": np.zeros((2, 300))}, FS)


def test_insertion_curve_starts_from_the_baseline_and_ends_at_the_record():
    from ecgzoo.explain.faithfulness import deletion_curve_for_order

    class Mean(ecgzoo.EcgModel):
        """Logits (mean of x over [0, 50), 0): the target probability grows with the signal put back."""

        num_classes, in_leads = 2, 1

        def forward_features(self, x):
            return x

        def forward(self, x, valid_length=None):
            m = x[:, 0, :50].mean(dim=1)
            return torch.stack([m, torch.zeros_like(m)], dim=1)

    model = Mean()
    x = torch.zeros(1, 100)
    x[0, :50] = 4.0
    good = deletion_curve_for_order(model, x, np.array([0, 1, 2, 3]), 25, 0, steps=4, insertion=True)
    bad = deletion_curve_for_order(model, x, np.array([3, 2, 1, 0]), 25, 0, steps=4, insertion=True)
    assert good.probability[0] == pytest.approx(0.5) and good.probability[-1] == pytest.approx(bad.probability[-1])
    assert good.probability[-1] == pytest.approx(float(torch.sigmoid(torch.tensor(4.0))))
    assert good.auc > bad.auc  # the windows that carry the evidence first: the curve rises at once
