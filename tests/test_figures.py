"""Attribution pictures: time axis in seconds, units, only the recorded part drawn (padding said in the title),
maps in % per second named on the colour bar, titles."""

from __future__ import annotations

import numpy as np
import pytest

from ecgzoo.report.figures import axes_by_label, plot_attribution


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_thirty_seconds_of_signal_span_zero_to_thirty_seconds():
    fs = 300
    sig = np.sin(np.arange(30 * fs) / fs * 2 * np.pi).astype(np.float32)
    fig = plot_attribution(sig, fs, np.abs(sig))
    (ax,) = axes_by_label(fig, "signal")
    (strip,) = axes_by_label(fig, "attribution strip")
    assert ax.get_xlim() == pytest.approx((0.0, 30.0))
    assert strip.get_xlim() == pytest.approx((0.0, 30.0))
    assert strip.get_xlabel().startswith("time (s)") and "0.04 s x 0.1 mV" in strip.get_xlabel()  # mV: ECG paper
    assert "(mV)" in ax.get_ylabel()
    line = ax.lines[0]
    assert line.get_xdata()[-1] == pytest.approx((30 * fs - 1) / fs)
    assert np.allclose(line.get_ydata(), sig)
    assert len(axes_by_label(fig, "colorbar")) == 1


def test_a_padded_ten_second_record_draws_ten_seconds_and_says_it_was_padded():
    """A 10-s record padded to the model's 60 s: the axes span the 10 recorded seconds, the title says so."""
    fs = 100
    sig = np.zeros((1, 6000), np.float32)
    sig[0, :1000] = np.random.default_rng(0).normal(size=1000)
    attr = np.linspace(-1, 5, 6000)  # the padding's values (up to 5) must not set the colour scale
    fig = plot_attribution(sig, fs, attr, valid_length=1000, units="a.u.", explainer="cam", sums_to="the class logit")
    (ax,) = axes_by_label(fig, "signal")
    strip = axes_by_label(fig, "attribution strip")[0]
    assert ax.get_xlim() == pytest.approx((0.0, 10.0)) and strip.get_xlim() == pytest.approx((0.0, 10.0))
    assert ax.lines[0].get_xdata().max() < 10.0
    assert not any("padding" in t for t in _texts(ax))  # no padding drawn or labelled inside the axes
    assert "recorded 10 s, padded to 60 s for the model; only the recorded part is drawn" in fig._suptitle.get_text()
    assert "(a.u.)" in ax.get_ylabel() and strip.get_xlabel() == "time (s)"  # not mV: no ECG paper
    image = strip.images[0]
    assert image.get_array().shape == (1, 1000)
    recorded = attr[:1000]
    expected_max = 100 * fs * np.abs(recorded).max() / abs(recorded.sum())  # the share of the recorded part's sum
    assert image.norm.vmax == pytest.approx(expected_max, rel=1e-5)


def test_the_colour_bar_states_the_unit_of_the_map():
    fs = 200
    sig = np.random.default_rng(1).normal(size=2000).astype(np.float32)
    cam = plot_attribution(sig, fs, np.linspace(-1, 3, 2000), explainer="cam", sums_to="the class logit")
    assert axes_by_label(cam, "colorbar")[0].get_ylabel() == "cam: % of the class logit per s"
    sal = plot_attribution(sig, fs, np.abs(sig), explainer="saliency")
    assert axes_by_label(sal, "colorbar")[0].get_ylabel() == "saliency: % of the map's total |value| per s"


def test_title_carries_true_and_predicted_label_and_probabilities():
    fig = plot_attribution(np.zeros(200, np.float32), 100, np.zeros(200), title="A00001",
                           true_label="N", predicted_label="A", probabilities={"N": 0.25, "A": 0.75})
    text = fig._suptitle.get_text()
    assert "A00001" in text and "true N" in text and "predicted A" in text and "A 0.75" in text


def test_several_leads_get_one_axis_each():
    fig = plot_attribution(np.zeros((3, 500), np.float32), 250, np.ones(500))
    axes = axes_by_label(fig, "signal")
    assert len(axes) == 3
    assert [a.get_ylabel() for a in axes] == ["lead 1 (mV)", "lead 2 (mV)", "lead 3 (mV)"]


def test_attribution_of_wrong_length_is_an_error():
    with pytest.raises(ValueError, match=r"one value per sample, shape \(500,\)"):
        plot_attribution(np.zeros(500, np.float32), 250, np.ones(499))


def test_beat_template_view_axes():
    from ecgzoo.explain.beats import cut_templates
    from ecgzoo.report.figures import plot_beat_templates

    fs = 100
    sig = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    tpl = cut_templates(sig, np.abs(sig), [100, 180, 300, 420, 600], fs, record_id="r")
    fig = plot_beat_templates(tpl, title="r", units="mV", explainer="cam")
    (ax_sig,) = axes_by_label(fig, "beat signal")
    (ax_att,) = axes_by_label(fig, "beat attribution")
    (ax_map,) = axes_by_label(fig, "beat map")
    assert ax_sig.get_xlim() == pytest.approx((-250.0, 400.0))
    assert ax_att.get_xlabel() == "time from R-peak (ms)"
    assert ax_sig.get_ylabel() == "amplitude (mV)"
    assert len(ax_sig.lines) == 5 + 1 + 1  # beats, their mean, the R-peak marker
    assert ax_map.images[0].get_array().shape == (5, 65)
    assert "5 beats" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="no complete beat"):
        plot_beat_templates(cut_templates(sig, sig, [5], fs, record_id="edge"))


def test_class_average_has_one_column_per_class():
    from ecgzoo.explain.beats import cut_templates, pool
    from ecgzoo.report.figures import plot_class_average

    rng = np.random.default_rng(1)
    per = {c: pool([cut_templates(rng.normal(size=600), rng.normal(size=600), [100, 300], 100, record_id=f"{c}{i}")
                    for i in range(2)]) for c in ("N", "A")}
    fig = plot_class_average(per, explainer="cam")
    titles = [a.get_title() for a in axes_by_label(fig, "class") if a.get_title()]
    assert titles == ["N: 2 records, 4 beats", "A: 2 records, 4 beats"]
    assert axes_by_label(fig, "class A attribution")[0].get_xlabel() == "time from R-peak (ms)"


def test_side_by_side_one_row_per_explainer():
    from ecgzoo.report.figures import plot_side_by_side

    fig = plot_side_by_side(np.zeros((1, 2000), np.float32), 200, {"cam": np.ones(2000), "saliency": np.zeros(2000)},
                            valid_length=1500, true_label="N", predicted_label="N", sums_to={"cam": "the class logit"})
    rows = axes_by_label(fig, "explainer")
    assert [a.get_label() for a in rows] == ["explainer cam", "explainer saliency"]
    assert all(a.get_xlim() == pytest.approx((0.0, 7.5)) for a in rows)  # the recorded 1500 samples only
    assert rows[-1].get_xlabel() == "time (s)"
    assert "recorded 7.5 s, padded to 10 s" in fig._suptitle.get_text()
    bars = [a.get_ylabel() for a in axes_by_label(fig, "colorbar")]
    assert bars == ["cam: % of the class logit per s", "saliency: map is zero everywhere"]
