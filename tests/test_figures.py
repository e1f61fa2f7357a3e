"""Attribution pictures: time axis in seconds, units, padding shown as padding, titles."""

from __future__ import annotations

import numpy as np
import pytest

from ecgzoo.figures import axes_by_label, plot_attribution


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
    assert strip.get_xlabel() == "time (s)"
    assert "(mV)" in ax.get_ylabel()
    line = ax.lines[0]
    assert line.get_xdata()[-1] == pytest.approx((30 * fs - 1) / fs)
    assert np.allclose(line.get_ydata(), sig)
    assert len(axes_by_label(fig, "colorbar")) == 1


def test_padding_is_shaded_and_not_drawn_as_signal():
    fs = 100
    sig = np.zeros((1, 1000), np.float32)
    sig[0, :600] = np.random.default_rng(0).normal(size=600)
    attr = np.linspace(-1, 1, 1000)
    fig = plot_attribution(sig, fs, attr, valid_length=600, units="a.u.")
    (ax,) = axes_by_label(fig, "signal")
    assert ax.get_xlim() == pytest.approx((0.0, 10.0))
    assert ax.lines[0].get_xdata().max() < 6.0  # trace stops where the padding starts
    assert "padding" in _texts(ax)
    assert "(a.u.)" in ax.get_ylabel()
    # the colour scale comes from the valid part only (-1 .. 0.2 there; padding values up to 1 are ignored)
    image = axes_by_label(fig, "attribution strip")[0].images[0]
    assert image.norm.vmax == pytest.approx(1.0)  # symmetric around zero from |-1|
    assert image.get_array().shape == (1, 600)


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
