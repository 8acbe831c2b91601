"""Loader of Failure-Dataset-OpenStack, the real-world reference of the simulator's event stream.

The data set (``dessertlab/Failure-Dataset-OpenStack``; D. Cotroneo, L. De Simone, P. Liguori,
R. Natella, "Enhancing the analysis of software failures in cloud computing systems with deep
learning", Journal of Systems and Software 181, 2021) holds three fault-injection campaigns on
OpenStack, DEPL, NET and STO. Each campaign folder has:

- ``SEQ.tsv``: a header of d event-type names, then one row of d integer counts per
  experiment (a bag of counts, not an ordered sequence);
- ``LCS_with_VMM.tsv``: a header with the same d names twice, then 2d integers per experiment:
  *spurious* anomalies (columns 1..d) and *missing* anomalies (columns d+1..2d);
- ``Failure_Labels.txt``: one integer label per experiment, numbered differently in each
  campaign (``label_map.json`` at the data root, or :data:`DEFAULT_LABEL_MAP`, names them).

The data set is GPL-3.0 and is not shipped with pase-gym: :func:`find_data_root` looks for it
(argument, ``$PASE_GYM_OPENSTACK_DATA``, then ``../shared/data/failure-dataset-openstack``).
:func:`load_campaign` reads and validates one campaign; :func:`load_all` aligns the three on the
union of their event names and offers duplicate-aware (group) splits, because many experiments
produced identical count vectors and a random row split would put copies of one vector on both
sides.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

import pase_gym
from pase_gym.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

ENV_VAR = "PASE_GYM_OPENSTACK_DATA"
"""Environment variable naming the data set's folder (the one holding DEPL/, NET/, STO/)."""

DEFAULT_RELATIVE_ROOT = Path("..") / "shared" / "data" / "failure-dataset-openstack"
"""Where the data set is looked for, relative to the working directory and the source checkout."""

CAMPAIGNS: tuple[str, ...] = ("DEPL", "NET", "STO")
"""The three campaigns, in the order :func:`load_all` stacks them."""

CAMPAIGN_WORKLOADS: dict[str, str] = {"DEPL": "deployment", "NET": "network", "STO": "storage"}
"""Campaign -> the simulator's workload profile of the same focus (also accepted as a name)."""

CLASS_NAMES: tuple[str, ...] = (
    "instance_failure",
    "volume_failure",
    "ssh_failure",
    "cleanup_failure",
    "network_failure",
    "no_failure",
)
"""Every failure class of the data set, in a fixed order (used for strata and tie-breaks)."""

DEFAULT_LABEL_MAP: dict[str, dict[int, str]] = {
    "DEPL": {
        1: "instance_failure",
        2: "volume_failure",
        3: "ssh_failure",
        4: "cleanup_failure",
        5: "network_failure",
        6: "no_failure",
    },
    "NET": {1: "instance_failure", 2: "network_failure", 3: "ssh_failure", 4: "no_failure"},
    "STO": {1: "volume_failure", 2: "instance_failure", 3: "cleanup_failure", 4: "no_failure"},
}
"""Numeric label -> class per campaign, from the upstream README; used when the data root has
no ``label_map.json`` (an upstream clone has none)."""

SEQ_FILE = "SEQ.tsv"
LCS_FILE = "LCS_with_VMM.tsv"
LABELS_FILE = "Failure_Labels.txt"
LABEL_MAP_FILE = "label_map.json"

ORIGIN = (
    "Failure-Dataset-OpenStack is not shipped with pase-gym (it is GPL-3.0). It comes from "
    "https://github.com/dessertlab/Failure-Dataset-OpenStack (Cotroneo, De Simone, Liguori, "
    "Natella, 'Enhancing the analysis of software failures in cloud computing systems with deep "
    "learning', Journal of Systems and Software 181, 2021). Clone or copy it and point pase-gym "
    f"to the folder holding DEPL/, NET/ and STO/ with root=... or the environment variable "
    f"{ENV_VAR}."
)
"""Where the data set comes from and how to point to it (part of the not-found error)."""

