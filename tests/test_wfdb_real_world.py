"""Real-world WFDB recordings: multi-segment records, gaps of missing samples, skew, FLAC, and broken
inputs refused in the recording's own terms (`ecgzoo.data.inputs`, `ecgzoo.data.wfdb_segments`, predict, explain,
the `wfdb-folder` dataset)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import wfdb
import wfdb_fixtures as fx
from run_helpers import cli

import ecgzoo
from ecgzoo import RecordError
from ecgzoo.data.inputs import open_input, select_lead
from ecgzoo.data.signal_source import InputError, MissingSamples
from ecgzoo.serving.explain_recording import explain_recording
from ecgzoo.serving.loaded_run import load_run
from ecgzoo.serving.predict import predict_source
from ecgzoo_plugins.wfdb_records import read_record, wfdb_record_ids

#: an exception class named in a message: what users must never see
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Warning)\b")


@pytest.fixture
def tiny(tiny_run):
    return tiny_run


def _segment(folder, name):
    return wfdb.rdrecord(str(folder / name), physical=True).p_signal.T


def test_variable_layout_is_one_recording_with_its_gap_and_absent_lead_missing(tmp_path):
    hea = fx.variable_layout_record(tmp_path)
    src = open_input(hea)
    n = 8 * 300
    assert (src.fs, src.leads, src.samples, src.lead_names) == (300.0, 2, 3 * n + 1200, ("II", "V"))
    raw = src._read(0, src.samples)
    np.testing.assert_array_equal(raw[:, :n], _segment(tmp_path, "vrec_0001"))
    assert np.isnan(raw[:, n : n + 1200]).all()  # the `~` segment
    np.testing.assert_array_equal(raw[:, n + 1200 : 2 * n + 1200], _segment(tmp_path, "vrec_0002")[::-1])  # V, II -> II, V
    assert np.isnan(raw[0, 2 * n + 1200 :]).all()  # the last segment has no lead II
    np.testing.assert_array_equal(raw[1, 2 * n + 1200 :], _segment(tmp_path, "vrec_0003")[0])


def test_a_stretch_reads_only_the_segments_it_overlaps(tmp_path, monkeypatch):
    import ecgzoo.data.wfdb_segments as segments

    src = open_input(fx.variable_layout_record(tmp_path))
    read, seen = segments._read_segment, []
    monkeypatch.setattr(segments, "_read_segment", lambda seg, a, b, shown: seen.append((seg.path.name, a, b)) or read(seg, a, b, shown))
    src.read(3600 + 100, 3600 + 200)  # inside segment 0002 (which starts at 8 s + 4 s of gap)
    margin = src.bridge_limit + 1  # the context that shows a short gap whole
    assert seen == [("vrec_0002", 100 - margin, 200 + margin)]


def test_predict_lists_the_windows_a_gap_or_an_absent_lead_leaves_out(tiny, tmp_path):
    hea = fx.variable_layout_record(tmp_path)
    code, out, err = cli("predict", str(tiny), str(hea), "--lead", "II", "--json")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    problems = [w.get("problem") for w in result["windows"]]  # 4-s windows over 8 s + 4 s gap + 8 s + 8 s
    gap, absent = "not analysed: 1200 missing samples", "not analysed: 1200 missing samples"
    assert problems == [None, None, gap, None, None, absent, absent]
    assert result["class"] is not None and result["analysed_s"] == 16.0
    assert "the overall class covers 16.0 s of 28.0 s (57% of the recording)" in result["notes"]
    code, text, _ = cli("predict", str(tiny), str(hea), "--lead", "II")
    assert code == 0 and re.search(r"00:00:08-00:00:12  not analysed: 1200 missing samples  \(1 window\)", text)


def test_explain_maps_leave_the_gap_windows_flat_and_say_so(tiny, tmp_path):
    run = load_run(tiny)
    src = select_lead(open_input(fx.variable_layout_record(tmp_path)), "II")
    done = explain_recording(run, src, {"cam": ecgzoo.create_explainer("cam")}, target=0, batch_size=2)
    assert [p is None for _, _, p in done.windows] == [False, False, True, False, False, True, True]
    assert not done.maps["cam"][8 * 300 : 12 * 300].any() and done.maps["cam"][: 8 * 300].any()
    assert any(n.startswith("3 of 7 window(s) not analysed: missing samples") and "00:00:08-00:00:12 (1200 missing samples)" in n
               for n in done.notes)


def test_fixed_layout_reads_as_its_segments_joined_in_predict_and_the_wfdb_folder_dataset(tmp_path):
    hea = fx.fixed_layout_record(tmp_path)
    joined = np.concatenate([_segment(tmp_path, "frec_1"), _segment(tmp_path, "frec_2")], axis=1)
    src = open_input(hea)
    np.testing.assert_allclose(src.read(0, src.samples), joined, atol=1e-6)
    assert wfdb_record_ids(tmp_path) == ["frec"]  # the segments are not records of their own
    rec = read_record(tmp_path / "frec", "frec")
    np.testing.assert_allclose(rec.signal, joined, atol=1e-6)
    assert rec.lead_names == ("I", "II") and rec.fs == 300.0


def test_evaluate_scores_multi_segment_records_and_skips_one_with_long_gaps(tiny, tmp_path):
    classes = load_run(tiny).classes
    data = tmp_path / "data"
    for k in range(3):
        fx.fixed_layout_record(data, name=f"f{k}", leads=1)
    fx.variable_layout_record(data)
    (data / "labels.csv").write_text("".join(f"f{k},{classes[k % len(classes)]}\n" for k in range(3)) + f"vrec,{classes[0]}\n")
    out = tmp_path / "eval"
    code, _, err = cli("evaluate", str(tiny), "wfdb-folder", "--set", f"path={data}", "--out", str(tmp_path / "stop"))
    assert code == 2 and "record 'vrec': 4800 missing (NaN/invalid) sample(s) in gaps longer than 20 ms" in err
    code, _, err = cli("evaluate", str(tiny), "wfdb-folder", "--set", f"path={data}", "--out", str(out), "--on-error", "skip")
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["n"] == 3
    skipped = (out / "skipped.csv").read_text()
    assert "vrec" in skipped and "missing (NaN/invalid) sample(s) in gaps longer than 20 ms" in skipped


def test_wfdb_folder_refuses_a_multi_segment_record_with_long_gaps_naming_them(tmp_path):
    fx.variable_layout_record(tmp_path)
    assert wfdb_record_ids(tmp_path) == ["vrec"]
    with pytest.raises(RecordError, match=r"4800 missing \(NaN/invalid\) sample\(s\) in gaps longer than 20 ms, the first at sample 2400"):
        read_record(tmp_path / "vrec", "vrec")


def test_long_record_with_gaps_short_ones_bridged_long_ones_skipped_and_listed(tiny, tmp_path):
    hea = fx.gapped_record(tmp_path, [(1.0, 3), (6.0, 20), (13.0, 100)])  # 3 samples = 10 ms: bridged
    run = load_run(tiny)
    pred = predict_source(run, open_input(hea))
    assert [w.problem for w in pred.windows] == [None, "not analysed: 20 missing samples", None,
                                                 "not analysed: 100 missing samples", None]
    assert pred.label is not None and pred.analysed_s == 12.0
    assert "3 missing sample(s) in gaps of at most 20 ms (6 sample(s)) bridged by linear interpolation" in pred.notes
    assert "the overall class covers 12.0 s of 20.0 s (60% of the recording)" in pred.notes
    assert "2 of 5 window(s) not analysed for missing samples (gaps longer than 20 ms); listed in the timeline" in pred.notes


def test_a_bridged_gap_is_the_straight_line_between_its_neighbours(tmp_path):
    hea = fx.gapped_record(tmp_path, [(1.0, 3)])
    src = open_input(hea)
    digital = wfdb.rdrecord(str(hea.with_suffix("")), physical=True).p_signal[:, 0]
    out, bridged = src.read_bridged(0, 600)
    assert bridged == 3
    np.testing.assert_allclose(out[0, 300:303], np.interp([300, 301, 302], [299, 303], digital[[299, 303]]), atol=1e-6)


def test_a_recording_with_nothing_analysable_is_refused_with_that_reason(tiny, tmp_path):
    hea = fx.gapped_record(tmp_path, [(s + 1.0, 50) for s in range(0, 20, 4)])
    code, out, err = cli("predict", str(tiny), str(hea))
    assert code == 2
    assert "not classified: nothing analysable: every window (5) has missing samples (first: not analysed: 50 missing samples)" in err


def test_a_recording_with_gaps_and_no_other_window_classified_says_both(tiny, tmp_path):
    hea = fx.gapped_record(tmp_path, [(1.0, 50)], seconds=8.0)
    with open(hea.with_suffix(".dat"), "r+b") as f:  # the second window flat: 1200 samples of 0
        f.seek(2 * 1200)
        f.write(b"\0" * 2 * 1200)
    code, _, err = cli("predict", str(tiny), str(hea))
    assert code == 2
    assert ("no window could be classified: 1 of 2 have missing samples, the others: flat signal (every sample equal): "
            "no ECG to classify") in err


@pytest.mark.skipif(not fx.REAL_GAPS.is_file(), reason=f"real gapped record not found: {fx.REAL_GAPS} "
                    "(set ECGZOO_WFDB_SAMPLES to wfdb-python's sample-data folder)")
def test_real_record_with_gaps(tiny):
    """MIMIC-II segment 3234460_0001 (see tests/wfdb_fixtures.py): gaps of 1-2 samples bridged, of 9-18 samples skipped."""
    run = load_run(tiny)
    src = select_lead(open_input(fx.REAL_GAPS), "II")
    pred = predict_source(run, src)
    missing = np.isnan(wfdb.rdrecord(str(fx.REAL_GAPS.with_suffix("")), physical=True).p_signal[:, 0])
    expected = []
    for w in pred.windows:  # a window is left out exactly when it holds a gap longer than 2 samples (20 ms at 125 Hz)
        a, b = int(round(w.start_s * 125)), int(round(w.end_s * 125))
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], missing[a:b].astype(int), [0])))))[::2]
        long = runs[runs > 2]
        expected.append(f"not analysed: {int(long.sum())} missing samples" if len(long) else None)
    gaps = [w.problem if (w.problem or "").startswith("not analysed") else None for w in pred.windows]
    assert gaps == expected  # (other windows may be refused for what they hold: one is a flat line)
    assert expected.count(None) == len(expected) - 3 and "not analysed: 9 missing samples" in expected
    assert pred.label is not None and any("bridged by linear interpolation" in n for n in pred.notes)


def test_skewed_record_undefined_tail_bridged_when_short_and_skipped_when_long(tiny, tmp_path):
    run = load_run(tiny)
    short = predict_source(run, select_lead(open_input(fx.skewed_record(tmp_path / "a", skew=3)), "II"))
    assert all(w.probabilities is not None for w in short.windows)
    assert "3 missing sample(s) in gaps of at most 20 ms (6 sample(s)) bridged by linear interpolation" in short.notes
    long = predict_source(run, select_lead(open_input(fx.skewed_record(tmp_path / "b", skew=100)), "II"))
    assert [w.problem for w in long.windows] == [None] * 4 + ["not analysed: 100 missing samples"]
    other = predict_source(run, select_lead(open_input(fx.skewed_record(tmp_path / "b", skew=100)), "V"))
    assert all(w.probabilities is not None for w in other.windows) and not other.notes[1:]


def test_flac_records_are_read_and_a_tightly_packed_flat_one_is_refused_as_flat(tiny, tmp_path):
    code, out, err = cli("predict", str(tiny), str(fx.flac_record(tmp_path)), "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["class"] is not None
    fx.write_record(tmp_path, "flat", np.full((300 * 600, 1), 0.5), 300.0, ["II"], fmt="516")
    assert (tmp_path / "flat.dat").stat().st_size * 64 < 300 * 600  # more samples per byte than any raw format
    assert open_input(tmp_path / "flat.hea").samples == 300 * 600
    code, _, err = cli("predict", str(tiny), str(tmp_path / "flat.hea"))
    assert code == 2 and "flat signal" in err


@pytest.mark.parametrize(("build", "message"), [
    (fx.truncated_212, r"trunc\.hea: signal file trunc\.dat is truncated: it holds 3,000 of the 6,000 samples per signal the "
                       r"header declares \(3,000 missing; 9,000 of 18,000 bytes\)"),
    (fx.empty_header, r"empty\.hea: WFDB header empty\.hea is empty \(0 bytes\): expected a record line"),
    (fx.one_row_csv, r"row\.csv: 1 row\(s\) of 3,000 values cannot be samples x leads \(3,000 leads of 1 sample\(s\)\); "
                     r"a CSV holds one row per sample"),
    (lambda folder: fx.variable_layout_record(folder).with_name("vrec_layout.hea"),
     r"vrec_layout\.hea: the layout segment of a multi-segment record \(no samples\): give the record's master header"),
    (lambda folder: folder, r": is a folder, expected a recording file .*; give the recordings in it"),
])
def test_broken_inputs_are_refused_in_the_recordings_own_terms(tiny, tmp_path, build, message):
    path = build(tmp_path / "in")
    path.mkdir(exist_ok=True) if not path.suffix else None
    with pytest.raises(InputError, match=message):
        open_input(path)
    code, out, err = cli("predict", str(tiny), str(path))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert re.search(message, line) and not CLASS_NAME.search(line)


def test_a_missing_segment_is_named(tmp_path):
    hea = fx.variable_layout_record(tmp_path)
    (tmp_path / "vrec_0002.hea").unlink()
    with pytest.raises(InputError, match=r"vrec\.hea: segment header vrec_0002\.hea named by the master header is missing"):
        open_input(hea)


def test_a_truncated_segment_is_named_with_what_it_lacks(tmp_path):
    hea = fx.fixed_layout_record(tmp_path)
    dat = tmp_path / "frec_2.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(InputError, match=r"frec\.hea: segment frec_2: signal file frec_2\.dat is truncated: it holds 250 of the "
                                         r"1,800 samples per signal the header declares \(1,550 missing; 1,000 of 7,200 bytes\)"):
        open_input(hea)


def test_missing_samples_error_says_how_many_and_where(tmp_path):
    src = open_input(fx.gapped_record(tmp_path, [(2.0, 30)]))
    with pytest.raises(MissingSamples, match=r"samples 0:1200: not analysed: 30 missing samples \(the first at sample 600\)"):
        src.read(0, 1200)


def test_bridge_gaps_fills_only_short_runs_it_sees_whole():
    from ecgzoo.data.signal_source import bridge_gaps

    x = np.array([[1.0, np.nan, np.nan, 4.0, np.nan, np.nan, np.nan, 8.0]])
    assert bridge_gaps(x, 2) == 2
    np.testing.assert_array_equal(x[0, :4], [1, 2, 3, 4])
    assert np.isnan(x[0, 4:7]).all()  # 3 > 2: left
    edge = np.array([[np.nan, 2.0, 3.0, np.nan]])
    assert bridge_gaps(edge.copy(), 1, open_start=True, open_end=True) == 0  # the recording may go on past the ends
    assert bridge_gaps(edge, 1) == 2 and edge.tolist() == [[2.0, 2.0, 3.0, 3.0]]  # at a recording's ends: nearest value


def test_a_gap_across_a_window_boundary_is_judged_whole(tmp_path):
    sig = fx.ecg_like(4.0, 300.0)[:, 0][None].astype(np.float32)
    sig[0, 598:602] = np.nan  # 4 samples, 2 in each window: short, bridged on both sides
    sig[0, 895:905] = np.nan  # 10 samples, 5 in each window: too long for either
    np.save(tmp_path / "x.npy", sig)
    src = open_input(tmp_path / "x.npy", fs=300)
    assert src.read_bridged(0, 600)[1] == 2 and src.read_bridged(600, 700)[1] == 2
    for a, b in ((700, 900), (900, 1200)):
        with pytest.raises(MissingSamples, match="5 missing samples"):
            src.read(a, b)
