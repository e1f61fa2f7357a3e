"""The 12-lead picture: clinical layout, calibration (25 mm/s, 10 mm/mV) and one map per lead."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import LineCollection

from ecgzoo.core.leads import STANDARD_12
from ecgzoo.report.figures_leads import MM_PER_MV, MM_PER_S, plot_leads

FS, SECONDS = 500, 10


def _ecg(leads=12):
    t = np.arange(FS * SECONDS) / FS
    return np.stack([np.sin(2 * np.pi * 1.1 * t) ** 21 * (0.5 + 0.1 * k) for k in range(leads)])


def _traces(fig):
    ax = next(a for a in fig.axes if a.get_label() == "ecg paper")
    return ax, [c for c in ax.collections if isinstance(c, LineCollection) and c.get_array() is not None]


def test_clinical_layout_puts_each_lead_in_its_quarter_and_adds_a_rhythm_strip():
    attr = np.arange(12)[:, None] * np.ones((1, FS * SECONDS))  # lead k's map is the constant k
    fig = plot_leads(_ecg(), FS, attr, [n.upper() for n in STANDARD_12], title="E1", explainer="saliency")
    ax, traces = _traces(fig)
    assert len(traces) == 13
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6", "II"]
    colours = [float(np.unique(t.get_array())[0]) for t in traces]
    # every trace carries its own lead's map, as % per second of the sum over all leads (66 x T)
    share = 100 * FS / (66 * FS * SECONDS)
    assert colours == pytest.approx([STANDARD_12.index(n) * share for n in labels], rel=1e-6)
    assert "saliency: % of the map's total |value| per s (per lead)" == fig.axes[-1].get_ylabel()
    quarter = FS * SECONDS // 4
    assert [len(t.get_segments()) for t in traces] == [quarter - 1] * 12 + [FS * SECONDS - 1]
    v4 = traces[3].get_segments()[0][0][0]
    assert v4 == pytest.approx(0.4 + 3 * quarter / FS)  # 4th column starts at 7.5 s (after the 0.4-s pulse margin)


def test_paper_is_calibrated_25_mm_per_s_and_10_mm_per_mv():
    fig = plot_leads(_ecg(), FS, np.zeros(FS * SECONDS), STANDARD_12)
    ax, _ = _traces(fig)
    assert ax.get_aspect() == pytest.approx(MM_PER_MV / MM_PER_S)
    width_in = ax.get_position().width * fig.get_figwidth()
    assert width_in * 25.4 == pytest.approx((SECONDS + 0.4) * MM_PER_S, rel=1e-6)
    assert "25 mm/s" in ax.get_xlabel()
    assert "one map for all leads" in fig.axes[-1].get_ylabel()  # a (T,) map is shared by every lead


def test_a_padded_record_draws_only_its_recorded_part_and_says_so():
    attr = np.ones((12, FS * SECONDS))
    fig = plot_leads(_ecg(), FS, attr, STANDARD_12, valid_length=FS * 4, explainer="cam", per_lead=False,
                     sums_to="the class logit")
    ax, traces = _traces(fig)
    assert ax.get_xlim() == pytest.approx((0.0, 4.4))  # 4 recorded seconds after the 0.4-s calibration pulse
    assert "recorded 4 s, padded to 10 s for the model" in fig._suptitle.get_text()
    np.testing.assert_allclose(traces[0].get_array(), 100 * FS / (FS * 4))  # one shared map: % of its own sum, per s
    assert fig.axes[-1].get_ylabel() == "cam: % of the class logit per s (one map for all leads)"


def test_other_lead_sets_are_drawn_one_row_per_lead_and_shapes_are_checked():
    fig = plot_leads(_ecg(3), FS, np.ones((3, FS * SECONDS)), ("I", "II", "V1"))
    ax, traces = _traces(fig)
    assert len(traces) == 3 and [t.get_text() for t in ax.texts] == ["I", "II", "V1"]
    with pytest.raises(ValueError, match=r"attribution must be \(T,\) or \(leads, T\)"):
        plot_leads(_ecg(3), FS, np.ones((2, FS * SECONDS)), ("I", "II", "V1"))
    with pytest.raises(ValueError, match="2 lead names"):
        plot_leads(_ecg(3), FS, np.ones(FS * SECONDS), ("I", "II"))


def test_per_lead_beats_line_up_on_one_reference_lead_and_draw_in_clinical_order(tmp_path):
    import ecgzoo
    from ecgzoo.explain.beats import lead_templates
    from ecgzoo.report.figures_leads import plot_lead_beats

    t = np.arange(FS * SECONDS) / FS
    beat = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))  # a spike every 0.8 s at 0.4 s
    sig = (beat[None] * (1 + np.arange(12))[:, None]).astype(np.float32)
    rec = ecgzoo.Record(sig, float(FS), "R", lead_names=STANDARD_12, meta={"rpeaks": np.arange(200, 5000, 400)})
    attr = np.tile(np.arange(12, dtype=np.float32)[:, None], (1, FS * SECONDS))
    templates = lead_templates(rec, attr)
    assert len(templates) == 12 and all(tp.count == templates[0].count > 0 for tp in templates)
    np.testing.assert_array_equal(templates[5].rpeaks, templates[0].rpeaks)
    np.testing.assert_allclose(templates[11].mean_attribution(), 1.0)  # normalised by the largest |map| of all leads
    fig = plot_lead_beats(templates, STANDARD_12, explainer="saliency")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6"]


def test_a_scaled_input_is_drawn_in_mv_and_other_units_say_uncalibrated():
    """The `scale` step's output ("mV x 5") is drawn as the mV recording it came from, so 10 mm/mV holds."""
    from ecgzoo.report.figures_leads import mv_factor, plot_leads

    assert (mv_factor("mV"), mv_factor("mV x 5"), mv_factor("a.u."), mv_factor("mV x ?")) == (1.0, 5.0, None, None)
    rng = np.random.default_rng(0)
    sig = (rng.standard_normal((12, 500)) * 0.3).astype(np.float32)
    attr = rng.standard_normal((12, 500)).astype(np.float32)

    def pixels(signal, units):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = plot_leads(signal, 100.0, attr, STANDARD_12, units=units)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()), fig.axes[0].get_xlabel()

    mv, label_mv = pixels(sig, "mV")
    scaled, label_scaled = pixels(5.0 * sig, "mV x 5")
    np.testing.assert_array_equal(mv, scaled)
    assert label_mv == label_scaled and "10 mm/mV" in label_mv
    assert "not calibrated" in pixels(sig, "a.u.")[1]
