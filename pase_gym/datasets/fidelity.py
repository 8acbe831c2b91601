"""Sim-to-real report: how well do simulated experiments stand in for the real ones?

``python -m pase_gym.datasets.fidelity --out benchmarks/fidelity/`` (or :func:`build_report`
then :func:`write_report`) measures, per campaign of Failure-Dataset-OpenStack:

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

The classifier is :class:`LogisticRegression` (multinomial, L2, balanced class weights) on
``log1p`` counts of the campaign's columns, the same class for every number. Nothing here is
tuned on the evaluation rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.datasets.calibration import Calibration, check_split, load_calibration
from pase_gym.datasets.openstack import (
    CLASS_NAMES,
    Dataset,
    DatasetError,
    load_all,
)
from pase_gym.datasets.simulate import (
    calibrated_matrix,
    labels_of,
    native_matrix,
    simulate_campaign,
    uniform_mix,
)

logger = logging.getLogger(__name__)

TARGETS = {"sim_macro_f1": 0.80, "discriminator_auc": 0.65}
"""The issue's targets: sim-trained macro-F1 at least 0.80, discriminator AUC at most 0.65."""

DEFAULT_N_SIM = 1500
"""Simulated experiments per campaign, simulator variant and seed in the full report."""

DEFAULT_N_SEEDS = 3
"""Simulation seeds in the full report (the simulated variants' numbers are their mean)."""

VARIANTS = ("calibrated", "scale_only", "uncalibrated")
DIGITS = 4


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def confusion_matrix(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    labels: Sequence[str],
) -> np.ndarray:
    """Counts ``[i, j]`` of rows of true class ``labels[i]`` predicted ``labels[j]``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise DatasetError(f"expected equal lengths, found {y_true.shape} and {y_pred.shape}")
    index = {c: i for i, c in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist(), strict=True):
        if t in index and p in index:
            out[index[t], index[p]] += 1
    return out


def f1_per_class(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> dict[str, float]:
    """F1 of each label (0 where a label is neither true nor predicted anywhere)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if labels is None:
        labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    out = {}
    for c in labels:
        tp = float(np.sum((y_true == c) & (y_pred == c)))
        fp = float(np.sum((y_true != c) & (y_pred == c)))
        fn = float(np.sum((y_true == c) & (y_pred != c)))
        out[c] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0
    return out


def macro_f1(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    labels: Sequence[str] | None = None,
) -> float:
    """Unweighted mean of the per-class F1 over ``labels`` (default: every label that occurs
    in ``y_true`` or ``y_pred``)."""
    scores = f1_per_class(y_true, y_pred, labels)
    if not scores:
        raise DatasetError("expected at least one label to score, found none")
    return float(np.mean(list(scores.values())))


def roc_auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``y_true`` (1 = positive).

    The Mann-Whitney statistic with average ranks for ties: the probability that a random
    positive scores above a random negative, ties counting one half.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise DatasetError(
            f"expected 1-D labels and scores of one length, found {y.shape}, {s.shape}"
        )
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise DatasetError("expected both classes among the labels to compute an AUC")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0  # average of the 1-based ranks a+1 .. b
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def bootstrap_macro_f1(
    y_true: Sequence[str] | np.ndarray,
    y_pred: Sequence[str] | np.ndarray,
    *,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`macro_f1` over resampled rows (seeded).

    ``y_pred`` may be ``(n_rows,)`` or ``(n_runs, n_rows)``: several runs' predictions of the
    same rows, whose macro-F1 is averaged on every resample (the interval of the mean).
    """
    y_true = np.asarray(y_true)
    runs = np.atleast_2d(np.asarray(y_pred))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB007]))
    values = np.empty(int(n))
    for b in range(int(n)):
        idx = rng.integers(0, y_true.size, y_true.size)
        values[b] = np.mean([macro_f1(y_true[idx], run[idx]) for run in runs])
    tail = (1.0 - float(level)) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return float(lo), float(hi)


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = equal, 1 = disjoint) of two distributions.

    Inputs are normalised to sum 1; ``0 log 0`` counts 0.
    """
    pa = np.asarray(p, dtype=np.float64)
    qa = np.asarray(q, dtype=np.float64)
    if pa.shape != qa.shape or pa.sum() <= 0 or qa.sum() <= 0 or (pa < 0).any() or (qa < 0).any():
        raise DatasetError("expected two non-negative distributions of one shape")
    pa, qa = pa / pa.sum(), qa / qa.sum()
    m = (pa + qa) / 2.0

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(pa) + 0.5 * kl(qa))


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


