"""`physionet2017`: the PhysioNet/CinC Challenge 2017 training set, read as PhysioNet distributes it.

Single-lead records at 300 Hz (`A?????.hea` + `A?????.mat`, WFDB format 16, 1000 adu/mV) with
labels in `REFERENCE-v3.csv` (PhysioNet's revised labels, used when present) or `REFERENCE.csv`.
Classes: the challenge's N, A, O, ~ by default; `classes3 = true` drops the noisy records (~)
as the paper did.

Where the data is, first match wins: the `path` option, the `ECGZOO_DATA` environment variable,
the per-user cache folder (`$XDG_CACHE_HOME/ecgzoo/physionet2017`, i.e. `~/.cache/...`). Each
may be the record folder itself, a folder holding `training2017/` or `training2017.zip`, or the
zip file. When nothing is there, the set is downloaded from PhysioNet's versioned location and
verified (`fetch_physionet2017`, through `ecgzoo.plugin_api.download_file`); offline, the error says which files to put where.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydantic

import ecgzoo
from ecgzoo.plugin_api import (
    DownloadError,
    attempt_download,
    default_cache_dir,
    download_file,
    extract_zip_atomically,
    fetch_text,
    parse_sha256sums,
)
from ecgzoo_plugins.paper import CHALLENGE_CLASSES, PAPER_PIPELINE
from ecgzoo_plugins.wfdb_records import LabelledWfdbFolder, read_labels_csv

#: PhysioNet's versioned location of the challenge files (the old physionet.org/challenge/2017/...
#: URLs moved once and broke loaders); it lists a SHA256SUMS.txt of its files
PHYSIONET_2017_URL = "https://physionet.org/files/challenge-2017/1.0.0/"
#: the files the dataset needs, relative to the URL above
PHYSIONET_2017_FILES = ("training2017.zip", "REFERENCE-v3.csv")
CLASSES4 = ("N", "A", "O", "~")
#: what the headers call the one lead: "ECG". The AliveCor device records roughly lead I (one
#: electrode per hand), but the data does not say which lead, so the name stays the header's.
LEAD_NAMES = ("ECG",)
CLASSES3 = ("N", "A", "O")


class DataNotFoundError(ecgzoo.ConfigError):
    """The data is not where the dataset looked and could not be downloaded."""


class Physionet2017Config(ecgzoo.PluginConfig):
    path: str | None = pydantic.Field(
        None,
        description="record folder, folder with training2017/ or training2017.zip, or the zip (None: $ECGZOO_DATA, then the user cache)",
    )
    reference: str = pydantic.Field(
        "auto", pattern="^(auto|v3|original)$",
        description="label file: auto (REFERENCE-v3.csv when present, else REFERENCE.csv), v3, or original (REFERENCE.csv)",
    )
    classes3: bool = pydantic.Field(False, description="the paper's 3 classes: drop the noisy (~) records")
    download: bool = pydantic.Field(True, description="download from PhysioNet when the data is not found")
    url: str = pydantic.Field(PHYSIONET_2017_URL, description="PhysioNet's versioned location of the challenge files")
    fs: float = pydantic.Field(300.0, gt=0.0, description="expected sampling rate; a record at another rate is an error")
    min_seconds: float = pydantic.Field(1.0, ge=0.0, description="records shorter than this are an error")


def default_data_root() -> Path:
    """The per-user folder the dataset looks in (and downloads to) when nothing else is set."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ecgzoo" / "physionet2017"


def fetch_physionet2017(root: Path, base_url: str = PHYSIONET_2017_URL, progress: bool = True,
                        timeout: float = 30.0) -> Path:
    """Download, verify and unpack the 2017 training set under `root`; returns `root/training2017`."""
    root = Path(root)
    if not base_url.endswith("/"):
        base_url += "/"
    sums = parse_sha256sums(fetch_text(base_url + "SHA256SUMS.txt", timeout))
    for name in PHYSIONET_2017_FILES:
        if name not in sums:
            raise DownloadError(f"{base_url}SHA256SUMS.txt does not list {name}; PhysioNet's layout changed")
        download_file(base_url + name, root / name, sums[name], progress, timeout)
    folder = extract_zip_atomically(root / "training2017.zip", root / "training2017")
    v3 = folder / "REFERENCE-v3.csv"
    if not v3.is_file():
        tmp = v3.with_name(v3.name + ".tmp")
        shutil.copyfile(root / "REFERENCE-v3.csv", tmp)
        os.replace(tmp, v3)
    return folder


