"""Beat templates: windows 250 ms before to 400 ms after each R-peak, padding and edges left out."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from ecgzoo.core.record import Record, RecordError
from ecgzoo.explain.beats import class_templates, cut_templates, detect_rpeaks, pool, record_templates, template_offsets


def test_template_offsets_span_minus_250_to_plus_400_ms():
    assert template_offsets(300)[0] == -75 and template_offsets(300)[-1] == 119
    assert len(template_offsets(200)) == 50 + 80


def test_cut_templates_known_positions_and_rr():
    fs = 100.0
    signal = np.arange(300, dtype=np.float32)  # value = sample index, so a template shows where it was cut
    attribution = -np.arange(300, dtype=np.float32)
    tpl = cut_templates(signal, attribution, [200, 10, 100, 295], fs, valid_length=250)
    # 10 starts before 0; 295 would run past the valid part (250); 100 and 200 fit (200 + 39 < 250)
    assert tpl.rpeaks.tolist() == [100, 200]
    assert tpl.signal.shape == (2, 65)
    assert np.array_equal(tpl.signal[0], np.arange(75, 140))
    assert np.array_equal(tpl.attribution[1], -np.arange(175, 240))
    assert tpl.rr_s.tolist() == pytest.approx([0.9, 1.0])
    assert tpl.offsets_ms[0] == pytest.approx(-250) and tpl.offsets_ms[-1] == pytest.approx(390)
    assert np.array_equal(tpl.mean_signal(), np.arange(75, 140) + 50)


def test_cut_templates_of_one_lead_and_bad_shapes():
    sig = np.stack([np.zeros(300), np.ones(300)]).astype(np.float32)
    tpl = cut_templates(sig, np.zeros(300), [150], 100, lead=1)
    assert tpl.signal.shape == (1, 65) and (tpl.signal == 1).all()
    with pytest.raises(ValueError, match=r"attribution must have shape \(300,\)"):
        cut_templates(sig, np.zeros(299), [150], 100)
    with pytest.raises(ValueError, match="lead 2"):
        cut_templates(sig, np.zeros(300), [150], 100, lead=2)


def test_stored_rpeaks_are_used_before_any_detector():
    rec = Record(np.zeros((1, 600), np.float32), 100.0, "r1", meta={"rpeaks": [100, 300, 570]})
    assert detect_rpeaks(rec).tolist() == [100, 300, 570]
    tpl = record_templates(rec, np.linspace(0, 2, 600))
    assert tpl.rpeaks.tolist() == [100, 300]  # 570 + 39 runs past the end (600)
    assert np.abs(tpl.attribution).max() <= 1.0  # normalised by the record's largest |value|


def test_too_short_record_is_named():
    rec = Record(np.zeros((1, 100), np.float32), 100.0, "tiny")
    with pytest.raises(RecordError, match="'tiny'"):
        detect_rpeaks(rec)


def _sample_record(sample_dir, rid: str, seconds: int = 20) -> Record:
    val = scipy.io.loadmat(str(sample_dir / f"{rid}.mat"))["val"]
    return Record((val[:, : seconds * 300] / 1000.0).astype(np.float32), 300.0, rid)


def test_detected_beats_of_a_real_record_align_on_the_r_peak(sample_dir):
    rec = _sample_record(sample_dir, "A00001")
    peaks = detect_rpeaks(rec)
    rr = np.diff(peaks) / rec.fs
    assert 15 <= len(peaks) <= 40  # 20 s of sinus rhythm
    assert 0.4 < np.median(rr) < 1.5
    tpl = record_templates(rec, np.abs(rec.signal[0]))
    mean = tpl.mean_signal()
    peak_ms = tpl.offsets_ms[int(np.argmax(np.abs(mean)))]
    assert abs(peak_ms) <= 50, f"mean beat peaks at {peak_ms} ms, not at the R-peak"


def test_pool_joins_records_and_refuses_mixed_rates():
    a = cut_templates(np.zeros(300), np.zeros(300), [100, 200], 100, record_id="a")
    b = cut_templates(np.ones(300), np.ones(300), [150], 100, record_id="b")
    both = pool([a, b])
    assert both.count == 3 and both.record_id == "a,b"
    c = cut_templates(np.zeros(600), np.zeros(600), [300], 200)
    with pytest.raises(ValueError, match="different sampling rates"):
        pool([a, c])


def test_class_templates_pool_records_by_class_and_list_the_ones_left_out():
    def rec(rid: str, peaks: list[int]) -> Record:
        return Record(np.zeros((1, 600), np.float32), 100.0, rid, meta={"rpeaks": peaks})

    records = [rec("n1", [100, 300]), rec("n2", [200]), rec("a1", [150, 250, 350]), rec("x", [5])]
    maps = [np.ones(600) * k for k in (1, 2, 3, 4)]
    per_class, skipped = class_templates(records, maps, ["N", "N", "A", "A"])
    assert sorted(per_class) == ["A", "N"]
    assert per_class["N"].count == 3 and per_class["N"].record_id == "n1,n2"
    assert per_class["A"].count == 3
    assert np.allclose(per_class["N"].attribution, 1.0)  # each record's map normalised to max |value| 1
    assert skipped == [("x", "no complete beat")]
    with pytest.raises(ValueError, match="counts must match"):
        class_templates(records, maps[:2], ["N"] * 4)