FeatureKind = Literal["seq", "spurious", "missing", "all"]
FEATURE_KINDS: tuple[str, ...] = ("seq", "spurious", "missing", "all")
SplitBy = Literal["group", "row"]


# --------------------------------------------------------------------------------------------
# Finding the data
# --------------------------------------------------------------------------------------------


def _candidate_roots() -> list[tuple[str, Path]]:
    checkout = Path(pase_gym.__file__).resolve().parents[1]  # the repository root
    return [
        ("the working directory", Path.cwd() / DEFAULT_RELATIVE_ROOT),
        ("the working directory", Path.cwd() / "shared" / "data" / "failure-dataset-openstack"),
        ("the source checkout", checkout / DEFAULT_RELATIVE_ROOT),
    ]


def find_data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of Failure-Dataset-OpenStack (the one holding DEPL/, NET/, STO/).

    The first of these wins: ``root`` when given; the environment variable
    ``PASE_GYM_OPENSTACK_DATA`` when set; ``../shared/data/failure-dataset-openstack`` relative
    to the working directory (or ``shared/data/...`` below it); the same relative to the source
    checkout of pase-gym. An explicit ``root`` or environment variable is never second-guessed:
    if it does not name a folder, that is an error.

    Args:
        root: the data set's folder, or ``None`` to search.

    Returns:
        The resolved folder (its contents are checked when a campaign is loaded).

    Raises:
        DatasetError: no folder was found; the message says where the data set comes from.
    """
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"expected the data set's folder here, found none. {ORIGIN}", path=path
            )
        return path.resolve()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DatasetError(
                f"expected the data set's folder here (from ${ENV_VAR}), found none. {ORIGIN}",
                path=path,
            )
        return path.resolve()
    tried = []
    for origin, path in _candidate_roots():
        if path.is_dir():
            logger.debug("Failure-Dataset-OpenStack found below %s: %s", origin, path)
            return path.resolve()
        tried.append(str(path.resolve()))
    raise DatasetError(
        f"Failure-Dataset-OpenStack not found; looked in {', '.join(dict.fromkeys(tried))} "
        f"(${ENV_VAR} is not set). {ORIGIN}"
    )


def _campaign_name(name: str) -> str:
    key = str(name).strip()
    upper = key.upper()
    if upper in CAMPAIGNS:
        return upper
    for campaign, workload in CAMPAIGN_WORKLOADS.items():
        if key.lower() == workload:
            return campaign
    choices = ", ".join(f"{c} ({w})" for c, w in CAMPAIGN_WORKLOADS.items())
    raise DatasetError(f"unknown campaign: expected one of {choices}, found {name!r}")


# --------------------------------------------------------------------------------------------
# Reading and validating files
# --------------------------------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    """Read a text file as lines, tolerating one final newline and CRLF line ends."""
    if not path.is_file():
        raise DatasetError(f"expected this file of the data set, found none. {ORIGIN}", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"expected readable UTF-8 text, could not read it: {exc}", path=path
        ) from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _parse_header(path: Path, line: str) -> list[str]:
    names = line.split("\t")
    for j, name in enumerate(names, start=1):
        if not name.strip():
            raise DatasetError(
                "expected an event-type name in the header, found an empty cell",
                path=path,
                line=1,
                column=j,
            )
        if name != name.strip():
            raise DatasetError(
                f"expected an event-type name without surrounding spaces, found {name!r}",
                path=path,
                line=1,
                column=j,
            )
    return names


def _read_count_table(path: Path) -> tuple[list[str], np.ndarray]:
    """Read a tab-separated table of a header row and rows of non-negative integer counts.

    Returns:
        The header cells and an ``(N, width)`` int64 array.
    """
    lines = _read_lines(path)
    if not lines or not lines[0].strip():
        raise DatasetError(
            "expected a header row of tab-separated event-type names, found an empty file"
            if not lines
            else "expected a header row, found an empty line",
            path=path,
            line=1,
        )
    header = _parse_header(path, lines[0])
    if len(lines) < 2:
        raise DatasetError("expected data rows after the header, found none", path=path, line=2)
    rows = [line.split("\t") for line in lines[1:]]
    widths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(widths != len(header))
    if bad.size:
        if bad.size == len(rows) and (widths == widths[0]).all():
            raise DatasetError(
                f"expected a header with one name per data column: the header has {len(header)} "
                f"names but every data row has {int(widths[0])} cells",
                path=path,
                line=1,
            )
        i = int(bad[0])
        found = "an empty line" if rows[i] == [""] else f"{int(widths[i])} cells"
        raise DatasetError(
            f"expected {len(header)} tab-separated cells (one per header name), found {found}",
            path=path,
            line=i + 2,
        )
    cells = np.array(rows, dtype=str)
    ok = np.char.isdecimal(cells) & (np.char.str_len(cells) <= 18)
    if not ok.all():
        i, j = (int(v) for v in np.argwhere(~ok)[0])
        raise DatasetError(
            f"expected a non-negative integer count under {header[j]!r}, found {cells[i, j]!r}",
            path=path,
            line=i + 2,
            column=j + 1,
        )
    try:
        values = cells.astype(np.int64)
    except ValueError as exc:  # non-ASCII decimal digits numpy cannot convert
        raise DatasetError(f"expected ASCII integer counts: {exc}", path=path) from exc
    return header, values


def _load_label_map(root: Path) -> dict[str, dict[int, str]]:
    """Read ``label_map.json`` at ``root`` or fall back to :data:`DEFAULT_LABEL_MAP`."""
    path = root / LABEL_MAP_FILE
    if not path.exists():
        logger.info("%s has no %s; using the upstream label numbering", root, LABEL_MAP_FILE)
        return {c: dict(m) for c, m in DEFAULT_LABEL_MAP.items()}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"expected readable UTF-8 JSON, could not read it: {exc}", path=path
        ) from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"expected valid JSON: {exc.msg}", path=path, line=exc.lineno, column=exc.colno
        ) from exc
    if not isinstance(raw, dict):
        raise DatasetError(
            f"expected a JSON object of campaigns, found {type(raw).__name__}", path=path
        )
    out: dict[str, dict[int, str]] = {}
    for campaign, mapping in raw.items():
        if campaign.startswith("_"):
            continue  # comments such as "_note"
        if not isinstance(mapping, dict) or not mapping:
            raise DatasetError(
                f"expected {campaign!r} to map numeric labels to class names, found {mapping!r}",
                path=path,
            )
        labels: dict[int, str] = {}
        for key, cls in mapping.items():
            if not str(key).isdecimal():
                raise DatasetError(
                    f"expected integer label keys under {campaign!r}, found {key!r}", path=path
                )
            if cls not in CLASS_NAMES:
                raise DatasetError(
                    f"expected a class in {', '.join(CLASS_NAMES)} for label {key} of "
                    f"{campaign!r}, found {cls!r}",
                    path=path,
                )
            labels[int(key)] = cls
        out[campaign] = labels
    return out


def _read_labels(
    path: Path, n_rows: int, label_map: Mapping[int, str], campaign: str
) -> np.ndarray:
    lines = _read_lines(path)
    allowed = ", ".join(str(v) for v in sorted(label_map))
    values = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        text = line.strip()
        if not text.isdecimal():
            raise DatasetError(
                f"expected one integer label ({allowed}), found {line!r}", path=path, line=i + 1
            )
        value = int(text)
        if value not in label_map:
            raise DatasetError(
                f"expected a label of campaign {campaign} ({allowed}, see {LABEL_MAP_FILE}), "
                f"found {value}",
                path=path,
                line=i + 1,
            )
        values[i] = value
    if len(lines) != n_rows:
        where = min(len(lines), n_rows) + 1
        raise DatasetError(
            f"expected {n_rows} labels (one per data row of {SEQ_FILE}), found {len(lines)}",
            path=path,
            line=where,
        )
    return values


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


# --------------------------------------------------------------------------------------------
# Grouping helpers
# --------------------------------------------------------------------------------------------


def _first_appearance_ids(keys: np.ndarray) -> np.ndarray:
    """Give identical rows of ``keys`` one id, numbered in order of first appearance."""
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[np.asarray(inverse).ravel()]


def _class_counts(labels: np.ndarray, order: Iterable[str] = CLASS_NAMES) -> dict[str, int]:
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


def _conflicts(
    groups: np.ndarray, labels: np.ndarray, campaigns: np.ndarray
) -> list[ConflictGroup]:
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
                    _class_counts(labels[rows]),
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
        return _first_appearance_ids(keys)

    def conflicting_groups(self, include_lcs: bool = False) -> list[ConflictGroup]:
        """Return the groups of identical rows whose labels disagree (row indices are local)."""
        campaigns = np.full(self.n_rows, self.name)
        return _conflicts(self.group_ids(include_lcs), self.labels, campaigns)

    def class_counts(self) -> dict[str, int]:
        """Return class name -> number of rows, in the order of the campaign's numeric labels."""
        return _class_counts(self.labels, (self.label_map[k] for k in sorted(self.label_map)))

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


