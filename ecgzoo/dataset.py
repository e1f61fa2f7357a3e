"""Dataset interface: a labelled collection of ECG records, loaded one at a time."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence

from ecgzoo.record import Record
from ecgzoo.tasks import Task


class Dataset(abc.ABC):
    """What the framework needs from a dataset plugin.

    The framework calls `record_ids()` once to plan splits, `label(id)` to stratify
    and weight classes without reading signals, and `load(id)` for each record it
    feeds through the preprocessors. `classes` fixes the order of model outputs.

    `task` says what is learnt: single-label (the default: `label(id)` is one class name) or
    multi-label (`label(id)` is a tuple of class names, possibly empty); multi-label datasets
    override it, and give human names of their classes there. `lead_names`, when the dataset
    knows them, names the rows of every record's signal (all records share them).
    """

    #: class names in output order, e.g. ("N", "A", "O", "~")
    classes: Sequence[str]
    #: names of the leads every record has, in signal order (None: not known)
    lead_names: tuple[str, ...] | None = None
    #: preprocessing `ecgzoo run` uses when the user gives none (None: the paper's, `Pipeline.default()`)
    default_preprocessing: list[dict] | None = None

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
