"""Sim-to-real report: how well do simulated experiments stand in for the real ones?

``python -m pase_gym.fidelity --out benchmarks/fidelity/`` (or :func:`build_report`, then
:func:`pase_gym.fidelity.render.write_report`) measures, per campaign of Failure-Dataset-OpenStack:

- **sim-trained macro-F1**: a classifier trained on simulated experiments only, scored on the
  real rows of the evaluation side of the calibration's duplicate-aware split, de-duplicated
  (unique ``(counts, label)`` rows). Three simulators: ``calibrated`` (the simulator's outcomes
  with the fitted scale, signatures and injection mix), ``scale_only`` (the same experiments,
  but the columns the simulator does not model drawn from the healthy distribution whatever
  the class: an ablation that isolates what the simulator's own dynamics carry) and
  ``uncalibrated`` (the simulator's native event stream and a uniform injection mix);
- **real-on-real ceiling**: the same classifier trained on the real train side;
- **discriminator AUC**: the same classifier telling the unique real evaluation rows from as
  many unique simulated rows, cross-validated (stratified folds), AUC from out-of-fold scores
  (0.5 = indistinguishable);
- **class-frequency divergence**: Jensen-Shannon divergence (base 2, in [0, 1]) between the
  simulated class shares and the real ones of the evaluation side.

The classifier is :class:`~pase_gym.fidelity.classifier.LogisticRegression` (scikit-learn's,
multinomial, L2, balanced class weights) on ``log1p`` counts of the campaign's columns, the
same class for every number; the scores come from :mod:`pase_gym.stats`. Nothing here is tuned
on the evaluation rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pase_gym.datasets.campaigns import CLASS_NAMES
from pase_gym.datasets.dataset import Dataset
from pase_gym.datasets.splits import unique_rows
from pase_gym.errors import DatasetError
from pase_gym.fidelity.calibration import Calibration, check_split
from pase_gym.fidelity.classifier import LogisticRegression, discriminator_auc, features
from pase_gym.fidelity.experiments import labels_of, simulate_campaign, uniform_mix
from pase_gym.fidelity.rows import calibrated_matrix, native_matrix
from pase_gym.stats import (
    bootstrap_macro_f1,
    confusion_matrix,
    f1_per_class,
    js_divergence,
    macro_f1,
)

TARGETS = {"sim_macro_f1": 0.80, "discriminator_auc": 0.65}
"""The issue's targets: sim-trained macro-F1 at least 0.80, discriminator AUC at most 0.65."""

DEFAULT_N_SIM = 1500
"""Simulated experiments per campaign, simulator variant and seed in the full report."""

DEFAULT_N_SEEDS = 3
"""Simulation seeds in the full report (the simulated variants' numbers are their mean)."""

VARIANTS = ("calibrated", "scale_only", "uncalibrated")
DIGITS = 4


def evaluation_rows(dataset: Dataset, test_rows: np.ndarray, campaign: str) -> np.ndarray:
    """The de-duplicated evaluation rows of ``campaign``: row indices into ``dataset``."""
    rows = np.intersect1d(dataset.rows_of(campaign), np.asarray(test_rows, dtype=np.int64))
    positions, _ = unique_rows(dataset.X[rows], dataset.labels[rows])
    return rows[positions]


