"""Dataset interface: a labelled collection of ECG records, loaded one at a time."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ecgzoo.core.record import Record
from ecgzoo.core.tasks import Task


class Dataset(abc.ABC):
    """What the framework needs from a dataset plugin.

    The framework calls `record_ids()` once to plan splits, `label(id)` to stratify
    and weight classes without reading signals, and `load(id)` for each record it
    feeds through the preprocessors. `classes` fixes the order of model outputs;
    `default_preprocessing` and `scored_classes` carry the data's own knowledge (how its
    records are prepared, which classes the headline score averages) so the core holds none.

    `task` says what is learnt: single-label (the default: `label(id)` is one class name) or
    multi-label (`label(id)` is a tuple of class names, possibly empty); multi-label datasets
    override it, and give human names of their classes there. `lead_names`, when the dataset
    knows them, names the rows of every record's signal (all records share them).
    """

    #: class names in output order, e.g. ("N", "A", "O", "~")
    classes: Sequence[str]
    #: names of the leads every record has, in signal order (None: not known)
    lead_names: tuple[str, ...] | None = None
    #: the preprocessing `ecgzoo run` applies when the run's config gives none: steps
    #: `{"name": <preprocessor plugin>, **options}`. The dataset knows its rate, length and noise;
    #: None means a run on it must set `preprocessing`.
    default_preprocessing: Sequence[Mapping[str, Any]] | None = None
    #: classes whose mean one-vs-rest F1 is the headline score (`challenge_f1`) of runs and
    #: evaluations on this dataset (PhysioNet 2017: N, A, O); None: every class
    scored_classes: Sequence[str] | None = None

    @property
    def task(self) -> Task:
        """Single-label over `classes`; multi-label datasets override this."""
        return Task.single_label(list(self.classes))

    @abc.abstractmethod
    def record_ids(self) -> list[str]:
        """Identifiers of every record, in a stable order."""

    @abc.abstractmethod
    def label(self, record_id: str) -> str | tuple[str, ...]:
        """Class name (multi-label: tuple of class names) of one record, without loading its signal."""

    @abc.abstractmethod
    def load(self, record_id: str) -> Record:
        """The record's signal (leads, samples) in mV, its rate and label.

        Raises `ecgzoo.RecordError` naming the record when it cannot be read.
        """

    def labels(self) -> list[str | tuple[str, ...]]:
        return [self.label(r) for r in self.record_ids()]

    def label_index(self, label: str) -> int:
        try:
            return list(self.classes).index(label)
        except ValueError:
            raise ValueError(f"label {label!r} is not one of the classes {list(self.classes)}") from None

    def __len__(self) -> int:
        return len(self.record_ids())

    def __iter__(self) -> Iterator[Record]:
        for rid in self.record_ids():
            yield self.load(rid)