def load_campaign(name: str, root: str | os.PathLike[str] | None = None) -> Campaign:
    """Read and validate one campaign of Failure-Dataset-OpenStack.

    Checks that the three files exist; that every header cell is a name, the SEQ names are
    unique and ``LCS_with_VMM.tsv``'s header is the SEQ names twice; that every data row has one
    non-negative integer per header name; that the three files have the same number of rows;
    and that every label is one of the campaign's numeric labels.

    Args:
        name: ``DEPL``, ``NET`` or ``STO`` (case-insensitive), or the workload name
            ``deployment``, ``network`` or ``storage``.
        root: the data set's folder; see :func:`find_data_root` for the default.

    Returns:
        The campaign.

    Raises:
        DatasetError: the data is missing or malformed; the message names the file, and the
            line and column where that applies.
    """
    campaign = _campaign_name(name)
    data_root = find_data_root(root)
    folder = data_root / campaign
    if not folder.is_dir():
        raise DatasetError(
            f"expected the folder of campaign {campaign}, found none. {ORIGIN}", path=folder
        )
    label_maps = _load_label_map(data_root)
    if campaign not in label_maps:
        raise DatasetError(
            f"expected numeric labels of campaign {campaign!r}, found campaigns "
            f"{', '.join(sorted(label_maps)) or 'none'}",
            path=data_root / LABEL_MAP_FILE,
        )
    label_map = label_maps[campaign]

    seq_path, lcs_path, labels_path = folder / SEQ_FILE, folder / LCS_FILE, folder / LABELS_FILE
    for path in (seq_path, lcs_path, labels_path):  # report a missing file before parsing any
        if not path.is_file():
            raise DatasetError(
                f"expected this file of the data set, found none. {ORIGIN}", path=path
            )

    names, seq = _read_count_table(seq_path)
    seen: dict[str, int] = {}
    for j, event in enumerate(names, start=1):
        if event in seen:
            raise DatasetError(
                f"expected unique event-type names, found {event!r} again "
                f"(first in column {seen[event]})",
                path=seq_path,
                line=1,
                column=j,
            )
        seen[event] = j
    d = len(names)

    lcs_names, lcs = _read_count_table(lcs_path)
    if len(lcs_names) != 2 * d:
        raise DatasetError(
            f"expected a header of 2 x {d} = {2 * d} names (the {d} names of {SEQ_FILE} twice: "
            f"spurious, then missing), found {len(lcs_names)}",
            path=lcs_path,
            line=1,
        )
    for j, (found, expected) in enumerate(zip(lcs_names, names + names, strict=True), start=1):
        if found != expected:
            half = "spurious" if j <= d else "missing"
            raise DatasetError(
                f"expected {expected!r} (name {(j - 1) % d + 1} of {SEQ_FILE}, {half} half), "
                f"found {found!r}",
                path=lcs_path,
                line=1,
                column=j,
            )
    if lcs.shape[0] != seq.shape[0]:
        raise DatasetError(
            f"expected {seq.shape[0]} data rows (as many as {SEQ_FILE}), found {lcs.shape[0]}",
            path=lcs_path,
            line=min(lcs.shape[0], seq.shape[0]) + 2,
        )

    raw = _read_labels(labels_path, seq.shape[0], label_map, campaign)
    labels = np.array([label_map[int(v)] for v in raw], dtype=str)
    logger.debug("loaded %s: %d rows x %d event types from %s", campaign, seq.shape[0], d, folder)
    return Campaign(
        name=campaign,
        event_names=tuple(names),
        seq=_frozen(seq),
        spurious=_frozen(np.ascontiguousarray(lcs[:, :d])),
        missing=_frozen(np.ascontiguousarray(lcs[:, d:])),
        raw_labels=_frozen(raw),
        labels=_frozen(labels),
        label_map=dict(label_map),
        source=folder,
    )


