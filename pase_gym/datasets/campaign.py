"""One fault-injection campaign of Failure-Dataset-OpenStack as read-only arrays.

:class:`Campaign` holds a campaign's counts and labels
(:func:`pase_gym.datasets.files.load_campaign` reads one), :class:`CampaignSummary` its
headline numbers and :class:`ConflictGroup` a set of identical rows that carry different
labels. The grouping helpers here are shared with the
aligned :class:`~pase_gym.datasets.dataset.Dataset`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pase_gym.datasets.campaigns import CLASS_NAMES


def frozen(array: np.ndarray) -> np.ndarray:
    """Mark ``array`` read-only and return it."""
    array.setflags(write=False)
    return array


def first_appearance_ids(keys: np.ndarray) -> np.ndarray:
    """Give identical rows of ``keys`` one id, numbered in order of first appearance."""
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[np.asarray(inverse).ravel()]


def count_classes(labels: np.ndarray, order: Iterable[str] = CLASS_NAMES) -> dict[str, int]:
    """Class name -> number of ``labels`` equal to it, in ``order`` (absent classes left out)."""
    names, counts = np.unique(labels, return_counts=True)
    found = dict(zip(names.tolist(), counts.tolist(), strict=True))
    return {c: int(found[c]) for c in order if c in found}


@dataclass(frozen=True)
class ConflictGroup:
    """Identical feature rows that carry more than one label.

    Attributes:
        group: the group id (as given by ``group_ids``).
        campaign: the campaign of the rows.
        rows: indices of the rows (into the campaign or data set that reported them).
        class_counts: class name -> number of rows with that label.
    """

    group: int
    campaign: str
    rows: tuple[int, ...]
    class_counts: dict[str, int]


def find_conflicts(
    groups: np.ndarray, labels: np.ndarray, campaigns: np.ndarray
) -> list[ConflictGroup]:
    """The groups whose rows carry more than one label, sorted by group id."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    out = []
    for rows in np.split(order, starts[1:]):
        if np.unique(labels[rows]).size > 1:
            out.append(
                ConflictGroup(
                    int(groups[rows[0]]),
                    str(campaigns[rows[0]]),
                    tuple(int(r) for r in rows),
                    count_classes(labels[rows]),
                )
            )
    return sorted(out, key=lambda c: c.group)


@dataclass(frozen=True)
class CampaignSummary:
    """The headline numbers of one campaign.

    Attributes:
        name: DEPL, NET or STO.
        rows: number of experiments N.
        columns: number of event types d.
        distinct_seq: number of distinct SEQ count vectors.
        distinct_seq_lcs: number of distinct (SEQ, spurious, missing) rows.
        conflicting_seq: distinct SEQ vectors that carry more than one label.
        class_counts: class name -> rows, in the order of the campaign's numeric labels.
    """

    name: str
    rows: int
    columns: int
    distinct_seq: int
    distinct_seq_lcs: int
    conflicting_seq: int
    class_counts: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        """Return the summary as a plain, JSON-ready dictionary."""
        return {
            "name": self.name,
            "rows": self.rows,
            "columns": self.columns,
            "distinct_seq": self.distinct_seq,
            "distinct_seq_lcs": self.distinct_seq_lcs,
            "conflicting_seq": self.conflicting_seq,
            "class_counts": dict(self.class_counts),
        }


# --------------------------------------------------------------------------------------------
# One campaign
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Campaign:
    """One fault-injection campaign, validated and read into read-only numpy arrays.

    Attributes:
        name: DEPL, NET or STO.
        event_names: the campaign's d event-type names, in file order.
        seq: ``(N, d)`` int64 counts of each event type per experiment (``SEQ.tsv``).
        spurious: ``(N, d)`` int64 spurious anomalies (first half of ``LCS_with_VMM.tsv``).
        missing: ``(N, d)`` int64 missing anomalies (second half of ``LCS_with_VMM.tsv``).
        raw_labels: ``(N,)`` int64 numeric labels as in ``Failure_Labels.txt``.
        labels: ``(N,)`` class names (``instance_failure`` ... ``no_failure``).
        label_map: numeric label -> class name for this campaign.
        source: the campaign's folder.
    """

    name: str
    event_names: tuple[str, ...]
    seq: np.ndarray
    spurious: np.ndarray
    missing: np.ndarray
    raw_labels: np.ndarray
    labels: np.ndarray
    label_map: dict[int, str] = field(default_factory=dict)
    source: Path | None = None

    @property
    def n_rows(self) -> int:
        """Number of experiments N."""
        return int(self.seq.shape[0])

    @property
    def n_events(self) -> int:
        """Number of event types d."""
        return len(self.event_names)

    def __len__(self) -> int:
        return self.n_rows

    def group_ids(self, include_lcs: bool = False) -> np.ndarray:
        """Give identical rows one group id (0, 1, ... in order of first appearance).

        Args:
            include_lcs: also require identical spurious and missing vectors (finer groups).

        Returns:
            ``(N,)`` int64 group ids.
        """
        keys = np.hstack([self.seq, self.spurious, self.missing]) if include_lcs else self.seq
        return first_appearance_ids(keys)

    def conflicting_groups(self, include_lcs: bool = False) -> list[ConflictGroup]:
        """Return the groups of identical rows whose labels disagree (row indices are local)."""
        campaigns = np.full(self.n_rows, self.name)
        return find_conflicts(self.group_ids(include_lcs), self.labels, campaigns)

    def class_counts(self) -> dict[str, int]:
        """Return class name -> number of rows, in the order of the campaign's numeric labels."""
        return count_classes(self.labels, (self.label_map[k] for k in sorted(self.label_map)))

    def summary(self) -> CampaignSummary:
        """Return rows, columns, distinct vectors, conflicting vectors and class counts."""
        seq_groups = self.group_ids()
        return CampaignSummary(
            name=self.name,
            rows=self.n_rows,
            columns=self.n_events,
            distinct_seq=int(seq_groups.max()) + 1,
            distinct_seq_lcs=int(self.group_ids(include_lcs=True).max()) + 1,
            conflicting_seq=len(self.conflicting_groups()),
            class_counts=self.class_counts(),
        )
