"""The shipped CinC 2021 vocabulary and weight table: structure and agreement with each other."""

from __future__ import annotations

import numpy as np

from ecgzoo.vocab import cinc2021_diagnoses, cinc2021_equivalent, cinc2021_scored_classes, cinc2021_weights


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

    import ecgzoo.vocab
    from ecgzoo._infra.download import sha256_of

    folder = Path(ecgzoo.vocab.__file__).parent
    stated = re.search(r"SHA-256 ([0-9a-f]{64})", (folder / "SOURCES.md").read_text(encoding="utf-8"))
    assert stated, "SOURCES.md names no SHA-256 for cinc2021_weights.csv"
    assert sha256_of(folder / "cinc2021_weights.csv") == stated.group(1)
