"""Stratified train/validation splits, k folds and class weights, reproducible by seed.

The paper splits 70/30 stratified by class and weights the loss by class frequency; both need
only the labels, so nothing here reads a signal.
"""

from __future__ import annotations

import numpy as np


def _check(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D class indices, got shape {labels.shape}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
        raise ValueError("labels must be non-negative integer class indices")
    return labels.astype(np.int64)


def stratified_split(labels: np.ndarray, val_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx), sorted, with each class split in the same proportion.

    Each class contributes round(count * val_fraction) records to validation (at least one
    when it has two or more, so every class is validated), chosen at random by `seed`.
    """
    labels = _check(labels)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(idx.size * val_fraction))
        if idx.size >= 2:
            n_val = min(max(n_val, 1), idx.size - 1)
        val.append(idx[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), val_idx)
    return train_idx.astype(np.int64), val_idx.astype(np.int64)


def stratified_kfold(labels: np.ndarray, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_idx, val_idx) pairs; validation folds are disjoint, cover every record, and are stratified."""
    labels = _check(labels)
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if labels.size < k:
        raise ValueError(f"cannot make {k} folds of {labels.size} records")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(labels.size, dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        # deal the class out round-robin, continuing where the last class stopped so folds stay even
        fold_of[idx] = (np.arange(idx.size) + offset) % k
        offset = (offset + idx.size) % k
    everything = np.arange(labels.size)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights n / (present_classes * count_c) (mean 1 over records); absent classes get 0."""
    labels = _check(labels)
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"label {int(labels.max())} out of range for {num_classes} classes")
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = labels.size / (present.sum() * counts[present])
    return weights.astype(np.float32)


def rarest_label(targets: np.ndarray) -> np.ndarray:
    """(N,) group of each record of multi-label targets (N, K): the class among its labels that is rarest
    in the whole set (records without a label: group K). Splitting these groups with `stratified_split`
    stratifies a multi-label set: a class reaches both splits whenever two or more of its records have
    it as their rarest label."""
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"multi-label targets must be (records, classes), got shape {targets.shape}")
    counts = targets.sum(axis=0)
    rank = np.where(targets > 0, counts[None, :], np.inf)
    return np.where(np.isinf(rank.min(axis=1)), targets.shape[1], rank.argmin(axis=1)).astype(np.int64)


def multilabel_split(targets: np.ndarray, val_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) of multi-label targets (N, K), stratified on each record's `rarest_label`."""
    return stratified_split(rarest_label(targets), val_fraction=val_fraction, seed=seed)


def dataset_split(dataset: object, record_ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(train, val, test) positions in `record_ids` of the split a dataset recommends (`default_split()`,
    e.g. PTB-XL's folds), or None when it recommends none. Records not prepared (skipped) are left out."""
    recommend = getattr(dataset, "default_split", None)
    if recommend is None:
        return None
    position = {rid: i for i, rid in enumerate(record_ids)}
    split = recommend()
    return tuple(np.array(sorted(position[r] for r in split.get(part, []) if r in position), dtype=np.int64)
                 for part in ("train", "val", "test"))  # type: ignore[return-value]
