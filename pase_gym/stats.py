"""Classification statistics shared by the benchmark's metrics and the fidelity experiments.

One home for every score computed on labels: the confusion counts, per-class and macro F1
(:func:`macro_f1`), a bootstrap interval of the macro-F1 (:func:`bootstrap_macro_f1`), the area
under the ROC curve (:func:`roc_auc`) and the Jensen-Shannon divergence of two class mixes
(:func:`js_divergence`). :mod:`pase_gym.harness.metrics` (``pase-bench run``),
:mod:`pase_gym.harness.replay` (``pase-bench replay``) and :mod:`pase_gym.fidelity` all score
with these.

Only numpy is imported here: this module is part of the core install. The functions that
hand their job to a library import it when called: :func:`bootstrap_macro_f1` needs scipy and
:func:`roc_auc` scikit-learn (both in the ``bench`` extra: ``pip install 'pase-gym[bench]'``).

Invalid inputs raise :class:`~pase_gym.errors.DatasetError` (a ``ValueError``): every caller
scores labels of a data set or of episode records.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from types import ModuleType

import numpy as np

from pase_gym.errors import DatasetError

Labels = Sequence[str] | np.ndarray


def _require(module: str, extra: str = "bench") -> ModuleType:
    """Import ``module`` or say which extra of pase-gym provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        package = module.split(".")[0].replace("sklearn", "scikit-learn")
        raise ImportError(
            f"this statistic needs {package}: pip install 'pase-gym[{extra}]'"
        ) from exc


def confusion_matrix(y_true: Labels, y_pred: Labels, labels: Sequence[str]) -> np.ndarray:
    """Counts ``[i, j]`` of rows of true class ``labels[i]`` predicted ``labels[j]``.

    Rows whose true or predicted value is not in ``labels`` are not counted.

    Raises:
        DatasetError: ``y_true`` and ``y_pred`` differ in length.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise DatasetError(f"expected equal lengths, found {t.shape} and {p.shape}")
    index = {c: i for i, c in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist(), strict=True):
        if a in index and b in index:
            out[index[a], index[b]] += 1
    return out


def _classes(t: np.ndarray, p: np.ndarray, abstain: Collection[str]) -> list[str]:
    return sorted((set(t.tolist()) | set(p.tolist())) - set(abstain))


def f1_per_class(
    y_true: Labels,
    y_pred: Labels,
    labels: Sequence[str] | None = None,
    *,
    abstain: Collection[str] = (),
) -> dict[str, float]:
    """F1 of each class: ``2 tp / (2 tp + fp + fn)``, 0 where a class is neither true nor
    predicted anywhere.

    Args:
        y_true: the true class of each row.
        y_pred: the predicted class of each row (same length).
        labels: the classes to score, in this order; by default every value that occurs in
            ``y_true`` or ``y_pred``, sorted, except ``abstain``.
        abstain: prediction values that mean "no answer" (the harness's ``"none"`` when an
            agent never diagnosed): such a prediction is wrong for its row's true class, but
            is not a class of its own, so it adds no F1 term.

    Raises:
        DatasetError: ``y_true`` and ``y_pred`` differ in length.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape:
        raise DatasetError(f"expected equal lengths, found {t.shape} and {p.shape}")
    if labels is None:
        labels = _classes(t, p, abstain)
    out = {}
    for c in labels:
        tp = float(np.sum((t == c) & (p == c)))
        fp = float(np.sum((t != c) & (p == c)))
        fn = float(np.sum((t == c) & (p != c)))
        out[c] = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 0.0
    return out


def macro_f1(
    y_true: Labels,
    y_pred: Labels,
    labels: Sequence[str] | None = None,
    *,
    abstain: Collection[str] = (),
) -> float:
    """Unweighted mean of :func:`f1_per_class` over the classes.

    The one semantic choice is explicit: ``abstain``. With the default ``()`` every value
    that occurs is a class (the fidelity report and the replay, where a missing diagnosis
    is the real class ``no_failure``). The benchmark's detection F1 passes
    ``abstain={"none"}``: an episode the agent never diagnosed counts as a miss of the
    injected fault, without adding a class ``none`` whose F1 of 0 would pull the mean down
    by a constant share.

    Args:
        y_true: the true class of each row.
        y_pred: the predicted class of each row (same length).
        labels: the classes to average over (default: every class that occurs in either,
            ``abstain`` excepted, sorted).
        abstain: prediction values that are always wrong and never a class.

    Returns:
        The macro-F1 in [0, 1]; 0.0 when there is no class to score (no rows, or only
        abstentions).

    Raises:
        DatasetError: ``y_true`` and ``y_pred`` differ in length.
    """
    scores = f1_per_class(y_true, y_pred, labels, abstain=abstain)
    if not scores:
        return 0.0
    # a plain left-to-right sum: the published numbers were computed this way
    return sum(scores.values()) / len(scores)