def _has_labels(folder: Path) -> bool:
    return (folder / "REFERENCE.csv").is_file() or (folder / "REFERENCE-v3.csv").is_file()


def _resolve(root: Path) -> Path | None:
    """The record folder under `root` (unpacking a training2017.zip found there), or None."""
    if root.is_file() and root.suffix == ".zip":
        return extract_zip_atomically(root, root.with_suffix(""))
    if _has_labels(root):
        return root
    if _has_labels(root / "training2017"):
        return root / "training2017"
    if (root / "training2017.zip").is_file():
        return extract_zip_atomically(root / "training2017.zip", root / "training2017")
    return None


def locate(config: Physionet2017Config, progress: bool = True) -> Path:
    """The folder holding the records and REFERENCE*.csv; downloads or explains what to put where."""
    if config.path:
        root, source = Path(config.path).expanduser(), "the dataset's `path` option"
    elif os.environ.get("ECGZOO_DATA"):
        root, source = Path(os.environ["ECGZOO_DATA"]).expanduser(), "the ECGZOO_DATA environment variable"
    else:
        root, source = default_data_root(), "the per-user cache folder"
    found = _resolve(root)
    if found is not None:
        return found
    fetched, why = attempt_download(
        config.download, config.url, lambda: fetch_physionet2017(root if root.suffix != ".zip" else root.parent, config.url, progress))
    if fetched is not None:
        return fetched
    raise DataNotFoundError(
        f"PhysioNet 2017 training data not found at {root} (from {source}) and {why}.\n"
        f"Put into {root} either\n"
        f"  training2017.zip   from {config.url}training2017.zip, or\n"
        f"  training2017/      its unpacked folder (A00001.hea, A00001.mat, ..., RECORDS, REFERENCE.csv),\n"
        f"plus REFERENCE-v3.csv from {config.url}REFERENCE-v3.csv (revised labels; optional) inside training2017/.\n"
        f"Or point to the data with the dataset option path=... (e.g. --set dataset.path=/data/training2017) "
        f"or the ECGZOO_DATA environment variable."
    )


class Physionet2017(LabelledWfdbFolder, ecgzoo.Dataset):
    default_preprocessing = PAPER_PIPELINE  # the paper's (Goodfellow et al. 2018)
    scored_classes = CHALLENGE_CLASSES  # the challenge's F1 averages N, A, O; ~ is classified, not scored
    """The challenge records with their labels; signals in mV, shape (1, samples), 300 Hz."""

    lead_names = LEAD_NAMES

    def __init__(self, config: Physionet2017Config):
        self.config = config
        self.folder = locate(config)
        self.classes = CLASSES3 if config.classes3 else CLASSES4
        self.cache_dir = default_cache_dir()
        v3, original = self.folder / "REFERENCE-v3.csv", self.folder / "REFERENCE.csv"
        if config.reference == "v3" or (config.reference == "auto" and v3.is_file()):
            self.labels_file = v3
        else:
            self.labels_file = original
        if not self.labels_file.is_file():
            raise DataNotFoundError(f"label file {self.labels_file} not found (reference = {config.reference!r})")
        self._labels: dict[str, str] = {}
        self._missing = f"not in {self.labels_file} (or dropped by classes3)"
        for rid, label in read_labels_csv(self.labels_file).items():
            if label not in CLASSES4:
                raise ecgzoo.RecordError(rid, f"unknown label {label!r} in {self.labels_file} (expected one of {', '.join(CLASSES4)})")
            if label in self.classes:
                self._labels[rid] = label

    def __repr__(self) -> str:
        return f"Physionet2017({self.folder}, {len(self._labels)} records, labels {self.labels_file.name})"

    def load(self, record_id: str) -> ecgzoo.Record:
        label, data = self._read(record_id)
        if data.signal.shape[0] != 1:
            raise ecgzoo.RecordError(record_id, f"expected 1 lead, the record has {data.signal.shape[0]}")
        if data.units and data.units[0] != "mV":
            raise ecgzoo.RecordError(record_id, f"expected units mV, the header says {data.units[0]!r}")
        return ecgzoo.Record(signal=data.signal, fs=data.fs, record_id=record_id, label=label, units="mV",
                             meta={"source": str(self.folder)}, lead_names=LEAD_NAMES)


@ecgzoo.hookimpl
def ecgzoo_datasets() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("physionet2017", Physionet2017, Physionet2017Config,
                              summary="PhysioNet/CinC Challenge 2017 training set (single lead, 300 Hz; N, A, O, ~)")]
