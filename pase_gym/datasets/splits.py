"""Duplicate-aware splits: identical rows never on both sides of a split.

Many experiments of Failure-Dataset-OpenStack produced identical count vectors; a random row
split would put copies of one vector on both sides. The splits here know nothing about the
data set: one group id and one stratum id per row in, row indices out. Rows of one group
always land on the same side (or in the same fold); within a stratum the groups are shuffled
with a seeded generator and handed out greedily, so each side's class balance is close to the
whole (exact only when groups are small). :meth:`pase_gym.datasets.dataset.Dataset.train_test_split`
and :meth:`~pase_gym.datasets.dataset.Dataset.group_kfold` call them with the data set's groups;
:func:`unique_rows` de-duplicates rows for evaluation.
"""

from __future__ import annotations

import numpy as np

from pase_gym.errors import DatasetError


def _check_inputs(groups: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    groups = np.asarray(groups)
    strata = np.asarray(strata)
    if groups.ndim != 1 or strata.shape != groups.shape:
        raise DatasetError(
            f"expected 1-D groups and strata of the same length, found shapes {groups.shape} "
            f"and {strata.shape}"
        )
    if groups.size == 0:
        raise DatasetError("expected at least one row to split, found none")
    if not np.issubdtype(groups.dtype, np.integer) or groups.min() < 0:
        raise DatasetError("expected non-negative integer group ids")
    if not np.issubdtype(strata.dtype, np.integer):
        raise DatasetError(f"expected integer stratum ids, found dtype {strata.dtype}")
    return groups.astype(np.int64), strata.astype(np.int64)


def _group_table(
    groups: np.ndarray, strata: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the distinct group ids, their sizes and the stratum of each group.

    A group's stratum is the stratum of its first row; callers give every row of a group the
    same stratum (for instance the group's majority label).
    """
    ids, first, sizes = np.unique(groups, return_index=True, return_counts=True)
    return ids, sizes, strata[first]


def group_train_test_split(
    groups: np.ndarray,
    strata: np.ndarray,
    *,
    test_size: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into train and test so that no group is on both sides.

    Within each stratum the groups are shuffled and a group goes to the test side when that
    brings the stratum's test row count closer to ``test_size`` times the stratum's rows. A group
    bigger than twice the remaining target therefore stays in training, which is why the split
    is only approximately stratified when some groups are large.

    Args:
        groups: one non-negative group id per row.
        strata: one stratum id per row (the same for every row of a group).
        test_size: the wanted fraction of rows on the test side, in (0, 1).
        seed: seed of the shuffle; the same seed gives the same split.

    Returns:
        ``(train, test)``: sorted row indices, disjoint, together covering every row.

    Raises:
        DatasetError: ``test_size`` is outside (0, 1), there are fewer than two groups, or one
            side came out empty.
    """
    groups, strata = _check_inputs(groups, strata)
    if not 0.0 < float(test_size) < 1.0:
        raise DatasetError(f"expected test_size in (0, 1), found {test_size!r}")
    ids, sizes, group_strata = _group_table(groups, strata)
    if ids.size < 2:
        raise DatasetError(f"expected at least 2 groups to split, found {ids.size}")
    rng = np.random.default_rng(seed)
    in_test = np.zeros(ids.size, dtype=bool)
    for stratum in np.unique(group_strata):
        members = rng.permutation(np.flatnonzero(group_strata == stratum))
        target = float(test_size) * float(sizes[members].sum())
        taken = 0
        for g in members:
            if taken + sizes[g] / 2.0 < target:
                in_test[g] = True
                taken += int(sizes[g])
    test_groups = ids[in_test]
    test_mask = np.isin(groups, test_groups)
    train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    if train.size == 0 or test.size == 0:
        raise DatasetError(
            f"expected both sides non-empty, found {train.size} train and {test.size} test rows "
            f"(test_size={test_size}, {ids.size} groups)"
        )
    return train, test


def group_k_fold(
    groups: np.ndarray,
    strata: np.ndarray,
    *,
    k: int = 5,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut rows into ``k`` folds so that every group sits in exactly one fold.

    The groups are shuffled, ordered by size (largest first, ties in the shuffled order) and
    each goes to the fold where, with it, the fold's share of its stratum plus the fold's share
    of all rows would be smallest (ties: a seeded fold order). This balances both the class mix
    and the fold sizes; a very large group (on the real data, 215 identical STO rows) still
    makes its fold larger than the others.

    Args:
        groups: one non-negative group id per row.
        strata: one stratum id per row (the same for every row of a group).
        k: number of folds, at least 2 and at most the number of groups.
        seed: seed of the shuffle; the same seed gives the same folds.

    Returns:
        ``k`` pairs ``(train, test)`` of sorted row indices; the test parts are disjoint and
        together cover every row once.

    Raises:
        DatasetError: ``k`` is out of range or a fold came out empty.
    """
    groups, strata = _check_inputs(groups, strata)
    ids, sizes, group_strata = _group_table(groups, strata)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= ids.size:
        raise DatasetError(
            f"expected k an integer in [2, {ids.size}] (the number of groups), found {k!r}"
        )
    rng = np.random.default_rng(seed)
    tie_order = rng.permutation(k)
    order = rng.permutation(ids.size)
    order = order[np.argsort(-sizes[order], kind="stable")]
    strata_ids, stratum_of_group = np.unique(group_strata, return_inverse=True)
    stratum_totals = np.bincount(stratum_of_group, weights=sizes).astype(np.float64)
    stratum_rows = np.zeros((strata_ids.size, k), dtype=np.int64)
    fold_rows = np.zeros(k, dtype=np.int64)
    fold_of_group = np.empty(ids.size, dtype=np.int64)
    n_rows = float(groups.size)
    for g in order.tolist():
        s, size = int(stratum_of_group[g]), int(sizes[g])
        score = (stratum_rows[s] + size) / stratum_totals[s] + (fold_rows + size) / n_rows
        fold = int(np.lexsort((tie_order, score))[0])  # lexsort sorts by the last key first
        fold_of_group[g] = fold
        stratum_rows[s, fold] += size
        fold_rows[fold] += size
    if (fold_rows == 0).any():
        raise DatasetError(f"expected {k} non-empty folds, found fold sizes {fold_rows.tolist()}")
    row_fold = fold_of_group[np.searchsorted(ids, groups)]
    return [(np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f)) for f in range(k)]


def unique_rows(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``(counts, label)`` rows, in order of first appearance.

    Returns:
        ``(positions, keep)``: ``positions`` indexes the kept rows of ``X``; ``keep`` is the
        same as a boolean mask.
    """
    x = np.asarray(x)
    labels = np.asarray(labels)
    _, label_codes = np.unique(labels, return_inverse=True)
    keys = np.hstack([x, np.asarray(label_codes).reshape(-1, 1)])
    _, first = np.unique(keys, axis=0, return_index=True)
    positions = np.sort(first)
    keep = np.zeros(x.shape[0], dtype=bool)
    keep[positions] = True
    return positions, keep
