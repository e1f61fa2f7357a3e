"""`cinc2021`: the PhysioNet/CinC Challenge 2021 training data, multi-label over SNOMED CT codes.

The challenge ships WFDB records (`.hea` + `.mat`) from six source databases (CPSC 2018 and its
extra set, St Petersburg INCART, PTB, PTB-XL, Georgia, Chapman-Shaoxing, Ningbo) in folders of
folders, 12 leads each (the 6/4/3/2-lead subsets of the challenge are leads selected from them:
add a `select-leads` step), at the database's own rate (257 to 1000 Hz: add a `resample` step).
Diagnoses are SNOMED CT codes in a `# Dx: code,code,...` header comment.

Classes: by default the challenge's 26 scored classes, with its four pairs of equivalent codes
merged as it scored them (a record labelled 59118001 RBBB has class 713427006 CRBBB; see
`ecgzoo_plugins.cinc2021_score`); codes the challenge did not score are left out of the labels (a record may be
left with none: it is then negative for every class, as in the challenge). `classes = "all"`
keeps every code present instead. Human names come from the challenge's mapping tables, shipped
with this plugin (`ecgzoo_plugins.cinc2021_score`, which also computes the challenge score this
plugin adds to every evaluation of tasks over its codes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pydantic

import ecgzoo
from ecgzoo import Task
from ecgzoo_plugins.cinc2021_score import (
    challenge_score_2021,
    cinc2021_diagnoses,
    cinc2021_equivalent,
    cinc2021_scored_classes,
    uses_cinc2021_codes,
)
from ecgzoo_plugins.wfdb_records import LabelledWfdbFolder, read_header, wfdb_record_ids

_DX = re.compile(r"^Dx\s*:\s*(.*)$", re.IGNORECASE)


class Cinc2021Config(ecgzoo.PluginConfig):
    path: str = pydantic.Field("", description="folder holding the challenge's training records (searched recursively)")
    classes: Literal["scored", "all"] | list[str] = pydantic.Field(
        "scored", description="scored: the challenge's 26 scored classes (equivalent codes merged); all: every code present; "
                              "or a list of SNOMED CT codes"
    )
    drop_unlabelled: bool = pydantic.Field(False, description="leave out records with none of the classes")
    fs: float | None = pydantic.Field(None, gt=0.0, description="expected sampling rate; another rate is an error (None: any)")
    min_seconds: float = pydantic.Field(1.0, ge=0.0, description="records shorter than this are errors")


def dx_codes(comments: tuple[str, ...], record_id: str) -> tuple[str, ...]:
    """SNOMED CT codes of a header's `# Dx:` comment, equivalent codes mapped to their class."""
    equivalent = cinc2021_equivalent()
    for comment in comments:
        m = _DX.match(comment)
        if m:
            codes = [c.strip() for c in m.group(1).split(",") if c.strip()]
            if not all(c.isdigit() for c in codes):
                raise ecgzoo.RecordError(record_id, f"# Dx: expects SNOMED CT codes, got {m.group(1)!r}")
            return tuple(dict.fromkeys(equivalent.get(c, c) for c in codes))
    raise ecgzoo.RecordError(record_id, "header has no '# Dx:' comment")


def class_name(code: str) -> str:
    """'164889003' -> 'AF (atrial fibrillation)'; the code itself when the mapping tables lack it."""
    dx = cinc2021_diagnoses().get(code)
    return f"{dx.abbreviation} ({dx.name})" if dx else code


class Cinc2021(LabelledWfdbFolder, ecgzoo.Dataset):
    """Challenge records with their diagnoses; signals in mV, (leads, samples), leads named from the header."""

    #: the 12 standard leads in one order, one rate for the six databases (100 Hz, as the PTB-XL benchmark),
    #: per-lead standardisation and one length (10 s, the length of most records)
    default_preprocessing = [{"name": "select-leads"}, {"name": "resample", "fs": 100.0}, {"name": "zscore"},
                             {"name": "pad-crop", "seconds": 10.0}]

    def __init__(self, config: Cinc2021Config):
        self.config = config
        if not config.path:
            raise ecgzoo.ConfigError("dataset 'cinc2021': set `path` to the challenge's training folder "
                                     "(e.g. --set dataset.path=/data/cinc2021/training)")
        self.folder = Path(config.path).expanduser()
        if not self.folder.is_dir():
            raise ecgzoo.ConfigError(f"dataset 'cinc2021': {self.folder} is not a folder")
        self._missing = f"no such record in {self.folder}"
        ids = wfdb_record_ids(self.folder, recursive=True)
        if not ids:
            raise ecgzoo.ConfigError(f"dataset 'cinc2021': no WFDB records (*.hea) under {self.folder}")
        codes = {rid: dx_codes(read_header(self.folder / rid, rid)[1].comments, rid) for rid in ids}
        if config.classes == "scored":
            self.classes = cinc2021_scored_classes()
        elif config.classes == "all":
            self.classes = tuple(sorted({c for cs in codes.values() for c in cs}, key=int))
        else:
            self.classes = tuple(cinc2021_equivalent().get(c, c) for c in config.classes)
        keep = set(self.classes)
        self._labels = {rid: tuple(c for c in self.classes if c in cs) for rid, cs in codes.items()
                        if not (config.drop_unlabelled and not keep.intersection(cs))}
        self._all_codes = codes

    @property
    def task(self) -> Task:
        return Task.multi_label(self.classes, {c: class_name(c) for c in self.classes})

    def codes(self, record_id: str) -> tuple[str, ...]:
        """Every diagnosis code of the record, scored or not (equivalent codes mapped)."""
        self.label(record_id)
        return self._all_codes[record_id]

    def __repr__(self) -> str:
        return f"Cinc2021({self.folder}, {len(self._labels)} records, {len(self.classes)} classes)"

    def load(self, record_id: str) -> ecgzoo.Record:
        label, data = self._read(record_id)
        return ecgzoo.Record(signal=data.signal, fs=data.fs, record_id=record_id, label=label, units="mV",
                             meta={"source": str(self.folder), "dx": list(self._all_codes[record_id])}, lead_names=data.lead_names)


@ecgzoo.hookimpl
def ecgzoo_datasets() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("cinc2021", Cinc2021, Cinc2021Config,
                              summary="PhysioNet/CinC Challenge 2021 (12-lead, multi-label SNOMED CT, 26 scored classes)")]


@ecgzoo.hookimpl
def ecgzoo_task_scores(task: ecgzoo.Task, targets: Any, probabilities: Any, decisions: Any) -> dict[str, Any] | None:
    """The CinC 2021 challenge score of the decisions, for any task whose classes include the challenge's
    scored SNOMED CT codes (this dataset, or the same codes read by `wfdb-folder`)."""
    if not uses_cinc2021_codes(task.classes):
        return None
    return {"challenge_score_2021": ("CinC 2021 challenge score", challenge_score_2021(targets, decisions, task.classes))}
