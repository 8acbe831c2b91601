"""The shared statistics (pase_gym.stats) on inputs whose answers are worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from pase_gym.harness.metrics import NO_DIAGNOSIS
from pase_gym.harness.metrics import macro_f1 as detection_macro_f1
from pase_gym.stats import bootstrap_macro_f1, f1_per_class, macro_f1


def test_abstain_is_wrong_but_adds_no_class() -> None:
    truth = ["a", "a", "b", "b"]
    pred = ["a", "none", "b", "b"]
    # a: tp 1, fn 1 -> 2/3; b: 1; "none" as a class of its own would add an F1 of 0
    assert macro_f1(truth, pred, abstain={"none"}) == pytest.approx((2 / 3 + 1.0) / 2)
    assert macro_f1(truth, pred) == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert set(f1_per_class(truth, pred, abstain={"none"})) == {"a", "b"}
    assert macro_f1(["none"], ["none"], abstain={"none"}) == 0.0  # nothing to score


def test_the_benchmarks_detection_f1_is_the_shared_one_with_its_abstention() -> None:
    rng = np.random.default_rng(3)
    names = [f"fault_{i}" for i in range(11)]  # more classes than numpy sums sequentially
    truth = rng.choice(names, 200).tolist()
    pred = [t if rng.random() < 0.6 else str(rng.choice([*names, NO_DIAGNOSIS])) for t in truth]
    assert detection_macro_f1(truth, pred) == macro_f1(truth, pred, abstain={NO_DIAGNOSIS})


def test_the_bootstrap_is_seeded_and_draws_one_resample_at_a_time() -> None:
    y = np.array(["a"] * 30 + ["b"] * 30)
    pred = y.copy()
    pred[::4] = "b"
    # the same draws by hand: one rng.integers(0, n, n) per resample, percentile interval
    rng = np.random.default_rng(np.random.SeedSequence([7, 0xB007]))
    values = []
    for _ in range(300):
        idx = rng.integers(0, y.size, y.size)
        values.append(macro_f1(y[idx], pred[idx]))
    expected = np.quantile(values, [0.025, 0.975])
    assert bootstrap_macro_f1(y, pred, n=300, seed=7) == pytest.approx(tuple(expected), abs=1e-12)
    assert bootstrap_macro_f1(y, pred, n=300, seed=7) == bootstrap_macro_f1(y, pred, n=300, seed=7)
