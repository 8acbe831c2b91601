"""The campaigns of Failure-Dataset-OpenStack stacked on the union of their event names.

:func:`align` builds a :class:`Dataset` from loaded campaigns
(:func:`pase_gym.datasets.files.load_all` reads and aligns all three). Its splits keep
identical rows on one side (:mod:`pase_gym.datasets.splits`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from pase_gym.datasets.campaign import (
    Campaign,
    CampaignSummary,
    ConflictGroup,
    find_conflicts,
    first_appearance_ids,
    frozen,
)
from pase_gym.datasets.campaigns import CLASS_NAMES, campaign_name
from pase_gym.datasets.splits import group_k_fold, group_train_test_split
from pase_gym.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

FeatureKind = Literal["seq", "spurious", "missing", "all"]
FEATURE_KINDS: tuple[str, ...] = ("seq", "spurious", "missing", "all")
SplitBy = Literal["group", "row"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """The campaigns stacked row-wise on the union of their event names.

    A campaign's absent columns hold zero counts; :attr:`present` (or :meth:`row_present`)
    tells an absent column from a zero count.

    Attributes:
        campaigns: the campaign names, in stacking order.
        columns: the union of the event names, sorted.
        X: ``(N_total, n_columns)`` int64 SEQ counts (alias of :attr:`seq`).
        spurious: ``(N_total, n_columns)`` int64 spurious anomalies.
        missing: ``(N_total, n_columns)`` int64 missing anomalies.
        labels: ``(N_total,)`` class names.
        raw_labels: ``(N_total,)`` the numeric labels of each row's own campaign.
        campaign: ``(N_total,)`` the campaign name of each row.
        campaign_index: ``(N_total,)`` index of each row's campaign in :attr:`campaigns`.
        present: ``(n_campaigns, n_columns)`` bool, True where the campaign has the column.
        parts: the loaded :class:`Campaign` objects, by name.
    """

    campaigns: tuple[str, ...]
    columns: tuple[str, ...]
    X: np.ndarray
    spurious: np.ndarray
    missing: np.ndarray
    labels: np.ndarray
    raw_labels: np.ndarray
    campaign: np.ndarray
    campaign_index: np.ndarray
    present: np.ndarray
    parts: dict[str, Campaign]

    @property
    def seq(self) -> np.ndarray:
        """The SEQ counts, the same array as :attr:`X`."""
        return self.X

    @property
    def n_rows(self) -> int:
        """Total number of rows."""
        return int(self.X.shape[0])

    def __len__(self) -> int:
        return self.n_rows

    def shared_columns(self) -> tuple[str, ...]:
        """Return the columns every campaign has, in :attr:`columns` order."""
        shared = np.flatnonzero(self.present.all(axis=0))
        return tuple(self.columns[j] for j in shared.tolist())

    def rows_of(self, campaign: str) -> np.ndarray:
        """Return the row indices of one campaign."""
        name = campaign_name(campaign)
        if name not in self.campaigns:
            raise DatasetError(
                f"expected one of the loaded campaigns {', '.join(self.campaigns)}, "
                f"found {campaign!r}"
            )
        return np.flatnonzero(self.campaign_index == self.campaigns.index(name))

    def row_present(self) -> np.ndarray:
        """Return ``(N_total, n_columns)`` bool: does the row's campaign have the column."""
        return self.present[self.campaign_index]

    def feature_matrix(
        self, kind: FeatureKind = "seq", *, with_present: bool = False
    ) -> np.ndarray:
        """Return a feature matrix over the aligned columns.

        Args:
            kind: ``"seq"`` (counts), ``"spurious"``, ``"missing"``, or ``"all"`` (the three
                side by side, in that order).
            with_present: append the :meth:`row_present` mask as 0/1 columns.

        Returns:
            An int64 array with one row per data-set row; :meth:`feature_names` names its
            columns.
        """
        if kind not in FEATURE_KINDS:
            raise DatasetError(f"expected kind in {', '.join(FEATURE_KINDS)}, found {kind!r}")
        blocks = {
            "seq": [self.X],
            "spurious": [self.spurious],
            "missing": [self.missing],
            "all": [self.X, self.spurious, self.missing],
        }[kind]
        if with_present:
            blocks = [*blocks, self.row_present().astype(np.int64)]
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0].copy()

    def feature_names(self, kind: FeatureKind = "seq", *, with_present: bool = False) -> list[str]:
        """Name the columns of :meth:`feature_matrix`.

        Single kinds use the bare event names; ``"all"`` or ``with_present`` prefix every name
        with its block (``seq:``, ``spurious:``, ``missing:``, ``present:``).
        """
        if kind not in FEATURE_KINDS:
            raise DatasetError(f"expected kind in {', '.join(FEATURE_KINDS)}, found {kind!r}")
        kinds: list[str] = ["seq", "spurious", "missing"] if kind == "all" else [kind]
        if with_present:
            kinds.append("present")
        if len(kinds) == 1:
            return list(self.columns)
        return [f"{k}:{c}" for k in kinds for c in self.columns]

    def group_ids(self, include_lcs: bool = False) -> np.ndarray:
        """Give identical rows of one campaign one group id (in order of first appearance).

        Rows of different campaigns are never grouped (their workloads differ; on the real data
        no aligned SEQ vector occurs in two campaigns anyway).

        Args:
            include_lcs: also require identical spurious and missing vectors.

        Returns:
            ``(N_total,)`` int64 group ids.
        """
        blocks = [self.campaign_index[:, None], self.X]
        if include_lcs:
            blocks += [self.spurious, self.missing]
        return first_appearance_ids(np.hstack(blocks))

    def conflicting_groups(self, include_lcs: bool = False) -> list[ConflictGroup]:
        """Return the groups of identical rows whose labels disagree (rows index the data set)."""
        return find_conflicts(self.group_ids(include_lcs), self.labels, self.campaign)

    def _strata(self, groups: np.ndarray) -> np.ndarray:
        """One stratum per row: its campaign and its group's majority class (ties: class order)."""
        class_index = np.array([CLASS_NAMES.index(c) for c in self.labels.tolist()], dtype=np.int64)
        n_classes = len(CLASS_NAMES)
        counts = np.zeros((int(groups.max()) + 1, n_classes), dtype=np.int64)
        np.add.at(counts, (groups, class_index), 1)
        majority = counts.argmax(axis=1)  # first maximum: CLASS_NAMES order breaks ties
        return self.campaign_index * n_classes + majority[groups]

    def _split_groups(self, by: str, include_lcs: bool) -> np.ndarray:
        if by == "group":
            return self.group_ids(include_lcs)
        if by == "row":
            return np.arange(self.n_rows, dtype=np.int64)
        raise DatasetError(f"expected by='group' or by='row', found {by!r}")

    def train_test_split(
        self,
        test_size: float = 0.3,
        seed: int = 0,
        by: SplitBy = "group",
        *,
        include_lcs: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Split row indices into train and test, keeping identical rows on one side.

        Stratified approximately by campaign and (majority) class; see
        :func:`group_train_test_split`. A group whose rows carry different labels stays on one
        side as a whole (see :meth:`conflicting_groups`).

        Args:
            test_size: the wanted fraction of rows in the test part.
            seed: the same seed gives the same split.
            by: ``"group"`` (identical rows together) or ``"row"`` (a plain stratified row
                split that lets duplicates leak; for comparison only).
            include_lcs: group by SEQ and LCS vectors together (finer groups).

        Returns:
            ``(train, test)``: sorted, disjoint row indices covering every row.
        """
        groups = self._split_groups(by, include_lcs)
        strata = self._strata(self.group_ids(include_lcs))
        return group_train_test_split(groups, strata, test_size=test_size, seed=seed)

    def group_kfold(
        self,
        k: int = 5,
        seed: int = 0,
        by: SplitBy = "group",
        *,
        include_lcs: bool = False,
        rows: np.ndarray | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Cut row indices into ``k`` folds, keeping identical rows in one fold.

        Args:
            k: number of folds.
            seed: the same seed gives the same folds.
            by: ``"group"`` or ``"row"``, as in :meth:`train_test_split`.
            include_lcs: group by SEQ and LCS vectors together (finer groups).
            rows: cut only these row indices (for instance one side of
                :meth:`train_test_split`); every row by default.

        Returns:
            ``k`` pairs ``(train, test)`` of row indices into the data set; the test parts
            partition ``rows``.
        """
        groups = self._split_groups(by, include_lcs)
        strata = self._strata(self.group_ids(include_lcs))
        if rows is None:
            return group_k_fold(groups, strata, k=k, seed=seed)
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        folds = group_k_fold(groups[rows], strata[rows], k=k, seed=seed)
        return [(rows[fit], rows[check]) for fit, check in folds]

    def summary(self) -> dict[str, CampaignSummary]:
        """Return per campaign: rows, columns, distinct SEQ vectors, conflicts, class counts."""
        return {name: self.parts[name].summary() for name in self.campaigns}

    def to_dataframe(
        self, kind: FeatureKind = "seq", *, with_present: bool = False
    ) -> pd.DataFrame:
        """Return the features with ``campaign``, ``label`` and ``group`` columns (needs pandas).

        Raises:
            ImportError: pandas is not installed (``pip install pandas``).
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Dataset.to_dataframe() needs pandas: pip install pandas") from exc
        frame = pd.DataFrame(
            self.feature_matrix(kind, with_present=with_present),
            columns=self.feature_names(kind, with_present=with_present),
        )
        frame.insert(0, "group", self.group_ids())
        frame.insert(0, "label", self.labels)
        frame.insert(0, "campaign", self.campaign)
        return frame


def align(parts: Iterable[Campaign]) -> Dataset:
    """Stack campaigns on the sorted union of their event names.

    Args:
        parts: the campaigns, in stacking order (names must be distinct).

    Returns:
        The aligned :class:`Dataset`.
    """
    parts = list(parts)
    if not parts:
        raise DatasetError("expected at least one campaign to align, found none")
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise DatasetError(f"expected distinct campaigns, found {', '.join(names)}")
    columns = tuple(sorted(set().union(*(p.event_names for p in parts))))
    index = {c: j for j, c in enumerate(columns)}
    n_total = sum(p.n_rows for p in parts)
    seq, spurious, missing = (np.zeros((n_total, len(columns)), dtype=np.int64) for _ in range(3))
    present = np.zeros((len(parts), len(columns)), dtype=bool)
    start = 0
    for i, part in enumerate(parts):
        cols = np.array([index[c] for c in part.event_names], dtype=np.int64)
        rows = slice(start, start + part.n_rows)
        seq[rows, cols] = part.seq
        spurious[rows, cols] = part.spurious
        missing[rows, cols] = part.missing
        present[i, cols] = True
        start += part.n_rows
    campaign_index = np.repeat(np.arange(len(parts), dtype=np.int64), [p.n_rows for p in parts])
    return Dataset(
        campaigns=tuple(names),
        columns=columns,
        X=frozen(seq),
        spurious=frozen(spurious),
        missing=frozen(missing),
        labels=frozen(np.concatenate([p.labels for p in parts])),
        raw_labels=frozen(np.concatenate([p.raw_labels for p in parts])),
        campaign=frozen(np.array(names, dtype=str)[campaign_index]),
        campaign_index=frozen(campaign_index),
        present=frozen(present),
        parts={p.name: p for p in parts},
    )
