"""`ptbxl`: PTB-XL 1.0.3 as PhysioNet distributes it, with the tasks of Strodthoff et al. (2021).

Layout read (https://physionet.org/content/ptb-xl/1.0.3/): `ptbxl_database.csv` (one row per
ECG: `ecg_id`, `scp_codes` as a dict literal {statement: likelihood}, `strat_fold` 1-10,
`filename_lr` / `filename_hr`), `scp_statements.csv` (per statement: `diagnostic`, `form`,
`rhythm` flags, `diagnostic_class`, `diagnostic_subclass`, `description`), and WFDB records
under `records100/` (100 Hz) and `records500/` (500 Hz), 12 leads, 10 s.

Tasks, as in Strodthoff et al., "Deep learning for ECG analysis: benchmarks and insights from
PTB-XL" (IEEE JBHI 2021) and their code (`compute_label_aggregations`, `select_data` with
min_samples = 0): `all` every statement of a record; `diag` its diagnostic statements; `subdiag`
/ `superdiag` their diagnostic sub-/superclasses; `form` / `rhythm` its form / rhythm
statements; every statement counts whatever its likelihood. A record without any label of the
task is left out; classes are the labels present, sorted. Split: the recommended folds, 1-8
train, 9 validation, 10 test (`default_split`).

Where the data is: the `path` option, else the per-user cache folder
(`$XDG_CACHE_HOME/ecgzoo/ptb-xl`). Either may be the folder holding `ptbxl_database.csv` or the
folder PhysioNet's zip unpacks to. Nothing there: the two tables and the records of the chosen
rate are downloaded file by file, each verified against PhysioNet's SHA256SUMS.txt, resuming
where an earlier download stopped; offline, the error says what to put where.
"""

from __future__ import annotations

import ast
import csv
import os
from pathlib import Path
from typing import Literal

import pydantic

import ecgzoo
from ecgzoo import Task
from ecgzoo.plugin_api import attempt_download, fetch_listed_files
from ecgzoo_plugins.wfdb_records import read_record

PTBXL_URL = "https://physionet.org/files/ptb-xl/1.0.3/"
TABLES = ("ptbxl_database.csv", "scp_statements.csv")
SUPERCLASS_NAMES = {"NORM": "normal ECG", "MI": "myocardial infarction", "STTC": "ST/T change",
                    "CD": "conduction disturbance", "HYP": "hypertrophy"}
TaskName = Literal["all", "diag", "subdiag", "superdiag", "form", "rhythm"]


class DataNotFoundError(ecgzoo.ConfigError):
    """PTB-XL is not where the dataset looked and could not be downloaded."""


class PtbXlConfig(ecgzoo.PluginConfig):
    path: str | None = pydantic.Field(None, description="folder with ptbxl_database.csv (None: the per-user cache folder)")
    task: TaskName = pydantic.Field("all", description="label set of Strodthoff et al.: all, diag, subdiag, superdiag, form, rhythm")
    fs: Literal[100, 500] = pydantic.Field(100, description="records100 (100 Hz) or records500 (500 Hz)")
    val_folds: list[int] = pydantic.Field([9], description="strat_fold values of the validation split (recommended: 9)")
    test_folds: list[int] = pydantic.Field([10], description="strat_fold values of the test split (recommended: 10)")
    download: bool = pydantic.Field(True, description="download from PhysioNet when the data is not found")
    url: str = pydantic.Field(PTBXL_URL, description="PhysioNet's versioned location of PTB-XL")


def default_data_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ecgzoo" / "ptb-xl"


#: present in a download folder while a download is unfinished: the folder is not data yet
UNFINISHED = ".ecgzoo-download-unfinished"


def _resolve(root: Path) -> Path | None:
    if (root / UNFINISHED).exists():
        return None
    if (root / TABLES[0]).is_file():
        return root
    inner = [p for p in root.iterdir() if p.is_dir() and (p / TABLES[0]).is_file()] if root.is_dir() else []
    return inner[0] if len(inner) == 1 else None


def locate(config: PtbXlConfig, progress: bool = True) -> Path:
    """The folder holding ptbxl_database.csv; downloads it (and the records of `config.fs`) or explains."""
    root = Path(config.path).expanduser() if config.path else default_data_root()
    found = _resolve(root)
    if found is not None and (found / f"records{config.fs}").is_dir():
        return found
    root = found or root  # tables there, records of this rate not yet: fetch them next to the tables

    def fetch() -> Path:
        prefix = f"records{config.fs}/"
        root.mkdir(parents=True, exist_ok=True)
        (root / UNFINISHED).touch()
        fetch_listed_files(config.url, root, lambda n: n in TABLES or n.startswith(prefix), progress)
        (root / UNFINISHED).unlink()
        return root

    fetched, why = attempt_download(config.download, config.url, fetch)
    if fetched is not None:
        return fetched
    raise DataNotFoundError(
        f"PTB-XL not found at {root} and {why}.\n"
        f"Put into {root} the contents of {config.url} (ptbxl_database.csv, scp_statements.csv and records{config.fs}/), "
        f"e.g. unpacked from PhysioNet's zip of PTB-XL 1.0.3, or point to them with --set dataset.path=..."
    )


