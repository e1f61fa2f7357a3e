"""Stratified split / k-fold and class weights: proportions, disjointness, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from ecgzoo.data.splits import class_weights, stratified_kfold, stratified_split

LABELS = np.array([0] * 50 + [1] * 10 + [2] * 30 + [3] * 4)


def test_split_is_stratified_disjoint_and_complete():
    train, val = stratified_split(LABELS, val_fraction=0.3, seed=0)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(LABELS.size))
    assert np.bincount(LABELS[val], minlength=4).tolist() == [15, 3, 9, 1]


def test_split_reproducible_by_seed():
    a = stratified_split(LABELS, seed=1)
    b = stratified_split(LABELS, seed=1)
    c = stratified_split(LABELS, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(LABELS, val_fraction=1.0)


def test_kfold_partitions_every_record_once_and_stratifies():
    folds = stratified_kfold(LABELS, k=5, seed=0)
    vals = np.concatenate([v for _, v in folds])
    assert np.array_equal(np.sort(vals), np.arange(LABELS.size))
    for train, val in folds:
        assert np.intersect1d(train, val).size == 0 and train.size + val.size == LABELS.size
        assert np.bincount(LABELS[val], minlength=4)[0] == 10  # 50 N records over 5 folds
        assert np.bincount(LABELS[val], minlength=4)[1] == 2


def test_class_weights_inverse_frequency():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    # n / (present classes * count): 4 / (2 * 3) and 4 / (2 * 1); absent class 2 gets 0
    np.testing.assert_allclose(w, [4 / 6, 2.0, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        class_weights(np.array([0, 3]), 3)


def test_multilabel_split_sends_every_label_with_two_records_to_both_sides():
    from ecgzoo.data.splits import multilabel_split

    rng = np.random.default_rng(0)
    targets = (rng.random((60, 5)) < [0.5, 0.3, 0.2, 0.05, 0.0]).astype(np.uint8)
    targets[:2, 4] = 1  # a class with exactly two records
    train, val = multilabel_split(targets, val_fraction=0.3, seed=1)
    assert sorted(np.r_[train, val].tolist()) == list(range(60)) and not set(train) & set(val)
    for c in range(5):
        if targets[:, c].sum() >= 2:
            assert targets[val, c].any() and targets[train, c].any(), c
    again = multilabel_split(targets, val_fraction=0.3, seed=1)
    np.testing.assert_array_equal(again[1], val)
    with pytest.raises(ValueError, match=r"\(records, classes\)"):
        multilabel_split(np.zeros(5))


def test_dataset_split_maps_a_recommended_split_to_prepared_positions():
    from ecgzoo.data.splits import dataset_split

    class Folds:
        def default_split(self):
            return {"train": ["a", "b", "gone"], "val": ["c"], "test": ["d"]}

    train, val, test = dataset_split(Folds(), ["d", "c", "b", "a"])
    assert train.tolist() == [2, 3] and val.tolist() == [1] and test.tolist() == [0]
    assert dataset_split(object(), ["a"]) is None
