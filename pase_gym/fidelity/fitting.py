"""Fitting the calibration (:mod:`pase_gym.fidelity.calibration`) on the train side of
Failure-Dataset-OpenStack.

Per campaign: the class frequencies and the per-class column signatures come from the train
rows alone (:func:`fit_signatures`); the injection mix comes from a seeded pilot run of the
simulated experiments per injection site (:func:`pilot_runs`, :func:`pilot_shares`) mixed to the
train rows' class shares by EM (:func:`fit_mixture`); the workload client's per-step event
counts come from the same pilot runs under that mix (:func:`class_states`) and the train rows'
class means (:func:`fit_emission`). :func:`calibrate_dataset` splits and fits in one call;
``python -m pase_gym.fidelity.calibrate`` is its command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pase_gym.datasets.campaigns import CAMPAIGN_WORKLOADS, CLASS_NAMES
from pase_gym.datasets.dataset import Dataset
from pase_gym.errors import DatasetError
from pase_gym.fidelity.calibration import (
    DEFAULT_SPLIT,
    TOP_VALUES,
    Calibration,
    CampaignCalibration,
    rows_digest,
    split_rows,
)
from pase_gym.fidelity.experiments import (
    PHASE_STATES,
    Experiment,
    labels_of,
    phase_states,
    run_experiment,
)
from pase_gym.fidelity.scripts import SITES, is_error_event, script_events, step_events

DEFAULT_PILOT = 32
"""Pilot experiments per injection site and campaign when fitting the injection mix."""


def column_signature(
    counts: np.ndarray, healthy_mean: float | None
) -> tuple[float, float | None, list[list[float]]] | None:
    """``[p_zero, ratio, values]`` of one column's counts (``None`` if never non-zero)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0 or not (counts > 0).any():
        return None
    p_zero = float(np.mean(counts == 0))
    ratio = None
    if healthy_mean is not None and healthy_mean > 0:
        ratio = round(float(counts.mean()) / healthy_mean, 3)
    values, freq = np.unique(counts[counts > 0], return_counts=True)
    order = np.lexsort((values, -freq))[:TOP_VALUES]  # most frequent first, ties: smaller count
    total = float(freq[order].sum())
    dist = [[int(values[i]), round(float(freq[i]) / total, 3)] for i in order.tolist()]
    return round(p_zero, 4), ratio, dist


def fit_signatures(
    x: np.ndarray, labels: np.ndarray, columns: Sequence[str], present: np.ndarray
) -> tuple[dict[str, dict[str, Any]], dict[str, list[list[Any]]]]:
    """Per class and present column, the signature; per class, the error events that appear."""
    cols = np.flatnonzero(present)
    healthy_rows = labels == "no_failure"
    healthy_mean = x[healthy_rows].mean(axis=0) if healthy_rows.any() else np.zeros(x.shape[1])
    signature: dict[str, dict[str, Any]] = {}
    errors: dict[str, list[list[Any]]] = {}
    for cls in CLASS_NAMES:
        rows = labels == cls
        if not rows.any():
            continue
        sig: dict[str, Any] = {}
        errs: list[list[Any]] = []
        for j in cols.tolist():
            entry = column_signature(x[rows, j], float(healthy_mean[j]))
            if entry is None:
                continue
            sig[columns[j]] = entry
            if is_error_event(columns[j]) and 1.0 - entry[0] >= 0.05:
                errs.append([columns[j], round(1.0 - entry[0], 3)])
        signature[cls] = sig
        errors[cls] = sorted(errs, key=lambda e: (-e[1], e[0]))
    return signature, errors


def pilot_runs(campaign: str, n_per_site: int, seed: int) -> dict[str, list[Experiment]]:
    """Per site, ``n_per_site`` seeded simulated experiments of ``campaign``."""
    return {
        site: [
            run_experiment(campaign, site, int(seed) * 1_000_003 + 7919 * s + i)
            for i in range(int(n_per_site))
        ]
        for s, site in enumerate(SITES)
    }


