"""Removal of whole segments filled in-distribution: segments, fills and shares by hand, and known answers
(a hand-set spike detector: its CAM beats random orders, a random map does not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_explainers import _one_thread, spike_detector  # noqa: F401 (autouse fixture)

import ecgzoo
from ecgzoo.explain.evidence import (
    CEILING,
    ENERGY,
    RANDOM_ORDER,
    Remover,
    beat_bounds,
    donor_fill,
    paired,
    removal_of,
    road_fill,
    score_record,
    segment_scores,
    segments_of,
    step_counts,
    summary,
    window_bounds,
)

FS = 100.0
PEAKS = np.arange(25, 600, 50)  # 12 "beats" in 6 s


def test_beat_segments_cut_at_rr_midpoints():
    assert beat_bounds(np.array([10, 30, 70, 90, 130]), 100).tolist() == [0, 20, 50, 80, 100]  # 130: padding
    assert beat_bounds(np.array([10, 30, 70, 90]), 100, beats_per_segment=2).tolist() == [0, 50, 100]
    with pytest.raises(ValueError, match="at least 2 R-peaks"):
        beat_bounds(np.array([10]), 100)


def test_windows_are_one_second_or_more_and_the_tail_joins_the_last():
    assert window_bounds(1000, 300).tolist() == [0, 300, 600, 1000]  # a 100-sample tail joins the last
    assert window_bounds(1000, 400).tolist() == [0, 400, 800, 1000]
    record = ecgzoo.Record(np.zeros((1, 700), np.float32), FS, "r1", valid_length=650, meta={"rpeaks": PEAKS})
    assert segments_of(record, "window", window_s=2.0).tolist() == [0, 200, 400, 650]
    assert segments_of(record, "beats").tolist() == [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 650]
    with pytest.raises(ValueError, match="1 s or longer"):
        segments_of(record, "window", window_s=0.5)


def test_road_fill_is_the_edge_line_plus_the_local_noise_floor():
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal((1, 300))
    x[0, 150] += 5.0  # a QRS-like spike inside the segment [100, 200)
    x[0, 99], x[0, 200] = 1.0, 3.0  # the edge samples the line joins
    fill = road_fill(x, np.array([0, 100, 200, 300]), np.random.default_rng(1), FS)
    line = 1.0 + 2.0 * (np.arange(100, 200) - 99) / 101
    resid = fill[0, 100:200] - line
    assert abs(resid.mean()) < 0.03 and 0.06 < resid.std() < 0.12  # the noise floor (~0.09), not the spike
    assert np.abs(resid).max() < 0.5


def test_donor_fill_takes_stretches_from_the_donors_segment_starts():
    x = np.zeros((1, 40), np.float32)
    donor = np.arange(50, dtype=np.float32)[None]
    fill = donor_fill(x, np.array([0, 5, 20, 40]), donor, np.array([0, 10, 30]))
    assert fill[0, :5].tolist() == [0, 1, 2, 3, 4]  # segment 0 from the donor's segment start 0
    assert fill[0, 5:20].tolist() == list(range(10, 25))  # segment 1 from start 10
    assert fill[0, 20:40].tolist() == list(range(20)) and fill.shape == x.shape  # segment 2 cycles to start 0
    long = donor_fill(np.zeros((1, 30), np.float32), np.array([0, 5, 30]), donor, np.array([0, 10, 30]))
    assert long[0, 5:30].tolist() == [*range(10, 30), *range(5)]  # past the donor's valid part: wraps


def test_shares_of_energy_and_rpeaks_removed():
    x = np.zeros((1, 100))
    x[0, 10], x[0, 60] = 1.0, 3.0  # energies 1 and 9 in segments 0 and 2
    removal = removal_of(x, np.array([0, 30, 50, 100]), np.array([10, 20, 60]))
    assert removal.energy.tolist() == [1.0, 0.0, 9.0] and removal.peaks.tolist() == [2, 0, 1]
    energy, peaks = removal.shares(np.array([2, 0, 1]), np.array([0, 1, 2, 3]))
    assert energy == pytest.approx([0, 0.9, 1.0, 1.0]) and peaks == pytest.approx([0, 1 / 3, 1, 1])
    assert step_counts(12, (0, 0.1, 0.2, 0.5, 1)).tolist() == [0, 1, 2, 6, 12]
    with pytest.raises(ValueError, match="rise from 0 to 1"):
        step_counts(12, (0.1, 0.5))


def test_each_removal_set_runs_once():
    model = spike_detector()
    x = spike_ecg(0)
    remover = Remover(model, x, np.zeros_like(x), np.array([0, 200, 400, 600]), 1)
    remover.run([[], [0], [1, 0], [0, 1], []])
    assert remover.passes == 3
    with torch.no_grad():
        logits = model(torch.from_numpy(remover.removed_input([0]))[None], valid_length=torch.tensor([600]))[0].double()
    p, m = remover.outputs([0])
    assert p == pytest.approx(float(torch.softmax(logits, 0)[1])) and m == pytest.approx(float(logits[1] - logits[0]))


def spike_ecg(seed: int, spike: bool = True) -> np.ndarray:
    """6 s of 'beats' (smooth bumps the detector ignores) and noise, with one sharp spike inside a beat."""
    rng = np.random.default_rng(seed)
    t = np.arange(600)
    x = sum(np.exp(-0.5 * ((t - p) / 4.0) ** 2) for p in PEAKS) + 0.02 * rng.standard_normal(600)
    if spike:
        x[40 + 47 * seed % 520] += 3.0
    return x[None].astype(np.float32)


def _scores(model, maps_of, records=8):
    results = []
    for seed in range(records):
        x = spike_ecg(seed)
        bounds = beat_bounds(PEAKS, 600)
        fills = {"road": road_fill(x, bounds, np.random.default_rng(seed), FS),
                 "donor": donor_fill(x, bounds, spike_ecg(seed + 100, spike=False), bounds)}
        results.append(score_record(model, x, bounds, 1, maps_of(x, seed), fills, rpeaks=PEAKS, record_seed=seed,
                                    seeds=(0, 1, 2), fractions=(0, 0.1, 0.2, 0.3, 0.5, 0.7, 1)))
    return results


def test_a_faithful_map_beats_random_orders_and_a_random_map_does_not():
    model = spike_detector()
    with torch.no_grad():
        model.head.weight.mul_(100)  # confident: probability near 1 with the spike, 0.5 without
    cam = ecgzoo.create_explainer("cam")

    def maps_of(x, seed):
        return {"cam": cam.explain(model, torch.from_numpy(x)[None])[0].numpy(),
                "random": np.random.default_rng(seed + 1000).random(600)}

    results = _scores(model, maps_of)
    assert set(results[0]["road"]["curves"]) == {"cam", "random", ENERGY, CEILING, RANDOM_ORDER}
    for fill in ("road", "donor"):
        rows = summary(results)[fill]["orderings"]
        good, rnd = rows["cam"]["morf_probability"], rows["random"]["morf_probability"]
        assert good["diff_mean"] < -0.08 and good["beats_random"] == 8 and good["diff_ci95"][1] < 0
        assert rows["cam"]["lerf_probability"]["diff_mean"] > 0.08 and rows["cam"]["morf_margin"]["beats_random"] == 8
        assert rows[CEILING]["morf_probability"]["auc_mean"] <= good["auc_mean"] + 1e-9  # the ceiling finds it too
        assert rnd["diff_ci95"][0] < 0 < rnd["diff_ci95"][1] and rnd["wilcoxon_p"] > 0.05  # random: no better
        # beats: every step removes its share of R-peaks, whatever the order
        assert rows["cam"]["morf_rpeaks_share"] == pytest.approx(rows[RANDOM_ORDER]["morf_rpeaks_share"], abs=0.05)
    first = results[0]["road"]["curves"]["cam"]["morf"]["probability"]
    assert first[0] > 0.8 and first[1] < 0.6  # the first removed beat holds the spike


def test_map_scores_are_segment_means_and_paired_statistics_by_hand():
    assert segment_scores(np.array([1.0, 3, 5, 5, 0, 0]), np.array([0, 2, 4, 6])).tolist() == [2, 5, 0]
    expl, rnd = np.array([0.2, 0.3, 0.4, 0.5]), np.array([0.4, 0.4, 0.5, 0.45])
    row = paired(expl, rnd, "lower")
    assert row["diff_mean"] == pytest.approx(np.mean(expl - rnd)) and row["beats_random"] == 3
    assert row["diff_ci95"][0] <= row["diff_mean"] <= row["diff_ci95"][1] and 0 < row["wilcoxon_p"] <= 1
    assert paired(expl, rnd, "higher")["beats_random"] == 1


def test_beats_of_a_real_record_come_from_the_rpeaks_plugin(sample_dir):
    data = ecgzoo.get_dataset("physionet2017", path=str(sample_dir), download=False)
    record = data.load(data.record_ids()[0])
    assert "rpeaks" not in record.meta
    peaks = ecgzoo.create_preprocessor("rpeaks")(record).meta["rpeaks"]
    bounds = segments_of(record, "beats")
    assert len(bounds) == len(peaks) + 1 and bounds[0] == 0 and bounds[-1] == record.valid_length
    # each beat segment holds exactly one R-peak, the cuts halfway between neighbours
    assert np.all(np.searchsorted(bounds, peaks, side="right") - 1 == np.arange(len(peaks)))
    assert bounds[1:-1].tolist() == ((peaks[:-1] + peaks[1:]) // 2).tolist()
