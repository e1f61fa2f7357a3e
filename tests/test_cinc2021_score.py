"""The cinc2021 plugin's CinC 2021 tables (vocabulary and weight table: structure and agreement with each
other) and its challenge score against its definition (moved with the score from the core, numbers kept)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ecgzoo_plugins.cinc2021_score import (
    challenge_score_2021,
    cinc2021_diagnoses,
    cinc2021_equivalent,
    cinc2021_scored_classes,
    cinc2021_weights,
)

AF, AFL, NSR, CRBBB, RBBB = "164889003", "164890007", "426783006", "713427006", "59118001"


def test_weights_are_26_classes_symmetric_with_unit_diagonal():
    groups, w = cinc2021_weights()
    assert len(groups) == 26 and w.shape == (26, 26)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(np.diag(w), 1.0)
    assert ((w > 0) & (w <= 1)).all()


def test_scored_codes_are_exactly_the_30_of_the_mapping_table_with_four_equivalences():
    groups, _ = cinc2021_weights()
    scored = {c for c, d in cinc2021_diagnoses().items() if d.scored}
    assert len(scored) == 30 and {c for g in groups for c in g} == scored
    assert cinc2021_equivalent() == {"164909002": "733534002", "59118001": "713427006",
                                     "63593006": "284470004", "17338001": "427172004"}
    assert len(cinc2021_scored_classes()) == 26


def test_codes_have_names_and_abbreviations():
    dx = cinc2021_diagnoses()
    assert (dx["164889003"].abbreviation, dx["164889003"].name) == ("AF", "atrial fibrillation")
    assert dx["67741000119109"].abbreviation == "LAE" and not dx["67741000119109"].scored
    assert len(dx) == 30 + 103


def test_the_shipped_weights_are_the_official_file_sources_md_names():
    """SOURCES.md states the SHA-256 of the official evaluation-2021 weights.csv; the shipped copy must have it."""
    import re
    from pathlib import Path

    import ecgzoo_plugins
    from ecgzoo._infra.download import sha256_of

    folder = Path(ecgzoo_plugins.__file__).parent / "vocab"
    stated = re.search(r"SHA-256 ([0-9a-f]{64})", (folder / "SOURCES.md").read_text(encoding="utf-8"))
    assert stated, "SOURCES.md names no SHA-256 for cinc2021_weights.csv"
    assert sha256_of(folder / "cinc2021_weights.csv") == stated.group(1)


def _reference_score(labels, outputs, weights, normal):
    """The challenge score written out as its definition reads, record by record (independent loops)."""
    def total(outs):
        a = np.zeros_like(weights)
        for lab, out in zip(labels, outs, strict=True):
            norm = max(len(set(np.flatnonzero(lab)) | set(np.flatnonzero(out))), 1)
            for j, k in itertools.product(np.flatnonzero(lab), np.flatnonzero(out)):
                a[j, k] += 1 / norm
        return (weights * a).sum()
    always_normal = np.zeros_like(labels)
    always_normal[:, normal] = 1
    return (total(outputs) - total(always_normal)) / (total(labels) - total(always_normal))


def test_challenge_score_hand_computed_on_three_records():
    classes = [AF, AFL, NSR]
    y = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1]])
    d = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    # weights: AF-AFL 0.5, AF-NSR 0.25, diagonal 1.
    # observed 0.5*0.5 + 1 + (0.5*1 + 0.5*0.25) = 1.875; correct 1 + 1 + 1.25 = 3.25;
    # always NSR 0.125 + 1 + 0.625 = 1.75 -> (1.875 - 1.75) / (3.25 - 1.75) = 1/12
    assert challenge_score_2021(y, d, classes) == pytest.approx(1 / 12)
    assert challenge_score_2021(y, y, classes) == pytest.approx(1.0)
    assert challenge_score_2021(y, np.array([[0, 0, 1]] * 3), classes) == pytest.approx(0.0)


def test_challenge_score_merges_equivalent_codes_and_ignores_unscored_ones():
    classes = [CRBBB, RBBB, NSR, "67741000119109"]  # the last (LAE) is unscored
    y = np.array([[0, 1, 0, 1], [0, 0, 1, 0]])
    d = np.array([[1, 0, 0, 0], [0, 0, 1, 1]])  # CRBBB for RBBB is right; LAE outputs do not count
    assert challenge_score_2021(y, d, classes) == pytest.approx(1.0)


def test_challenge_score_matches_its_definition_on_random_data():
    groups, weights = cinc2021_weights()
    classes = [g[0] for g in groups]
    rng = np.random.default_rng(3)
    y = (rng.random((40, 26)) < 0.12).astype(int)
    d = (rng.random((40, 26)) < 0.15).astype(int)
    expected = _reference_score(y, d, weights, classes.index(NSR))
    assert challenge_score_2021(y, d, classes) == pytest.approx(expected, rel=1e-12)
