"""Calibration of the simulated experiments against Failure-Dataset-OpenStack.

Everything here is fitted from the **train side** of the data set's duplicate-aware split
(:meth:`~pase_gym.datasets.dataset.Dataset.train_test_split`), never from the rows the
sim-to-real report evaluates on. Per campaign the calibration holds:

- ``class_freq``: the share of each failure class among the campaign's train rows;
- ``signature``: per class and per event column, ``[p_zero, ratio, values]``: how often the
  column is 0 (missing), its mean count relative to the healthy mean (``ratio``; ``None``
  when the healthy mean is 0), and the distribution of its non-zero counts
  (``[[count, probability], ...]``, the :data:`TOP_VALUES` most frequent). The ``no_failure``
  entry is the campaign's **healthy** count per experiment, the scale of every calibrated
  count. A column absent from a class's entry was never non-zero in that class;
- ``errors``: per class, the error events (``_ERROR`` RPCs, HTTP 4xx/5xx) that appear in at
  least 5% of its rows, with that share (a readable summary of ``signature``);
- ``class_states`` and ``emission``: the workload client's event counts. ``class_states[class]``
  is how the script's steps end in the simulated experiments of that class (per step, the
  share ``completed``, ``degraded`` (the client saw success, an asynchronous agent dropped its
  part), ``failed`` after the API accepted the request, or ``rejected``; see
  :data:`pase_gym.fidelity.experiments.PHASE_STATES`), from the pilot runs under the fitted
  injection mix; ``emission[column]`` is, per step and state, the count of that event the
  client's pass leaves in the trace, for the events the simulator models (its vocabulary), fitted
  by non-negative least squares so that ``class_states @ emission`` matches the train rows'
  class means, and 0 for a step whose requests do not issue the event (its request chain's
  steps and error variants, plus the status polls, which run during every step). A status
  poll keeps counting after a failure because a ``failed`` step's client polls its resource
  until its timeout; an event several steps issue (Cinder's volume actions, Nova's status
  polls) is split over them;
- ``injection_mix``: weights over the injection sites of
  :data:`pase_gym.fidelity.scripts.SITES`, fitted so that the classes the simulator derives
  (``pilot_shares``: per site, the class shares of a small pilot run) mix to ``class_freq``
  (maximum likelihood, by EM over the mixture weights). The data set does not say which fault
  was injected in which experiment; this is the one thing about the campaign the mix infers.

What is fitted (and so partly circular when the report scores on the same data set) is the
event-count scale, the signatures of the columns the simulator does not model, the client's
per-step event counts and the injection mix. Which request chain fails, at which step, and
hence which class an experiment gets, comes from the simulator's dynamics. ``docs/fidelity.md``
spells this out.

Regenerate with ``python -m pase_gym.fidelity.calibrate --out pase_gym/fidelity/calibration.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.datasets.campaigns import CLASS_NAMES
from pase_gym.datasets.dataset import Dataset
from pase_gym.errors import DatasetError

CALIBRATION_FILE = "calibration.json"
FORMAT_VERSION = 2
TOP_VALUES = 5
"""Non-zero counts kept per (class, column): the most frequent ones."""

DEFAULT_SPLIT: dict[str, Any] = {"test_size": 0.3, "seed": 0, "by": "group"}
"""The duplicate-aware split the calibration is fitted on (its train side) and the report
evaluates on (its test side)."""


REGENERATE = "python -m pase_gym.fidelity.calibrate --out pase_gym/fidelity/calibration.json"

ABOUT = {
    "what": (
        "Calibration of pase-gym's simulated experiments against Failure-Dataset-OpenStack "
        "(GPL-3.0, not shipped; only these fitted summaries are). Fitted on the train side of "
        "the duplicate-aware split in 'split' only; the sim-to-real report evaluates on its "
        "test side."
    ),
    "regenerate": REGENERATE,
    "fields": {
        "columns": "the data set's 112 aligned event columns, in order",
        "split": "parameters of Dataset.train_test_split, row counts, sha256 of the train rows",
        "pilot": "pilot experiments per site and campaign, and their seed (injection mix fit)",
        "campaigns.*.class_freq": "class -> share of the campaign's train rows",
        "campaigns.*.columns_present": "the columns the campaign's tracer recorded",
        "campaigns.*.signature": (
            "class -> column -> [p_zero, ratio, values]: share of rows where the count is 0 "
            "(missing), mean count / healthy mean (null when the healthy mean is 0), and "
            "[[count, probability], ...] of the most frequent non-zero counts; no_failure is "
            "the healthy count per experiment; a column left out is never non-zero"
        ),
        "campaigns.*.errors": "class -> [[error event, share of rows where it appears], ...]",
        "campaigns.*.class_states": (
            "class -> per script step, shares of [completed, degraded, failed, rejected] among the "
            "simulated pilot experiments of that class under the injection mix (simulator)"
        ),
        "campaigns.*.emission": (
            "column -> per script step and state [completed, degraded, failed, rejected], "
            "the count the workload client's pass leaves (events the simulator models; "
            "non-negative least squares of the train rows' class means on class_states; 0 "
            "where the step does not issue the event)"
        ),
        "campaigns.*.injection_mix": "site -> weight (sums to 1), fitted to class_freq by EM",
        "campaigns.*.pilot_shares": "site -> class -> share of pilot experiments (simulator)",
    },
}


@dataclass(frozen=True, eq=False)
class CampaignCalibration:
    """The fitted summaries of one campaign (see the module docstring)."""

    name: str
    profile: str
    n_train_rows: int
    class_freq: dict[str, float]
    columns_present: tuple[str, ...]
    present: np.ndarray  # bool over Calibration.columns
    signature: dict[str, dict[str, tuple[float, float | None, list[list[float]]]]]
    errors: dict[str, list[list[Any]]]
    injection_mix: dict[str, float]
    pilot_shares: dict[str, dict[str, float]] = field(default_factory=dict)
    class_states: dict[str, list[float]] = field(default_factory=dict)
    emission: dict[str, list[float]] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        """The campaign's classes, in :data:`CLASS_NAMES` order."""
        return tuple(c for c in CLASS_NAMES if c in self.class_freq)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the file's layout)."""
        return {
            "profile": self.profile,
            "n_train_rows": self.n_train_rows,
            "class_freq": dict(self.class_freq),
            "columns_present": list(self.columns_present),
            "signature": {
                k: {c: [e[0], e[1], [list(v) for v in e[2]]] for c, e in sig.items()}
                for k, sig in self.signature.items()
            },
            "errors": {k: [list(v) for v in errs] for k, errs in self.errors.items()},
            "class_states": {k: list(v) for k, v in self.class_states.items()},
            "emission": {k: list(v) for k, v in self.emission.items()},
            "injection_mix": dict(self.injection_mix),
            "pilot_shares": {s: dict(v) for s, v in self.pilot_shares.items()},
        }