def class_shares(labels: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Share of each class among ``labels`` (classes outside ``classes`` are ignored)."""
    labels = np.asarray(labels)
    n = max(int(np.isin(labels, list(classes)).sum()), 1)
    return {c: float(np.sum(labels == c)) / n for c in classes}


def _r(x: float | np.floating[Any]) -> float:
    return round(float(x), DIGITS)


def simulated_sets(
    calibration: Calibration, campaign: str, n_sim: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three simulated training sets of ``campaign``: variant -> (counts, labels)."""
    camp = calibration.campaigns[campaign]
    fitted = simulate_campaign(campaign, n_sim, seed=seed, mix=camp.injection_mix)
    plain = simulate_campaign(campaign, n_sim, seed=seed, mix=uniform_mix())
    y_fitted = labels_of(fitted)
    return {
        "calibrated": (calibrated_matrix(fitted, calibration, mode="full"), y_fitted),
        "scale_only": (calibrated_matrix(fitted, calibration, mode="scale"), y_fitted),
        "uncalibrated": (native_matrix(plain, calibration.columns), labels_of(plain)),
    }


def campaign_report(
    dataset: Dataset,
    calibration: Calibration,
    campaign: str,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    *,
    n_sim: int = DEFAULT_N_SIM,
    seeds: Sequence[int] = (0,),
    folds: int = 5,
) -> dict[str, Any]:
    """Every number of the report for one campaign (see the module docstring).

    Each simulation seed gives its own simulated training sets; the simulated variants' numbers
    are averaged over the seeds (``*_by_seed`` keeps each). The ceiling does not depend on a
    seed. Confusion matrices of simulated variants are summed over the seeds.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise DatasetError("expected at least one simulation seed")
    camp = calibration.campaigns[campaign]
    classes = list(camp.classes)
    present = camp.present
    train = np.intersect1d(dataset.rows_of(campaign), train_rows)
    test_all = np.intersect1d(dataset.rows_of(campaign), test_rows)
    evals = evaluation_rows(dataset, test_rows, campaign)
    x_eval = features(dataset.X[evals], present)
    y_eval = np.asarray(dataset.labels[evals])

    preds: dict[str, list[np.ndarray]] = {v: [] for v in (*VARIANTS, "real_ceiling")}
    auc_by_seed: dict[str, list[float]] = {v: [] for v in VARIANTS}
    disc_rows: dict[str, list[int]] = {}
    sim_labels: dict[str, list[np.ndarray]] = {"calibrated": [], "uncalibrated": []}
    ceiling = LogisticRegression().fit(features(dataset.X[train], present), dataset.labels[train])
    preds["real_ceiling"].append(ceiling.predict(x_eval))
    for seed in seeds:
        for name, (x, y) in simulated_sets(calibration, campaign, n_sim, seed).items():
            x_sim = features(x, present)
            preds[name].append(LogisticRegression().fit(x_sim, y).predict(x_eval))
            value, n_real, n_sim_rows = discriminator_auc(x_eval, x_sim, folds=folds, seed=seed)
            auc_by_seed[name].append(value)
            disc_rows.setdefault(name, [n_real, n_sim_rows])
            if name in sim_labels:
                sim_labels[name].append(y)

    macro: dict[str, float] = {}
    macro_by_seed: dict[str, list[float]] = {}
    macro_ci: dict[str, list[float]] = {}
    per_class: dict[str, dict[str, float]] = {}
    confusion: dict[str, list[list[int]]] = {}
    for name, runs in preds.items():
        values = []
        for pred in runs:
            labels = sorted(set(y_eval.tolist()) | set(pred.tolist()), key=_class_order)
            values.append(macro_f1(y_eval, pred, labels))
        macro[name] = _r(np.mean(values))
        if name != "real_ceiling":
            macro_by_seed[name] = [_r(v) for v in values]
        macro_ci[name] = [_r(v) for v in bootstrap_macro_f1(y_eval, np.stack(runs), seed=seeds[0])]
        scores = [f1_per_class(y_eval, pred, classes) for pred in runs]
        per_class[name] = {c: _r(np.mean([sc[c] for sc in scores])) for c in classes}
        confusion[name] = sum(
            (confusion_matrix(y_eval, pred, classes) for pred in runs),
            np.zeros((len(classes), len(classes)), dtype=np.int64),
        ).tolist()
    auc = {name: _r(np.mean(v)) for name, v in auc_by_seed.items()}

    real_eval_shares = class_shares(dataset.labels[test_all], classes)
    shares = {
        "real_eval": {c: _r(v) for c, v in real_eval_shares.items()},
        "real_train": {c: _r(v) for c, v in class_shares(dataset.labels[train], classes).items()},
    }
    divergence = {}
    for name, runs_labels in sim_labels.items():
        sim_shares = class_shares(np.concatenate(runs_labels), classes)
        shares[f"sim_{name}"] = {c: _r(v) for c, v in sim_shares.items()}
        divergence[name] = _r(
            js_divergence([sim_shares[c] for c in classes], [real_eval_shares[c] for c in classes])
        )
    return {
        "classes": classes,
        "rows": {
            "real_train": int(train.size),
            "real_eval": int(test_all.size),
            "real_eval_unique": int(evals.size),
            "sim_per_variant_and_seed": int(n_sim),
        },
        "macro_f1": macro,
        "macro_f1_by_seed": macro_by_seed,
        "macro_f1_ci95": macro_ci,
        "f1_per_class": per_class,
        "support": {c: int(np.count_nonzero(y_eval == c)) for c in classes},
        "confusion": confusion,
        "discriminator_auc": auc,
        "discriminator_auc_by_seed": {k: [_r(v) for v in vs] for k, vs in auc_by_seed.items()},
        "discriminator_rows": disc_rows,
        "class_shares": shares,
        "js_divergence": divergence,
    }


def _class_order(c: str) -> int:
    return CLASS_NAMES.index(c) if c in CLASS_NAMES else len(CLASS_NAMES)


def build_report(
    dataset: Dataset,
    calibration: Calibration,
    *,
    n_sim: int = DEFAULT_N_SIM,
    seed: int = 0,
    n_seeds: int = DEFAULT_N_SEEDS,
    folds: int = 5,
    campaigns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The sim-to-real report as a JSON-ready dictionary (no timing, no paths: reproducible).

    Args:
        dataset: the aligned data set.
        calibration: the calibration (its split must be the one of ``dataset``).
        n_sim: simulated experiments per campaign, variant and seed.
        seed: the first simulation seed (it also seeds the discriminator's folds and
            subsampling, and the bootstrap).
        n_seeds: simulation seeds ``seed, seed + 1, ...``; simulated numbers are their mean.
        folds: cross-validation folds of the discriminator.
        campaigns: which campaigns (all of the calibration's by default).

    Raises:
        DatasetError: the calibration does not match the data set's split.
    """
    train, test = check_split(calibration, dataset)
    names = list(calibration.campaigns) if campaigns is None else list(campaigns)
    per_campaign = {
        name: campaign_report(
            dataset,
            calibration,
            name,
            train,
            test,
            n_sim=n_sim,
            seeds=range(int(seed), int(seed) + int(n_seeds)),
            folds=folds,
        )
        for name in names
    }
    summary: dict[str, Any] = {}
    for key in ("macro_f1", "discriminator_auc", "js_divergence"):
        variants = per_campaign[names[0]][key]
        summary[f"mean_{key}"] = {
            v: _r(np.mean([per_campaign[n][key][v] for n in names])) for v in variants
        }
    sim_f1 = {n: per_campaign[n]["macro_f1"]["calibrated"] for n in names}
    aucs = {n: per_campaign[n]["discriminator_auc"]["calibrated"] for n in names}
    summary["targets_met"] = {
        "sim_macro_f1": {n: bool(v >= TARGETS["sim_macro_f1"]) for n, v in sim_f1.items()},
        "discriminator_auc": {n: bool(v <= TARGETS["discriminator_auc"]) for n, v in aucs.items()},
    }
    return {
        "targets": dict(TARGETS),
        "settings": {
            "n_sim": int(n_sim),
            "seed": int(seed),
            "n_seeds": int(n_seeds),
            "folds": int(folds),
            "split": {k: calibration.split[k] for k in ("test_size", "seed", "by")},
            "calibration_train_sha256": calibration.split["train_sha256"],
            "classifier": "LogisticRegression(l2=0.01, balanced; scikit-learn) on log1p counts",
        },
        "campaigns": per_campaign,
        "summary": summary,
    }