def shares_of(
    runs: Mapping[str, Sequence[Experiment]], classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per site, the class shares of its pilot experiments."""
    out: dict[str, dict[str, float]] = {}
    for site, experiments in runs.items():
        labels = labels_of(experiments)
        out[site] = {c: round(float(np.mean(labels == c)), 4) for c in classes}
    return out


def pilot_shares(
    campaign: str, classes: Sequence[str], n_per_site: int, seed: int
) -> dict[str, dict[str, float]]:
    """Per site, the class shares of ``n_per_site`` simulated experiments of ``campaign``."""
    return shares_of(pilot_runs(campaign, n_per_site, seed), classes)


def class_states(
    runs: Mapping[str, Sequence[Experiment]], mix: Mapping[str, float], classes: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per class, the mean :func:`~pase_gym.fidelity.experiments.phase_states` (flattened) of
    the pilot experiments of that class, each site weighted by its weight in ``mix`` (so, the
    states a class's experiments end in under the fitted injection campaign). A class no
    weighted experiment reaches gets zeros."""
    sums: dict[str, np.ndarray] = {}
    weights: dict[str, float] = {}
    for site, experiments in runs.items():
        w = float(mix.get(site, 0.0))
        if w <= 0.0 or not experiments:
            continue
        share = w / len(experiments)
        for exp in experiments:
            vec = phase_states(exp).ravel()
            sums[exp.label] = sums.get(exp.label, np.zeros_like(vec)) + share * vec
            weights[exp.label] = weights.get(exp.label, 0.0) + share
    size = next(iter(sums.values())).size if sums else 0
    return {
        c: (sums[c] / weights[c]) if c in sums else np.zeros(size, dtype=np.float64)
        for c in classes
    }


def fit_emission(
    x: np.ndarray,
    labels: np.ndarray,
    columns: Sequence[str],
    names: Sequence[str],
    states: Mapping[str, np.ndarray],
    emitters: Sequence[frozenset[str]],
) -> dict[str, list[float]]:
    """Per event in ``names``, the count each script step leaves in each end state.

    Non-negative least squares (:func:`scipy.optimize.nnls`) of the train rows' class means on
    the classes' mean end states, each class weighted by the square root of its row count: the
    counts that make the simulated classes' expected rows match the real ones (a compromise
    where the end states cannot tell two classes' rows apart). Only the steps
    that issue an event (``emitters``, :func:`~pase_gym.fidelity.scripts.step_events`) get a
    count of it; every other step's stays 0. Events not in ``columns`` are left out.

    Args:
        x: the campaign's train rows, ``(n, len(columns))``.
        labels: their classes.
        columns: the data set's columns.
        names: the events to fit (the simulator's vocabulary the script emits).
        states: class -> mean end-state vector (:func:`class_states`), step-major with
            ``len(PHASE_STATES)`` entries per step.
        emitters: per script step, the events it can leave.
    """
    from scipy.optimize import nnls

    classes = [c for c in states if (labels == c).any()]
    if not classes:
        raise DatasetError("expected train rows of at least one simulated class")
    design = np.array([states[c] for c in classes], dtype=np.float64)
    per_step = len(PHASE_STATES)
    if design.shape[1] != per_step * len(emitters):
        raise DatasetError(
            f"expected {per_step * len(emitters)} end-state shares per class, "
            f"found {design.shape[1]}"
        )
    n = np.array([(labels == c).sum() for c in classes], dtype=np.float64)
    w = np.sqrt(n / n.sum())
    index = {c: j for j, c in enumerate(columns)}
    out: dict[str, list[float]] = {}
    for name in names:
        j = index.get(name)
        if j is None:
            continue
        means = np.array([x[labels == c, j].mean() for c in classes], dtype=np.float64)
        mask = np.repeat([name in step for step in emitters], per_step)
        coef = np.zeros(design.shape[1], dtype=np.float64)
        if mask.any():
            coef[mask], _ = nnls((design * w[:, None])[:, mask], means * w)
        out[name] = [round(float(v), 4) for v in coef]
    return out


def fit_mixture(
    shares: np.ndarray, target: np.ndarray, iterations: int = 2000, tol: float = 1e-12
) -> np.ndarray:
    """Mixture weights ``w`` (>= 0, summing to 1) with ``w @ shares`` close to ``target``.

    Maximises ``sum_c target_c log((w @ shares)_c)`` (the likelihood of the target class
    shares) by EM over the mixture weights, from uniform weights: deterministic, and sites
    with identical class shares keep equal weights.

    Args:
        shares: ``(n_sites, n_classes)``, each row a distribution over classes.
        target: ``(n_classes,)``, a distribution.
    """
    shares = np.asarray(shares, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    w = np.full(shares.shape[0], 1.0 / shares.shape[0])
    for _ in range(int(iterations)):
        q = w @ shares
        ratio = np.divide(target, q, out=np.zeros_like(q), where=q > 0)
        new = w * (shares @ ratio)
        total = new.sum()
        if total <= 0:
            break
        new /= total
        if np.abs(new - w).max() < tol:
            w = new
            break
        w = new
    return w


def fit_calibration(
    dataset: Dataset,
    train_rows: np.ndarray,
    *,
    split: Mapping[str, Any] | None = None,
    n_test_rows: int | None = None,
    pilot: int = DEFAULT_PILOT,
    pilot_seed: int = 0,
) -> Calibration:
    """Fit the calibration from ``dataset``'s rows ``train_rows`` only.

    Args:
        dataset: the aligned data set (:func:`~pase_gym.datasets.load_all`).
        train_rows: the row indices to fit on (the train side of the split); no other row of
            ``dataset`` is read.
        split: the split parameters to record (:data:`DEFAULT_SPLIT` by default).
        n_test_rows: the size of the other side, to record.
        pilot: pilot experiments per injection site and campaign (injection mix).
        pilot_seed: their seed.

    Returns:
        The :class:`Calibration`.
    """
    train_rows = np.sort(np.asarray(train_rows, dtype=np.int64))
    if train_rows.size == 0:
        raise DatasetError("expected train rows to fit the calibration on, found none")
    x = np.asarray(dataset.X)[train_rows]
    labels = np.asarray(dataset.labels)[train_rows]
    camp_index = np.asarray(dataset.campaign_index)[train_rows]
    params = {**DEFAULT_SPLIT, **(split or {})}
    campaigns: dict[str, CampaignCalibration] = {}
    for ci, name in enumerate(dataset.campaigns):
        rows = camp_index == ci
        if not rows.any():
            continue
        present = np.asarray(dataset.present[ci], dtype=bool)
        xc, yc = x[rows], labels[rows]
        classes = [c for c in CLASS_NAMES if (yc == c).any()]
        freq = {c: round(float(np.mean(yc == c)), 4) for c in classes}
        signature, errors = fit_signatures(xc, yc, dataset.columns, present)
        runs = pilot_runs(name, pilot, pilot_seed)
        shares = shares_of(runs, classes)
        matrix = np.array([[shares[s][c] for c in classes] for s in SITES])
        weights = fit_mixture(matrix, np.array([freq[c] for c in classes]))
        mix = {s: round(float(w), 5) for s, w in zip(SITES, weights, strict=True) if w >= 5e-6}
        states = class_states(runs, mix, classes)
        col = {c: j for j, c in enumerate(dataset.columns)}
        emitted = [e for e in script_events(name) if e in col and present[col[e]]]
        emission = fit_emission(xc, yc, dataset.columns, emitted, states, step_events(name))
        campaigns[name] = CampaignCalibration(
            name=name,
            profile=CAMPAIGN_WORKLOADS[name],
            n_train_rows=int(rows.sum()),
            class_freq=freq,
            columns_present=tuple(dataset.columns[j] for j in np.flatnonzero(present).tolist()),
            present=present,
            signature=signature,
            errors=errors,
            injection_mix=mix,
            pilot_shares=shares,
            class_states={c: [round(float(v), 4) for v in states[c]] for c in classes},
            emission=emission,
        )
    return Calibration(
        columns=tuple(dataset.columns),
        split={
            **params,
            "n_train": int(train_rows.size),
            "n_test": None if n_test_rows is None else int(n_test_rows),
            "train_sha256": rows_digest(train_rows),
        },
        pilot={"per_site": int(pilot), "seed": int(pilot_seed), "sites": len(SITES)},
        campaigns=campaigns,
    )


def calibrate_dataset(
    dataset: Dataset,
    *,
    split: Mapping[str, Any] | None = None,
    pilot: int = DEFAULT_PILOT,
    pilot_seed: int = 0,
) -> Calibration:
    """Split ``dataset`` (duplicate-aware) and fit the calibration on its train side."""
    params = {**DEFAULT_SPLIT, **(split or {})}
    train, test = split_rows(dataset, params)
    return fit_calibration(
        dataset, train, split=params, n_test_rows=test.size, pilot=pilot, pilot_seed=pilot_seed
    )