@dataclass(frozen=True, eq=False)
class Calibration:
    """The whole calibration file, parsed."""

    columns: tuple[str, ...]
    split: dict[str, Any]
    pilot: dict[str, Any]
    campaigns: dict[str, CampaignCalibration]
    version: int = FORMAT_VERSION

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the file's layout, header first)."""
        return {
            "_about": ABOUT,
            "version": self.version,
            "columns": list(self.columns),
            "split": dict(self.split),
            "pilot": dict(self.pilot),
            "campaigns": {name: c.as_dict() for name, c in self.campaigns.items()},
        }

    def to_json(self) -> str:
        """The file's text: nested objects on their own lines down to a class's signature
        (one line per column), compact below that, so that it diffs and reads well."""
        return _layout(self.as_dict(), 0) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration to ``path`` (folders are created)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json(), encoding="utf-8")
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "<mapping>") -> Calibration:
        """Parse the file's layout.

        Raises:
            DatasetError: a field is missing or has the wrong shape.
        """
        try:
            if int(raw["version"]) != FORMAT_VERSION:
                raise DatasetError(
                    f"expected calibration format version {FORMAT_VERSION}, found "
                    f"{raw['version']}; regenerate it with: {REGENERATE}",
                    path=source,
                )
            columns = tuple(str(c) for c in raw["columns"])
            index = {c: j for j, c in enumerate(columns)}
            campaigns = {}
            for name, data in raw["campaigns"].items():
                present_cols = tuple(str(c) for c in data["columns_present"])
                present = np.zeros(len(columns), dtype=bool)
                present[[index[c] for c in present_cols]] = True
                present.setflags(write=False)
                signature = {
                    str(k): {
                        str(c): (float(e[0]), None if e[1] is None else float(e[1]), e[2])
                        for c, e in sig.items()
                    }
                    for k, sig in data["signature"].items()
                }
                campaigns[str(name)] = CampaignCalibration(
                    name=str(name),
                    profile=str(data["profile"]),
                    n_train_rows=int(data["n_train_rows"]),
                    class_freq={str(k): float(v) for k, v in data["class_freq"].items()},
                    columns_present=present_cols,
                    present=present,
                    signature=signature,
                    errors={str(k): list(v) for k, v in data["errors"].items()},
                    injection_mix={str(k): float(v) for k, v in data["injection_mix"].items()},
                    pilot_shares={
                        str(s): {str(k): float(v) for k, v in d.items()}
                        for s, d in data.get("pilot_shares", {}).items()
                    },
                    class_states=_vectors(data["class_states"], "class_states", source),
                    emission=_vectors(data["emission"], "emission", source),
                )
            return cls(
                columns=columns,
                split=dict(raw["split"]),
                pilot=dict(raw["pilot"]),
                campaigns=campaigns,
            )
        except DatasetError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DatasetError(
                f"expected a calibration file ({type(exc).__name__}: {exc}); regenerate it "
                f"with: {REGENERATE}",
                path=source,
            ) from exc


