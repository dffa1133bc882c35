"""The train / test split of a dataset without a test split of its own, as scikit-learn's
``train_test_split`` draws it, in numpy alone.

``prepare`` splits the bundled digits (the dashboard's first page) this way. Importing any of
scikit-learn takes about a second (its base module imports scipy.stats and pandas), which the
first page should not wait for; the same indices must come out for the same seed, or every
saved run on digits would describe another pool. ``tests/test_data.py`` checks the indices
against ``sklearn.model_selection.train_test_split`` itself (scikit-learn 1.x:
``ShuffleSplit`` and ``StratifiedShuffleSplit._iter_indices``, ``utils.extmath._approximate_mode``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``n_draws`` to take from each class: the floor of its share, then one more
    for the classes with the largest remainders (ties drawn at random)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def train_test_indices(n_samples: int, n_test: int, random_state: int,
                       stratify: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions in ``range(n_samples)``, ``n_test`` of them for the test set, as
    ``train_test_split(np.arange(n_samples), test_size=n_test, random_state=random_state,
    stratify=stratify)`` returns them (each class in proportion where ``stratify`` gives labels)."""
    if not 0 < n_test < n_samples:
        raise ValueError(f"test_size={n_test} should be either positive and smaller than the number of "
                         f"samples {n_samples}")
    n_train = n_samples - n_test
    rng = np.random.RandomState(random_state)
    if stratify is None:
        permutation = rng.permutation(n_samples)
        return permutation[n_test:n_test + n_train], permutation[:n_test]
    classes, y_indices, class_counts = np.unique(np.asarray(stratify), return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError("The least populated classes in y have only 1 member, which is too few. The minimum "
                         "number of groups for any class cannot be less than 2. Classes with too few members are: "
                         f"{classes[class_counts < 2].tolist()}")
    for name, n in (("train_size", n_train), ("test_size", n_test)):
        if n < len(classes):
            raise ValueError(f"The {name} = {n} should be greater or equal to the number of classes = {len(classes)}")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(len(classes)):
        members = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(members[:n_i[i]])
        test.extend(members[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)
