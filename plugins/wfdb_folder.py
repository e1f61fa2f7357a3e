"""`wfdb-folder`: bring your own data, any folder of WFDB records with a label per record.

Any number of leads and any sampling rate (add a `resample` step to bring records to the
model's rate). Labels come from a CSV of `record,label` lines (`labels.csv` or `REFERENCE.csv`
in the folder by default), or from a header comment such as `# Dx: AF` (option
`label_comment = "Dx"`). Classes are the sorted distinct labels unless listed explicitly.

With `multi_label = true` a record has a set of labels (possibly empty): `# Dx: 164889003,59118001`
in a header, `record,"AF,RBBB"` or `record,AF,RBBB` lines in a CSV, or a CSV with a header row
`record,<class>,<class>,...` and one 0/1 column per class.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydantic

import ecgzoo
from ecgzoo import Task
from ecgzoo_plugins.paper import CHALLENGE_CLASSES, PAPER_PIPELINE
from ecgzoo_plugins.wfdb_records import (
    LabelledWfdbFolder,
    read_header,
    read_labels_csv,
    read_multilabel_csv,
    wfdb_record_ids,
)


class WfdbFolderConfig(ecgzoo.PluginConfig):
    path: str = pydantic.Field("", description="folder of WFDB records (.hea + signal files)")
    labels_csv: str | None = pydantic.Field(
        None, description="CSV of record,label (relative to `path` or absolute); None: labels.csv or REFERENCE.csv in the folder"
    )
    label_comment: str | None = pydantic.Field(
        None, description="take labels from the header comment '# <this>: <label>' instead of a CSV (e.g. 'Dx')"
    )
    classes: list[str] | None = pydantic.Field(None, description="class names in output order (None: sorted distinct labels)")
    recursive: bool = pydantic.Field(False, description="also find records in sub-folders (ids are relative paths)")
    fs: float | None = pydantic.Field(None, gt=0.0, description="expected sampling rate; records at another rate are errors (None: any)")
    min_seconds: float = pydantic.Field(1.0, ge=0.0, description="records shorter than this are errors")
    scored_classes: list[str] | None = pydantic.Field(
        None, description="classes the headline F1 averages (None: the PhysioNet 2017 challenge's N, A, O where the "
                          "classes include them, as in that challenge's REFERENCE.csv layout; else every class)"
    )
    multi_label: bool = pydantic.Field(False, description="each record has a set of labels (multi-label task) instead of one")
    label_separator: str = pydantic.Field(",", min_length=1, description="separates the labels of one record (multi_label)")


class WfdbFolder(LabelledWfdbFolder, ecgzoo.Dataset):
    """Labelled WFDB records of one folder; signals in the headers' physical units (normally mV)."""

    default_preprocessing = PAPER_PIPELINE  # set `preprocessing` for data at other rates (docs/data.md: resample first)

    def __init__(self, config: WfdbFolderConfig):
        self.config = config
        if not config.path:
            raise ecgzoo.ConfigError("dataset 'wfdb-folder': set `path` to a folder of WFDB records (e.g. --set dataset.path=/data/mine)")
        self.folder = Path(config.path).expanduser()
        if not self.folder.is_dir():
            raise ecgzoo.ConfigError(f"dataset 'wfdb-folder': {self.folder} is not a folder")
        self._missing = f"no such record in {self.folder}"
        ids = wfdb_record_ids(self.folder, config.recursive)
        if not ids:
            raise ecgzoo.ConfigError(f"dataset 'wfdb-folder': no WFDB records (*.hea) in {self.folder}")
        if config.label_comment:
            self._labels = {rid: self._comment_label(rid) for rid in ids}
        else:
            self._labels = self._csv_labels(ids)
        if config.multi_label:
            seen = sorted({one for labels in self._labels.values() for one in labels})
        else:
            seen = sorted(set(self._labels.values()))
        self.classes = tuple(config.classes) if config.classes else tuple(seen)
        # this folder's default, not the core's: a folder labelled like PhysioNet 2017 is scored like it
        self.scored_classes = tuple(config.scored_classes) if config.scored_classes else \
            (tuple(c for c in CHALLENGE_CLASSES if c in self.classes) or None)
        unknown = [c for c in self.scored_classes or () if c not in self.classes]
        if unknown:
            raise ecgzoo.ConfigError(f"dataset 'wfdb-folder': scored_classes {unknown} are not among the classes {list(self.classes)}")
        for rid, label in self._labels.items():
            for one in (label if config.multi_label else [label]):
                if one not in self.classes:
                    raise ecgzoo.RecordError(rid, f"label {one!r} is not one of the configured classes {list(self.classes)}")
        if config.multi_label:  # labels in class order, so label() is canonical
            self._labels = {r: tuple(c for c in self.classes if c in set(v)) for r, v in self._labels.items()}

    @property
    def task(self) -> Task:
        return Task.multi_label(self.classes) if self.config.multi_label else Task.single_label(self.classes)

    def _split(self, text: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in text.split(self.config.label_separator) if p.strip())

    def _csv_labels(self, ids: list[str]) -> dict[str, str] | dict[str, tuple[str, ...]]:
        if self.config.labels_csv:
            path = Path(self.config.labels_csv).expanduser()
            path = path if path.is_absolute() else self.folder / path
        else:
            path = next((self.folder / n for n in ("labels.csv", "REFERENCE.csv") if (self.folder / n).is_file()), None)
            if path is None:
                raise ecgzoo.ConfigError(f"dataset 'wfdb-folder': no labels.csv or REFERENCE.csv in {self.folder}; "
                                         "set labels_csv or label_comment")
        if not path.is_file():
            raise ecgzoo.ConfigError(f"dataset 'wfdb-folder': labels file {path} not found")
        if self.config.multi_label:
            table = {r: tuple(one for v in values for one in self._split(v)) for r, values in read_multilabel_csv(path).items()}
        else:
            table = read_labels_csv(path)
        missing = [r for r in ids if r not in table]
        if missing:
            raise ecgzoo.RecordError(missing[0], f"has no label in {path} ({len(missing)} record(s) without one)")
        return {rid: table[rid] for rid in ids}

    def _comment_label(self, rid: str) -> str | tuple[str, ...]:
        _, header = read_header(self.folder / rid, rid)
        pattern = re.compile(rf"^{re.escape(self.config.label_comment or '')}\s*[:=]\s*(.+)$", re.IGNORECASE)
        for comment in header.comments:
            m = pattern.match(comment)
            if m:
                return self._split(m.group(1)) if self.config.multi_label else m.group(1).strip()
        raise ecgzoo.RecordError(rid, f"header has no comment '# {self.config.label_comment}: <label>'")

    def __repr__(self) -> str:
        return f"WfdbFolder({self.folder}, {len(self._labels)} records)"

    def load(self, record_id: str) -> ecgzoo.Record:
        label, data = self._read(record_id)
        units = data.units[0] if data.units and len(set(data.units)) == 1 else "mV"
        return ecgzoo.Record(signal=data.signal, fs=data.fs, record_id=record_id, label=label, units=units,
                             meta={"source": str(self.folder), "leads": data.sig_names}, lead_names=data.lead_names)


@ecgzoo.hookimpl
def ecgzoo_datasets() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("wfdb-folder", WfdbFolder, WfdbFolderConfig,
                              summary="your own folder of WFDB records (any leads / rate), labels from CSV or header")]