# --------------------------------------------------------------------------------------------
# All campaigns, aligned
# --------------------------------------------------------------------------------------------


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
        name = _campaign_name(campaign)
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
        return _first_appearance_ids(np.hstack(blocks))

    def conflicting_groups(self, include_lcs: bool = False) -> list[ConflictGroup]:
        """Return the groups of identical rows whose labels disagree (rows index the data set)."""
        return _conflicts(self.group_ids(include_lcs), self.labels, self.campaign)

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
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Cut row indices into ``k`` folds, keeping identical rows in one fold.

        Args:
            k: number of folds.
            seed: the same seed gives the same folds.
            by: ``"group"`` or ``"row"``, as in :meth:`train_test_split`.
            include_lcs: group by SEQ and LCS vectors together (finer groups).

        Returns:
            ``k`` pairs ``(train, test)``; the test parts partition the rows.
        """
        groups = self._split_groups(by, include_lcs)
        strata = self._strata(self.group_ids(include_lcs))
        return group_k_fold(groups, strata, k=k, seed=seed)

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
        X=_frozen(seq),
        spurious=_frozen(spurious),
        missing=_frozen(missing),
        labels=_frozen(np.concatenate([p.labels for p in parts])),
        raw_labels=_frozen(np.concatenate([p.raw_labels for p in parts])),
        campaign=_frozen(np.array(names, dtype=str)[campaign_index]),
        campaign_index=_frozen(campaign_index),
        present=_frozen(present),
        parts={p.name: p for p in parts},
    )


def load_all(
    root: str | os.PathLike[str] | None = None,
    campaigns: Sequence[str] = CAMPAIGNS,
) -> Dataset:
    """Load the campaigns and align them on the union of their event names.

    Args:
        root: the data set's folder; see :func:`find_data_root` for the default.
        campaigns: which campaigns, in stacking order (all three by default).

    Returns:
        The aligned :class:`Dataset` (112 columns for the full data set).

    Raises:
        DatasetError: the data is missing or malformed.
    """
    data_root = find_data_root(root)
    return align(load_campaign(name, data_root) for name in campaigns)


# --------------------------------------------------------------------------------------------
# Group-aware splits over plain arrays
# --------------------------------------------------------------------------------------------
# These know nothing about the data set: one group id and one stratum id per row in, row indices
# out. Rows of one group always land on the same side (or in the same fold); within a stratum
# the groups are shuffled with a seeded generator and handed out greedily, so each side's class
# balance is close to the whole (exact only when groups are small).
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