def bootstrap_macro_f1(
    y_true: Labels,
    y_pred: Labels,
    *,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`macro_f1` over resampled rows (seeded; scipy).

    ``y_pred`` may be ``(n_rows,)`` or ``(n_runs, n_rows)``: several runs' predictions of the
    same rows, whose macro-F1 is averaged on every resample (the interval of the mean). The
    resamples are :func:`scipy.stats.bootstrap`'s, drawn one at a time from a generator seeded
    by ``seed`` (so the same seed gives the same interval, whatever ``n``'s batching).

    Args:
        y_true: the true class of each row (at least two rows).
        y_pred: predictions, one row or one per run.
        n: number of resamples.
        seed: seed of the resampling.
        level: the interval's confidence level.

    Returns:
        ``(low, high)``.
    """
    scipy_stats = _require("scipy.stats")
    truth = np.asarray(y_true)
    runs = np.atleast_2d(np.asarray(y_pred))
    if runs.shape[1:] != truth.shape:
        raise DatasetError(f"expected predictions of {truth.shape} rows, found {runs.shape}")

    def statistic(rows: np.ndarray) -> float:
        return float(np.mean([macro_f1(truth[rows], run[rows]) for run in runs]))

    result = scipy_stats.bootstrap(
        (np.arange(truth.size),),
        statistic,
        n_resamples=int(n),
        batch=1,  # one resample per draw: the draws do not depend on a batch size
        vectorized=False,
        confidence_level=float(level),
        method="percentile",
        rng=np.random.default_rng(np.random.SeedSequence([int(seed), 0xB007])),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def roc_auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``y_true`` (1 = positive; sklearn).

    The probability that a random positive scores above a random negative, ties counting one
    half (:func:`sklearn.metrics.roc_auc_score`).

    Raises:
        DatasetError: the inputs are not 1-D of one length, or one class is missing.
    """
    metrics = _require("sklearn.metrics")
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise DatasetError(
            f"expected 1-D labels and scores of one length, found {y.shape}, {s.shape}"
        )
    if y.all() or not y.any():
        raise DatasetError("expected both classes among the labels to compute an AUC")
    return float(metrics.roc_auc_score(y, s))


def ranking_auc(y_true: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """:func:`roc_auc`, or NaN where there is nothing to rank (no labels, or one class only)."""
    y = np.asarray(y_true).astype(bool)
    if y.size == 0 or y.all() or not y.any():
        return float("nan")
    return roc_auc(y, scores)


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = equal, 1 = disjoint) of two distributions.

    Inputs are normalised to sum 1; ``0 log 0`` counts 0. (scipy's ``jensenshannon`` returns
    the square root of this, the distance; squaring it back would only add rounding.)

    Raises:
        DatasetError: the inputs differ in shape, are negative or sum to 0.
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


def bootstrap_mean_interval(
    values: Sequence[float] | np.ndarray,
    *,
    low: float | None = None,
    high: float | None = None,
    n: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (seeds), inside ``[low, high]``.

    A Student t interval is symmetric and runs outside a metric's range on few seeds (an MTTR
    of -120 s); resampled means of values inside the range stay inside it. Seeded (numpy only).

    Returns:
        ``(lo, hi)``, or ``None`` for fewer than two values (no spread to resample).
    """
    xs = np.asarray(values, dtype=np.float64)
    if xs.size < 2:
        return None
    if not np.all(np.isfinite(xs)):
        raise DatasetError("expected finite values to bootstrap")
    rng = np.random.default_rng(seed)
    means = xs[rng.integers(0, xs.size, size=(n, xs.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = (float(v) for v in np.quantile(means, [tail, 1.0 - tail]))
    if low is not None:
        lo, hi = max(lo, low), max(hi, low)
    if high is not None:
        lo, hi = min(lo, high), min(hi, high)
    return lo, hi
