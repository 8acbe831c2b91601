"""Reading Failure-Dataset-OpenStack's files: one campaign validated, or all three aligned.

The data set (``dessertlab/Failure-Dataset-OpenStack``; D. Cotroneo, L. De Simone, P. Liguori,
R. Natella, "Enhancing the analysis of software failures in cloud computing systems with deep
learning", Journal of Systems and Software 181, 2021) holds three fault-injection campaigns on
OpenStack, DEPL, NET and STO. Each campaign folder has:

- ``SEQ.tsv``: a header of d event-type names, then one row of d integer counts per
  experiment (a bag of counts, not an ordered sequence);
- ``LCS_with_VMM.tsv``: a header with the same d names twice, then 2d integers per experiment:
  *spurious* anomalies (columns 1..d) and *missing* anomalies (columns d+1..2d);
- ``Failure_Labels.txt``: one integer label per experiment, numbered differently in each
  campaign (``label_map.json`` at the data root, or
  :data:`~pase_gym.datasets.campaigns.DEFAULT_LABEL_MAP`, names them).

The data set is GPL-3.0 and is not shipped with pase-gym:
:func:`~pase_gym.datasets.locate.find_data_root` says where it is looked for.
:func:`load_campaign` reads and validates one campaign; :func:`load_all` aligns the three on the
union of their event names (:func:`~pase_gym.datasets.dataset.align`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pase_gym.datasets.campaign import Campaign, frozen
from pase_gym.datasets.campaigns import CAMPAIGNS, CLASS_NAMES, DEFAULT_LABEL_MAP, campaign_name
from pase_gym.datasets.dataset import Dataset, align
from pase_gym.datasets.locate import ORIGIN, find_data_root
from pase_gym.errors import DatasetError

logger = logging.getLogger(__name__)

SEQ_FILE = "SEQ.tsv"
LCS_FILE = "LCS_with_VMM.tsv"
LABELS_FILE = "Failure_Labels.txt"
LABEL_MAP_FILE = "label_map.json"


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
    campaign = campaign_name(name)
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
        seq=frozen(seq),
        spurious=frozen(np.ascontiguousarray(lcs[:, :d])),
        missing=frozen(np.ascontiguousarray(lcs[:, d:])),
        raw_labels=frozen(raw),
        labels=frozen(labels),
        label_map=dict(label_map),
        source=folder,
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
