"""The one classifier of the sim-to-real report, and the real-vs-simulated discriminator.

:class:`LogisticRegression` is scikit-learn's multinomial logistic regression (L2, balanced
class weights, L-BFGS) on standardised inputs, with the penalty stated the way the report
states it: ``l2`` times half the squared weights, added to the *weighted mean* of the
cross-entropy (scikit-learn's ``C`` multiplies the weighted *sum*; :func:`sklearn_c` converts).
:func:`features` are its inputs (``log1p`` counts of a campaign's columns) and
:func:`discriminator_auc` tells simulated rows from real ones with it. scikit-learn is in the
``bench`` extra and imported when a model is fitted.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from pase_gym.datasets.campaigns import CLASS_NAMES
from pase_gym.errors import DatasetError
from pase_gym.stats import roc_auc

logger = logging.getLogger(__name__)


def sklearn_c(l2: float, n_rows: int, n_classes: int) -> float:
    """scikit-learn's ``C`` for the penalty ``l2 / 2 * |W|^2`` beside the mean loss.

    scikit-learn minimises ``C * sum_i s_i * loss_i + |W|^2 / 2`` with balanced sample weights
    ``s_i`` that sum to the number of rows ``n``; dividing by ``C * n`` gives the mean loss
    plus ``|W|^2 / (2 C n)``, so ``C = 1 / (n * l2)``. With two classes scikit-learn fits one
    weight vector ``d`` where a two-class softmax fits ``w1 = -w0 = d / 2``, whose penalty is
    half as large: ``C = 2 / (n * l2)`` keeps the same optimum.
    """
    return (2.0 if n_classes == 2 else 1.0) / (float(n_rows) * float(l2))


class LogisticRegression:
    """Multinomial logistic regression: standardised inputs, L2 penalty, balanced weights.

    The inputs are standardised with the training rows' mean and (population) standard
    deviation, constant columns left unscaled. The fit is scikit-learn's L-BFGS from zero
    weights: deterministic, no random state. :attr:`classes_` lists the classes in
    :data:`~pase_gym.datasets.CLASS_NAMES` order (others after, sorted), and
    :meth:`predict_proba`'s columns follow it.

    Args:
        l2: the L2 penalty on the weights (not the intercepts), beside the mean loss.
        max_iter: L-BFGS iterations at most.
        tol: L-BFGS stops when the largest gradient component is below this.
        balanced: weight rows so that every class carries the same total weight.
    """

    def __init__(
        self, l2: float = 1e-2, max_iter: int = 1000, tol: float = 1e-6, balanced: bool = True
    ) -> None:
        self.l2 = float(l2)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.balanced = bool(balanced)
        self.classes_: np.ndarray = np.array([], dtype=str)
        self.mean_: np.ndarray = np.zeros(0)
        self.scale_: np.ndarray = np.zeros(0)
        self.coef_: np.ndarray = np.zeros((0, 0))
        self.intercept_: np.ndarray = np.zeros(0)
        self._model: object | None = None
        self._columns: np.ndarray = np.zeros(0, dtype=np.intp)

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_

    def fit(self, x: np.ndarray, y: Sequence[str] | np.ndarray) -> LogisticRegression:
        """Fit on rows ``x`` (n, d) with labels ``y`` (at least two classes).

        Raises:
            DatasetError: the shapes disagree or there are fewer than two classes.
            ImportError: scikit-learn is not installed (``pip install 'pase-gym[bench]'``).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise DatasetError(f"expected x (n, d) and n labels, found {x.shape} and {y.shape}")
        found = set(y.tolist())
        ordered = [c for c in CLASS_NAMES if c in found] + sorted(found - set(CLASS_NAMES))
        if len(ordered) < 2:
            raise DatasetError(f"expected at least two classes to train on, found {ordered}")
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the fidelity classifier needs scikit-learn: pip install 'pase-gym[bench]'"
            ) from exc
        self.classes_ = np.array(ordered)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 1e-8, scale, 1.0)
        model = SklearnLogisticRegression(
            C=sklearn_c(self.l2, x.shape[0], len(ordered)),
            class_weight="balanced" if self.balanced else None,
            solver="lbfgs",
            max_iter=self.max_iter,
            tol=self.tol,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(self._standardise(x), y)
        for warning in caught:
            logger.warning("logistic regression: %s", warning.message)
        self._model = model
        self._columns = np.array([list(model.classes_).index(c) for c in ordered], dtype=np.intp)
        self.coef_ = np.asarray(model.coef_)
        self.intercept_ = np.asarray(model.intercept_)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes_` order."""
        if self._model is None:
            raise DatasetError("expected a fitted model: call fit() first")
        proba = self._model.predict_proba(self._standardise(x))  # type: ignore[attr-defined]
        return np.asarray(proba)[:, self._columns]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of each row (ties: the first in :attr:`classes_`)."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(x), axis=1)])


def features(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The classifier's inputs: ``log1p`` of the counts in the campaign's columns."""
    return np.log1p(np.asarray(counts, dtype=np.float64)[:, np.asarray(present, dtype=bool)])


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
