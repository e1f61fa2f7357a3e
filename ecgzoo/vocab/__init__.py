"""Class vocabularies shipped as data: SNOMED CT code -> abbreviation and name, and the CinC 2021
scoring table. Sources and checks: SOURCES.md in this folder.

The 2021 challenge scores 30 SNOMED CT codes as 26 classes: four pairs are "scored as the same
diagnosis" (dx_mapping_scored.csv, Notes column; weights.csv rows like `713427006|59118001`).
`CINC2021_EQUIVALENT` maps each second code of a pair to the first, as the challenge's own
evaluation code does (the first code of a `|` group represents it).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Diagnosis:
    code: str  # SNOMED CT concept id
    abbreviation: str  # the challenge's abbreviation, e.g. "AF"
    name: str  # e.g. "atrial fibrillation"
    scored: bool


@functools.lru_cache(maxsize=1)
def cinc2021_diagnoses() -> dict[str, Diagnosis]:
    """Every SNOMED CT code of the 2021 challenge's mapping tables (scored and unscored)."""
    out: dict[str, Diagnosis] = {}
    for file, scored in (("cinc2021_dx_mapping_scored.csv", True), ("cinc2021_dx_mapping_unscored.csv", False)):
        with open(HERE / file, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                code = row["SNOMEDCTCode"].strip()
                out[code] = Diagnosis(code, row["Abbreviation"].strip(), row["Dx"].strip(), scored)
    return out


@functools.lru_cache(maxsize=1)
def cinc2021_weights() -> tuple[tuple[tuple[str, ...], ...], np.ndarray]:
    """(groups, weights): each scored class as its tuple of equivalent codes, and the 26x26 weight matrix."""
    with open(HERE / "cinc2021_weights.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    columns = [tuple(c.strip().split("|")) for c in rows[0][1:]]
    names = [tuple(r[0].strip().split("|")) for r in rows[1:]]
    if names != columns:
        raise ValueError("cinc2021_weights.csv: row and column classes differ")
    weights = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float64)
    return tuple(columns), weights


#: the challenge's "normal" class (sinus rhythm), used for the score's baseline
CINC2021_NORMAL = "426783006"


@functools.lru_cache(maxsize=1)
def cinc2021_equivalent() -> dict[str, str]:
    """{code: representative code} for the equivalent pairs (the first code of each `|` group)."""
    groups, _ = cinc2021_weights()
    return {code: group[0] for group in groups for code in group[1:]}


def cinc2021_scored_classes() -> tuple[str, ...]:
    """The 26 scored classes, each named by its representative code, in weights.csv order."""
    groups, _ = cinc2021_weights()
    return tuple(g[0] for g in groups)