def _vectors(raw: Mapping[str, Any], what: str, source: str) -> dict[str, list[float]]:
    """Parse ``name -> [float, ...]`` (all of one length, finite, not negative)."""
    out = {str(k): [float(x) for x in v] for k, v in raw.items()}
    lengths = {len(v) for v in out.values()}
    bad = any(not np.isfinite(v).all() or min(v, default=0.0) < 0 for v in out.values())
    if len(lengths) > 1 or bad:
        raise DatasetError(
            f"expected {what} as name -> equal-length lists of non-negative numbers; "
            f"regenerate it with: {REGENERATE}",
            path=source,
        )
    return out


def _layout(value: Any, depth: int, max_depth: int = 5) -> str:
    """JSON with one key per line for the first ``max_depth`` levels of objects."""
    if isinstance(value, dict) and value and depth < max_depth:
        pad = " " * (depth + 1)
        items = [
            f"{pad}{json.dumps(str(k))}: {_layout(v, depth + 1, max_depth)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return json.dumps(value, separators=(",", ":"))


def default_path() -> Path:
    """Where the shipped calibration file is (inside the installed package)."""
    return Path(str(resources.files("pase_gym.fidelity").joinpath(CALIBRATION_FILE)))


def load_calibration(path: str | os.PathLike[str] | None = None) -> Calibration:
    """Read a calibration file (the shipped one by default).

    Raises:
        DatasetError: the file is missing or malformed.
    """
    source = default_path() if path is None else Path(path)
    if not source.is_file():
        raise DatasetError(
            f"expected a calibration file, found none; create it with: {REGENERATE}", path=source
        )
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"expected a readable JSON calibration file: {exc}", path=source
        ) from exc
    return Calibration.from_dict(raw, source=str(source))


# --------------------------------------------------------------------------------------------
# The split it was fitted on (the fitting itself: pase_gym.fidelity.fitting)
# --------------------------------------------------------------------------------------------


def rows_digest(rows: np.ndarray) -> str:
    """sha256 of a sorted row-index array (how the calibration names its train side)."""
    arr = np.ascontiguousarray(np.sort(np.asarray(rows, dtype=np.int64)))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def split_rows(
    dataset: Dataset, split: Mapping[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The train and test rows of the calibration's split of ``dataset``."""
    params = {**DEFAULT_SPLIT, **(split or {})}
    return dataset.train_test_split(
        test_size=float(params["test_size"]), seed=int(params["seed"]), by=params["by"]
    )


def check_split(calibration: Calibration, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Recompute the calibration's split on ``dataset`` and check it names the same train rows.

    Returns:
        ``(train, test)`` row indices.

    Raises:
        DatasetError: the data set or the split differs from the one the calibration was
            fitted on (regenerate the calibration).
    """
    train, test = split_rows(dataset, calibration.split)
    if rows_digest(train) != calibration.split.get("train_sha256"):
        raise DatasetError(
            "the calibration was fitted on a different train split of the data set (the data or "
            f"the split changed); regenerate it with: {REGENERATE}"
        )
    if tuple(dataset.columns) != calibration.columns:
        raise DatasetError("the calibration's columns differ from the data set's columns")
    return train, test