def read_statements(path: Path) -> dict[str, dict[str, str]]:
    """{statement code: its row} of scp_statements.csv (the first, unnamed column is the code)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    return {r[0].strip(): dict(zip(head[1:], (v.strip() for v in r[1:]), strict=False)) for r in rows[1:] if r and r[0].strip()}


def task_labels(codes: list[str], statements: dict[str, dict[str, str]], task: str) -> list[str]:
    """The labels of one record for a task (Strodthoff et al.'s aggregation, see module doc)."""
    def flagged(code: str, column: str) -> bool:
        return code in statements and statements[code].get(column, "") not in ("", "0", "0.0")

    if task == "all":
        out = list(codes)
    elif task in ("diag", "subdiag", "superdiag"):
        diag = [c for c in codes if flagged(c, "diagnostic")]
        column = {"diag": None, "subdiag": "diagnostic_subclass", "superdiag": "diagnostic_class"}[task]
        out = diag if column is None else [statements[c][column] for c in diag if statements[c].get(column)]
    else:
        out = [c for c in codes if flagged(c, task)]
    return list(dict.fromkeys(out))


class PtbXl(ecgzoo.Dataset):
    """PTB-XL records with the labels of one task; signals in mV, (12, 1000) at 100 Hz or (12, 5000) at 500 Hz."""

    #: per-lead standardisation (the benchmark fits a scaler on the training folds; z-scoring each record is
    #: the per-record equivalent) and the 10 s every PTB-XL record has
    default_preprocessing = [{"name": "zscore"}, {"name": "pad-crop", "seconds": 10.0}]

    def __init__(self, config: PtbXlConfig):
        self.config = config
        self.folder = locate(config)
        statements = read_statements(self.folder / TABLES[1])
        self._labels: dict[str, tuple[str, ...]] = {}
        self._files: dict[str, str] = {}
        self._folds: dict[str, int] = {}
        column = "filename_lr" if config.fs == 100 else "filename_hr"
        with open(self.folder / TABLES[0], newline="", encoding="utf-8") as f:
            for lineno, row in enumerate(csv.DictReader(f), start=2):
                rid = str(int(float(row["ecg_id"])))
                try:
                    codes = list(ast.literal_eval(row["scp_codes"]))
                    fold = int(float(row["strat_fold"]))
                except (ValueError, SyntaxError, KeyError) as exc:
                    raise ecgzoo.RecordError(rid, f"{TABLES[0]} line {lineno}: cannot read scp_codes/strat_fold ({exc})") from None
                labels = task_labels(codes, statements, config.task)
                if labels:  # Strodthoff et al. drop records without a label of the task
                    self._labels[rid], self._files[rid], self._folds[rid] = tuple(labels), row[column], fold
        present = sorted({c for labels in self._labels.values() for c in labels})
        self.classes = tuple(present)
        self._labels = {r: tuple(c for c in present if c in set(v)) for r, v in self._labels.items()}
        names = {c: statements[c].get("description") or c for c in present if c in statements}
        self._names = {**names, **{c: SUPERCLASS_NAMES[c] for c in present if c in SUPERCLASS_NAMES}}

    @property
    def task(self) -> Task:
        return Task.multi_label(self.classes, self._names)

    def record_ids(self) -> list[str]:
        return list(self._labels)

    def label(self, record_id: str) -> tuple[str, ...]:
        try:
            return self._labels[record_id]
        except KeyError:
            raise ecgzoo.RecordError(record_id, f"not a PTB-XL ecg_id with a label of task {self.config.task!r}") from None

    def fold(self, record_id: str) -> int:
        self.label(record_id)
        return self._folds[record_id]

    def default_split(self) -> dict[str, list[str]]:
        """The recommended split: folds 1-8 train, 9 validation, 10 test (configurable)."""
        val, test = set(self.config.val_folds), set(self.config.test_folds)
        if val & test:
            raise ecgzoo.ConfigError(f"dataset 'ptbxl': folds {sorted(val & test)} are both validation and test folds")
        split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for rid, fold in self._folds.items():
            split["val" if fold in val else "test" if fold in test else "train"].append(rid)
        return split

    def __repr__(self) -> str:
        return f"PtbXl({self.folder}, task {self.config.task}, {len(self._labels)} records, {len(self.classes)} classes)"

    def load(self, record_id: str) -> ecgzoo.Record:
        label = self.label(record_id)
        data = read_record(self.folder / self._files[record_id], record_id, float(self.config.fs), 1.0)
        return ecgzoo.Record(signal=data.signal, fs=data.fs, record_id=record_id, label=label, units="mV",
                             meta={"source": str(self.folder), "fold": self._folds[record_id]}, lead_names=data.lead_names)


@ecgzoo.hookimpl
def ecgzoo_datasets() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("ptbxl", PtbXl, PtbXlConfig,
                              summary="PTB-XL 1.0.3 (12-lead, 100/500 Hz; tasks all/diag/subdiag/superdiag/form/rhythm)")]