class LogisticRegression:
    """Multinomial logistic regression in numpy: standardised inputs, L2, balanced weights.

    Fitted by Nesterov-accelerated gradient descent with the step ``1/L`` from the loss's
    Lipschitz bound, from zero weights: deterministic, no random state.

    Args:
        l2: the L2 penalty on the weights (not the biases).
        max_iter: gradient steps at most.
        tol: stop when the largest weight change is below this.
        balanced: weight rows so that every class carries the same total weight.
    """

    def __init__(
        self, l2: float = 1e-2, max_iter: int = 500, tol: float = 1e-6, balanced: bool = True
    ) -> None:
        self.l2 = float(l2)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.balanced = bool(balanced)
        self.classes_: np.ndarray = np.array([], dtype=str)
        self.mean_: np.ndarray = np.zeros(0)
        self.scale_: np.ndarray = np.zeros(0)
        self.coef_: np.ndarray = np.zeros((0, 0))

    def _design(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_
        return np.hstack([z, np.ones((z.shape[0], 1))])

    def fit(self, x: np.ndarray, y: Sequence[str] | np.ndarray) -> LogisticRegression:
        """Fit on rows ``X`` (n, d) with labels ``y`` (at least two classes)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise DatasetError(f"expected x (n, d) and n labels, found {x.shape} and {y.shape}")
        found = set(y.tolist())
        ordered = [c for c in CLASS_NAMES if c in found] + sorted(found - set(CLASS_NAMES))
        if len(ordered) < 2:
            raise DatasetError(f"expected at least two classes to train on, found {ordered}")
        self.classes_ = np.array(ordered)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 1e-8, scale, 1.0)
        z = self._design(x)
        k = len(ordered)
        target = (y[:, None] == self.classes_[None, :]).astype(np.float64)
        if self.balanced:
            counts = target.sum(axis=0)
            weights = (target / counts).sum(axis=1) * (x.shape[0] / k)
        else:
            weights = np.ones(x.shape[0])
        weights = weights / weights.sum()
        gram = (z * weights[:, None]).T @ z
        lipschitz = 0.5 * float(np.linalg.eigvalsh(gram)[-1]) + self.l2
        step = 1.0 / lipschitz
        penalty = np.ones((z.shape[1], 1))
        penalty[-1] = 0.0
        w = np.zeros((z.shape[1], k))
        v = w.copy()
        t = 1.0
        for _ in range(self.max_iter):
            logits = z @ v
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            grad = z.T @ ((p - target) * weights[:, None]) + self.l2 * penalty * v
            w_next = v - step * grad
            t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
            v = w_next + ((t - 1.0) / t_next) * (w_next - w)
            change = float(np.abs(w_next - w).max())
            w, t = w_next, t_next
            if change < self.tol:
                break
        self.coef_ = w
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes_` order."""
        logits = self._design(x) @ self.coef_
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of each row."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(x), axis=1)])


def features(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The classifier's inputs: ``log1p`` of the counts in the campaign's columns."""
    return np.log1p(np.asarray(counts, dtype=np.float64)[:, np.asarray(present, dtype=bool)])


# --------------------------------------------------------------------------------------------
# Data for the report
# --------------------------------------------------------------------------------------------


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


def discriminator_auc(
    real: np.ndarray, sim: np.ndarray, *, folds: int = 5, seed: int = 0
) -> tuple[float, int, int]:
    """Cross-validated AUC of :class:`LogisticRegression` telling ``sim`` rows from ``real``.

    Both sides are de-duplicated (so no vector is scored by a model that saw its copy, and a
    vector repeated a hundred times in the data set counts once, as in the F1 evaluation); the
    simulated side is then subsampled (seeded) to at most the real side's size. The folds are
    stratified by side (seeded); the AUC is computed on the pooled out-of-fold probabilities of
    "simulated" (0.5: indistinguishable, 1.0: always told apart).

    Returns:
        ``(auc, n_real, n_sim)``: the AUC and the (distinct) row counts used.
    """
    real_u = np.unique(np.asarray(real, dtype=np.float64), axis=0)
    sim_u = np.unique(np.asarray(sim, dtype=np.float64), axis=0)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xD15C]))
    if sim_u.shape[0] > real_u.shape[0]:
        sim_u = sim_u[np.sort(rng.choice(sim_u.shape[0], real_u.shape[0], replace=False))]
    x = np.vstack([real_u, sim_u])
    y = np.r_[np.zeros(real_u.shape[0], dtype=np.int64), np.ones(sim_u.shape[0], dtype=np.int64)]
    k = int(min(folds, real_u.shape[0], sim_u.shape[0]))
    if k < 2:
        raise DatasetError("expected at least two distinct rows on each side for the discriminator")
    fold = np.empty(y.size, dtype=np.int64)
    for side in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == side))
        fold[idx] = np.arange(idx.size) % k
    scores = np.zeros(y.size)
    labels = np.where(y == 1, "sim", "real")
    for f in range(k):
        test = fold == f
        model = LogisticRegression().fit(x[~test], labels[~test])
        proba = model.predict_proba(x[test])
        scores[test] = proba[:, list(model.classes_).index("sim")]
    return roc_auc(y, scores), int(real_u.shape[0]), int(sim_u.shape[0])


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
            "classifier": "LogisticRegression(l2=0.01, balanced) on log1p counts",
        },
        "campaigns": per_campaign,
        "summary": summary,
    }


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def render_markdown(report: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> str:
    """The report as Markdown tables."""
    targets = report["targets"]
    camps = report["campaigns"]
    lines = [
        "# Sim-to-real report: Failure-Dataset-OpenStack",
        "",
        "Generated by `python -m pase_gym.datasets.fidelity` (see `docs/fidelity.md` for the "
        "design and what is fitted). Evaluation rows: the test side of the calibration's "
        "duplicate-aware split, de-duplicated.",
        "",
        f"Targets: sim-trained macro-F1 >= {targets['sim_macro_f1']:.2f}, discriminator AUC "
        f"<= {targets['discriminator_auc']:.2f}.",
        "",
        "## Macro-F1 on the real evaluation rows",
        "",
        f"Simulated variants: mean over {report['settings']['n_seeds']} simulation seed(s); in "
        "brackets a 95% bootstrap interval over the evaluation rows (of that mean).",
        "",
        "| campaign | eval rows (unique) | sim calibrated | sim scale-only | sim uncalibrated "
        "| real-on-real ceiling | target met |",
        "|---|---|---|---|---|---|---|",
    ]
    seed_notes: list[str] = []
    for name, c in camps.items():
        f = c["macro_f1"]
        ci = c["macro_f1_ci95"]
        met = "yes" if f["calibrated"] >= targets["sim_macro_f1"] else "no"
        cells = " | ".join(
            f"{_fmt(f[v])} [{ci[v][0]:.2f}, {ci[v][1]:.2f}]"
            for v in ("calibrated", "scale_only", "uncalibrated", "real_ceiling")
        )
        lines.append(f"| {name} | {c['rows']['real_eval_unique']} | {cells} | {met} |")
        by_seed = c["macro_f1_by_seed"]["calibrated"]
        seed_notes.append(f"{name} " + ", ".join(f"{v:.3f}" for v in by_seed))
    s = report["summary"]["mean_macro_f1"]
    lines.append(
        f"| mean | | {_fmt(s['calibrated'])} | {_fmt(s['scale_only'])} | "
        f"{_fmt(s['uncalibrated'])} | {_fmt(s['real_ceiling'])} | |"
    )
    lines += ["", "Sim-trained (calibrated) macro-F1 per seed: " + "; ".join(seed_notes) + "."]
    lines += [
        "",
        "## Real-vs-simulated discriminator (cross-validated AUC; 0.5 = indistinguishable)",
        "",
        "| campaign | rows real / sim | calibrated | scale-only | uncalibrated | target met |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in camps.items():
        a = c["discriminator_auc"]
        rows = c["discriminator_rows"]["calibrated"]
        met = "yes" if a["calibrated"] <= targets["discriminator_auc"] else "no"
        lines.append(
            f"| {name} | {rows[0]} / {rows[1]} | {_fmt(a['calibrated'])} | "
            f"{_fmt(a['scale_only'])} | {_fmt(a['uncalibrated'])} | {met} |"
        )
    lines += [
        "",
        "## Class shares and Jensen-Shannon divergence (bits) from the real evaluation side",
        "",
        "| campaign | class | real eval | real train | sim calibrated | sim uncalibrated |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in camps.items():
        sh = c["class_shares"]
        for cls in c["classes"]:
            lines.append(
                f"| {name} | {cls} | {_fmt(sh['real_eval'][cls])} | {_fmt(sh['real_train'][cls])} "
                f"| {_fmt(sh['sim_calibrated'][cls])} | {_fmt(sh['sim_uncalibrated'][cls])} |"
            )
        js = c["js_divergence"]
        lines.append(
            f"| {name} | **JS divergence** | | | {_fmt(js['calibrated'])} | "
            f"{_fmt(js['uncalibrated'])} |"
        )
    lines += [
        "",
        "## Per-class F1 (sim calibrated / real-on-real ceiling)",
        "",
        "| campaign | class | sim calibrated | ceiling |",
        "|---|---|---|---|",
    ]
    for name, c in camps.items():
        for cls in c["classes"]:
            lines.append(
                f"| {name} | {cls} | {_fmt(c['f1_per_class']['calibrated'][cls])} | "
                f"{_fmt(c['f1_per_class']['real_ceiling'][cls])} |"
            )
    settings = report["settings"]
    lines += [
        "",
        "## Settings",
        "",
        f"- simulated experiments per campaign, variant and seed: {settings['n_sim']}; seeds "
        f"{settings['seed']}..{settings['seed'] + settings['n_seeds'] - 1}; discriminator "
        f"folds {settings['folds']}",
        f"- split: {settings['split']} (train rows sha256 "
        f"`{settings['calibration_train_sha256'][:16]}...`)",
        f"- classifier: {settings['classifier']}",
    ]
    if meta:
        for key, value in meta.items():
            lines.append(f"- {key}: {value}")
    lines.append("")
    return "\n".join(lines)


def plot_confusions(report: Mapping[str, Any], path: Path) -> Path | None:
    """Row-normalised confusion matrices (sim calibrated vs ceiling) per campaign, as a PNG.

    Returns ``None`` (and writes nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        logger.info("matplotlib is not installed; no figure")
        return None
    camps = report["campaigns"]
    fig, axes = plt.subplots(2, len(camps), figsize=(4.2 * len(camps), 7.6), squeeze=False)
    short = {c: c.replace("_failure", "") for c in CLASS_NAMES}
    for col, (name, c) in enumerate(camps.items()):
        for row, variant in enumerate(("calibrated", "real_ceiling")):
            ax = axes[row][col]
            m = np.array(c["confusion"][variant], dtype=np.float64)
            norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
            ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues")
            ticks = [short[k] for k in c["classes"]]
            ax.set_xticks(range(len(ticks)), ticks, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(len(ticks)), ticks, fontsize=8)
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    colour = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        str(int(m[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
            n_seeds = report["settings"]["n_seeds"]
            title = (
                f"sim-trained (calibrated, {n_seeds} seeds summed)"
                if variant == "calibrated"
                else "real-on-real"
            )
            ax.set_title(f"{name}: {title}\nmacro-F1 {c['macro_f1'][variant]:.3f}", fontsize=9)
            if col == 0:
                ax.set_ylabel("true class")
            if row == 1:
                ax.set_xlabel("predicted class")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(
    report: Mapping[str, Any],
    out: str | os.PathLike[str],
    *,
    meta: Mapping[str, Any] | None = None,
    figure: bool = True,
) -> list[Path]:
    """Write ``report.json``, ``report.md`` and (optionally) ``confusion.png`` into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    payload = dict(report)
    if meta:
        payload["meta"] = dict(meta)
    path = folder / "report.json"
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    paths.append(path)
    path = folder / "report.md"
    path.write_text(render_markdown(report, meta), encoding="utf-8")
    paths.append(path)
    if figure:
        fig = plot_confusions(report, folder / "confusion.png")
        if fig is not None:
            paths.append(fig)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pase_gym.datasets.fidelity --out DIR``: write the sim-to-real report."""
    parser = argparse.ArgumentParser(
        prog="python -m pase_gym.datasets.fidelity",
        description="Sim-to-real report of pase-gym against Failure-Dataset-OpenStack.",
    )
    parser.add_argument("--out", required=True, help="folder for report.json/.md and the figure")
    parser.add_argument(
        "--n-sim",
        type=int,
        default=DEFAULT_N_SIM,
        help=f"simulated experiments per campaign and variant ({DEFAULT_N_SIM})",
    )
    parser.add_argument("--seed", type=int, default=0, help="first simulation seed (0)")
    parser.add_argument(
        "--n-seeds",
        type=int,
        default=DEFAULT_N_SEEDS,
        help=f"simulation seeds to average over ({DEFAULT_N_SEEDS})",
    )
    parser.add_argument("--folds", type=int, default=5, help="discriminator CV folds (5)")
    parser.add_argument("--calibration", default=None, help="calibration file (the shipped one)")
    parser.add_argument("--data-root", default=None, help="the data set's folder")
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    if args.n_sim < 10:
        parser.error("--n-sim must be at least 10")
    if args.n_seeds < 1:
        parser.error("--n-seeds must be at least 1")
    start = time.perf_counter()
    try:
        dataset = load_all(args.data_root)
        calibration = load_calibration(args.calibration)
        report = build_report(
            dataset,
            calibration,
            n_sim=args.n_sim,
            seed=args.seed,
            n_seeds=args.n_seeds,
            folds=args.folds,
        )
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    command = "python -m pase_gym.datasets.fidelity " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
    meta = {"command": command, "runtime_s": round(elapsed, 1)}
    paths = write_report(report, args.out, meta=meta, figure=not args.no_figure)
    s = report["summary"]
    print(f"mean macro-F1: {s['mean_macro_f1']}")
    print(f"mean discriminator AUC: {s['mean_discriminator_auc']}")
    print(f"mean JS divergence: {s['mean_js_divergence']}")
    print(f"wrote {', '.join(str(p) for p in paths)} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
