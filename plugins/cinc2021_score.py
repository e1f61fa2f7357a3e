"""The PhysioNet/CinC Challenge 2021's tables and score, shipped with the `cinc2021` dataset plugin.

Not a plugin module (no hooks): `cinc2021` reads its classes and names from here and adds the score
to every multi-label evaluation through the `ecgzoo_task_scores` hook. The tables are data under
`vocab/` in this package (sources and checks: vocab/SOURCES.md).

The 2021 challenge scores 30 SNOMED CT codes as 26 classes: four pairs are "scored as the same
diagnosis" (dx_mapping_scored.csv, Notes column; weights.csv rows like `713427006|59118001`).
`cinc2021_equivalent` maps each second code of a pair to the first, as the challenge's own
evaluation code does (the first code of a `|` group represents it).

Challenge score 2021 (Reyna et al. 2021): with the published weight matrix W over the 26 scored
classes (equivalent codes merged), A[j, k] += 1/|labels_i ∪ outputs_i| for every record i, true
class j and predicted class k; score = sum(W * A), normalised so that always predicting the true
labels scores 1 and always predicting sinus rhythm (426783006) scores 0.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: the challenge's "normal" class (sinus rhythm), used for the score's baseline
CINC2021_NORMAL = "426783006"


@dataclass(frozen=True)
class Diagnosis:
    code: str  # SNOMED CT concept id
    abbreviation: str  # the challenge's abbreviation, e.g. "AF"
    name: str  # e.g. "atrial fibrillation"
    scored: bool


def _lines(name: str) -> list[str]:
    """The lines of one shipped table (package data, found in an installed package as in the source tree)."""
    return resources.files("ecgzoo_plugins").joinpath("vocab", name).read_text(encoding="utf-8").splitlines()


@functools.lru_cache(maxsize=1)
def cinc2021_diagnoses() -> dict[str, Diagnosis]:
    """Every SNOMED CT code of the 2021 challenge's mapping tables (scored and unscored)."""
    out: dict[str, Diagnosis] = {}
    for file, scored in (("cinc2021_dx_mapping_scored.csv", True), ("cinc2021_dx_mapping_unscored.csv", False)):
        for row in csv.DictReader(_lines(file)):
            code = row["SNOMEDCTCode"].strip()
            out[code] = Diagnosis(code, row["Abbreviation"].strip(), row["Dx"].strip(), scored)
    return out


@functools.lru_cache(maxsize=1)
def cinc2021_weights() -> tuple[tuple[tuple[str, ...], ...], np.ndarray]:
    """(groups, weights): each scored class as its tuple of equivalent codes, and the 26x26 weight matrix."""
    rows = list(csv.reader(_lines("cinc2021_weights.csv")))
    columns = [tuple(c.strip().split("|")) for c in rows[0][1:]]
    names = [tuple(r[0].strip().split("|")) for r in rows[1:]]
    if names != columns:
        raise ValueError("cinc2021_weights.csv: row and column classes differ")
    weights = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float64)
    return tuple(columns), weights


@functools.lru_cache(maxsize=1)
def cinc2021_equivalent() -> dict[str, str]:
    """{code: representative code} for the equivalent pairs (the first code of each `|` group)."""
    groups, _ = cinc2021_weights()
    return {code: group[0] for group in groups for code in group[1:]}


def cinc2021_scored_classes() -> tuple[str, ...]:
    """The 26 scored classes, each named by its representative code, in weights.csv order."""
    groups, _ = cinc2021_weights()
    return tuple(g[0] for g in groups)


def _to_scored(matrix: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """(N, 26) booleans over the challenge's scored classes from (N, K) over `classes` (OR of equivalents)."""
    groups, _ = cinc2021_weights()
    index = {g[0]: i for i, g in enumerate(groups)}
    equivalent = cinc2021_equivalent()
    out = np.zeros((matrix.shape[0], len(groups)), dtype=bool)
    for k, code in enumerate(classes):
        code = equivalent.get(code, code)
        if code in index:
            out[:, index[code]] |= matrix[:, k].astype(bool)
    return out


def _weighted_confusion(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    norm = np.maximum((labels | outputs).sum(1), 1).astype(np.float64)
    return (labels / norm[:, None]).T.astype(np.float64) @ outputs.astype(np.float64)


def challenge_score_2021(y: np.ndarray, decisions: np.ndarray, classes: Sequence[str]) -> float:
    """The CinC 2021 challenge metric of boolean decisions over SNOMED CT code `classes`.

    Classes outside the 30 scored codes are ignored, as the challenge did; equivalent codes
    count as one class. 0.0 when always-correct and always-normal score alike (as the challenge).
    """
    y, d = np.asarray(y), np.asarray(decisions)
    if y.ndim != 2 or y.shape != d.shape or y.shape[1] != len(classes):
        raise ValueError(f"labels {y.shape} and decisions {d.shape} must both be (records, {len(classes)} classes)")
    if not uses_cinc2021_codes(classes):
        raise ValueError(f"none of the classes {list(classes)[:6]}... is a scored SNOMED CT code of the 2021 challenge")
    groups, weights = cinc2021_weights()
    labels, outputs = _to_scored(y, classes), _to_scored(d, classes)
    normal = np.zeros_like(labels)
    normal[:, [g[0] for g in groups].index(CINC2021_NORMAL)] = True
    observed, correct, inactive = (float(np.sum(weights * _weighted_confusion(labels, o))) for o in (outputs, labels, normal))
    if correct == inactive:
        return 0.0
    return (observed - inactive) / (correct - inactive)


def uses_cinc2021_codes(classes: Sequence[str]) -> bool:
    """Whether at least one class is a scored code of the 2021 challenge (then its score is reported)."""
    scored = {c for g in cinc2021_weights()[0] for c in g}
    return any(c in scored for c in classes)
