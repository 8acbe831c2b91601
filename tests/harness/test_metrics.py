"""The benchmark metrics on hand-made episode records whose answers are worked out on paper."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pase_gym.harness.metrics import (
    DETERMINISTIC,
    METRICS,
    NO_DIAGNOSIS,
    SAFE_HARM_TOLERANCE,
    aggregate,
    macro_f1,
    summarise,
)


def rec(**overrides: Any) -> dict[str, Any]:
    """One episode record with the fields the metrics read (a recovered, clean episode)."""
    base: dict[str, Any] = {
        "agent": "a",
        "seed": 0,
        "fault_types": ["process_crash"],
        "fault_nodes": ["nova-api-1"],
        "families": ["process"],
        "diagnosis": "process_crash",
        "diagnosed_node": "nova-api-1",
        "recovered": True,
        "mttr": 10.0,
        "executed_calls": 2,
        "safe_calls": 2,
        "harmed": 0,
        "cost": 1.5,
        "plan_steps": 2,
        "decisions": 4,
        "compute_s": 0.004,
    }
    base.update(overrides)
    return base


def compute(name: str, records: list[dict[str, Any]]) -> float | None:
    return METRICS[name].compute(records)


# -- detection F1 ------------------------------------------------------------------------------


def test_macro_f1_three_classes_by_hand() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    # a: tp 2, fp 0, fn 1 -> 4/5;  b: tp 1, fp 1, fn 1 -> 2/4;  c: tp 1, fp 1, fn 0 -> 2/3
    expected = (4 / 5 + 2 / 4 + 2 / 3) / 3
    assert macro_f1(truth, pred) == pytest.approx(expected)


def test_macro_f1_perfect_and_all_wrong() -> None:
    assert macro_f1(["a", "b", "b"], ["a", "b", "b"]) == pytest.approx(1.0)
    assert macro_f1(["a", "b"], ["b", "a"]) == pytest.approx(0.0)


def test_macro_f1_no_diagnosis_is_wrong_but_not_a_class() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", NO_DIAGNOSIS, "c"]
    # a: tp 2, fp 0, fn 1 -> 4/5;  b: tp 1, fp 1, fn 1 -> 1/2;  c: 1.  "none" adds no class:
    # with it as a fourth class (F1 0) the answer would be 2.3/4 instead of 2.3/3.
    assert macro_f1(truth, pred) == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    assert macro_f1(["a", "b"], [NO_DIAGNOSIS, NO_DIAGNOSIS]) == pytest.approx(0.0)
    assert macro_f1([NO_DIAGNOSIS], [NO_DIAGNOSIS]) == 0.0  # "none" never scores


def test_macro_f1_predicted_label_absent_from_truth_is_a_class() -> None:
    # labels {a, b}: a: tp 1, fp 0, fn 1 -> 2/3; b (never injected): tp 0 -> 0
    assert macro_f1(["a", "a"], ["a", "b"]) == pytest.approx((2 / 3 + 0.0) / 2)


def test_detection_f1_reads_first_fault_and_treats_missing_diagnosis_as_wrong() -> None:
    records = [
        rec(fault_types=["a"], diagnosis="a"),
        rec(fault_types=["a"], diagnosis="a"),
        rec(fault_types=["a"], diagnosis="b"),
        rec(fault_types=["b"], diagnosis="b"),
        rec(fault_types=["b"], diagnosis=None),
        rec(fault_types=["c", "a"], diagnosis="c"),  # the first injected fault is the label
    ]
    assert compute("detection_f1", records) == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    # None and the literal "none" are the same (wrong) prediction
    records[4]["diagnosis"] = NO_DIAGNOSIS
    assert compute("detection_f1", records) == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    assert compute("detection_f1", [rec(diagnosis=None)]) == 0.0
    assert compute("detection_f1", []) is None


# -- localization ------------------------------------------------------------------------------


def test_localization_share_of_episodes_naming_an_injected_node() -> None:
    records = [
        rec(fault_nodes=["n1"], diagnosed_node="n1"),  # hit
        rec(fault_nodes=["n1"], diagnosed_node=None),  # no diagnosis: miss
        rec(fault_nodes=["n1"], diagnosed_node="n2"),  # wrong node: miss
        rec(fault_nodes=["n1", "n3"], diagnosed_node="n3"),  # any injected node counts
        rec(fault_nodes=["n1"], diagnosed_node=""),  # empty: miss
    ]
    assert compute("localization", records) == pytest.approx(2 / 5)
    assert compute("localization", []) is None


# -- MTTR, unrecovered, success ----------------------------------------------------------------


def test_mttr_averages_recovered_episodes_and_unrecovered_counts_the_rest() -> None:
    records = [
        rec(recovered=True, mttr=10.0),
        rec(recovered=True, mttr=30.0),
        rec(recovered=False, mttr=None),
        rec(recovered=False, mttr=600.0),  # a value on an unrecovered episode is ignored
    ]
    assert compute("mttr", records) == pytest.approx(20.0)
    assert compute("unrecovered", records) == 2.0
    assert compute("success_rate", records) == pytest.approx(0.5)


def test_mttr_of_nothing_recovered_is_missing_not_zero() -> None:
    records = [rec(recovered=False, mttr=None)] * 3
    assert compute("mttr", records) is None
    assert compute("unrecovered", records) == 3.0
    assert compute("success_rate", records) == 0.0


def test_success_rate() -> None:
    records = [rec(recovered=True), rec(recovered=True), rec(recovered=True), rec(recovered=False)]
    assert compute("success_rate", records) == pytest.approx(0.75)
    assert compute("unrecovered", records) == 1.0
    for name in ("success_rate", "unrecovered", "mttr"):
        assert compute(name, []) is None


def test_safe_success_does_not_count_a_recovery_that_harmed_a_healthy_node() -> None:
    records = [
        rec(recovered=True),
        rec(recovered=True, harmed=1, safe_calls=1),  # brute force: recovered, not safely
        rec(recovered=True, harmed=65, safe_calls=0, executed_calls=65),
        rec(recovered=False, mttr=None),
    ]
    assert compute("success_rate", records) == pytest.approx(0.75)
    assert compute("safe_success", records) == pytest.approx(0.25)
    assert compute("safe_success", []) is None
    assert SAFE_HARM_TOLERANCE == 0


# -- safety, plan steps, compute ---------------------------------------------------------------


def test_safety_is_pooled_over_executed_calls() -> None:
    records = [
        rec(executed_calls=10, safe_calls=9),
        rec(executed_calls=0, safe_calls=0),
        rec(executed_calls=2, safe_calls=0),
    ]
    # pooled 9/12; a mean of per-episode ratios would give 0.45 (or 0.63 counting 0/0 as 1)
    assert compute("safety_score", records) == pytest.approx(0.75)


def test_safety_with_no_executed_calls_is_perfect() -> None:
    assert compute("safety_score", [rec(executed_calls=0, safe_calls=0)] * 2) == 1.0
    assert compute("safety_score", []) is None


def test_plan_steps_over_recovered_episodes_only() -> None:
    records = [
        rec(recovered=True, plan_steps=3),
        rec(recovered=True, plan_steps=5),
        rec(recovered=False, plan_steps=40),
    ]
    assert compute("plan_steps", records) == pytest.approx(4.0)
    assert compute("plan_steps", [rec(recovered=False, plan_steps=7)]) is None


def test_feasibility_auc_pools_the_scored_decisions() -> None:
    act = "Restart(nova-api-1)"
    scored = [
        rec(feasibility=[-1.5, -0.2, None], plan_good=[False, True, None], trace=[act] * 3),
        rec(feasibility=[-0.1], plan_good=[True], trace=[act]),
        rec(feasibility=[-0.3], plan_good=[False], trace=[act]),
    ]
    # good plans scored -0.2 and -0.1, bad ones -1.5 and -0.3: every good above every bad
    assert compute("feasibility_auc", scored) == pytest.approx(1.0)
    flipped = [rec(feasibility=[-0.1, -0.9], plan_good=[False, True], trace=[act, act])]
    assert compute("feasibility_auc", flipped) == pytest.approx(0.0)
    assert compute("feasibility_auc", [rec(trace=[act])]) is None  # the agent scores nothing
    assert compute("feasibility_auc", scored[1:2]) is None  # only good plans: nothing to rank


def test_feasibility_auc_is_not_raised_by_scoring_waits_low() -> None:
    """The cheapest way to a high ranking: mix in plans that cannot recover (a wait, a probe,
    no plan at all) and score them lowest. They do not count."""
    acting = ["Restart(nova-api-1)", "Rollback(nova-api-1); Restart(nova-api-1)"]
    honest = rec(feasibility=[-0.2, -0.9], plan_good=[False, True], trace=acting)
    padded = rec(
        feasibility=[-0.2, -0.9, -2.0, -2.0, -2.0],
        plan_good=[False, True, False, False, False],
        trace=[*acting, "Wait(10)", "Inspect(nova-api-1); Wait(5)", None],
    )
    assert compute("feasibility_auc", [honest]) == pytest.approx(0.0)
    assert compute("feasibility_auc", [padded]) == pytest.approx(0.0)


def test_compute_ms_is_time_per_decision_pooled() -> None:
    records = [rec(compute_s=0.1, decisions=10), rec(compute_s=0.2, decisions=40)]
    # 300 ms over 50 decisions; the mean of per-episode figures would be 7.5
    assert compute("compute_ms", records) == pytest.approx(6.0)
    assert compute("compute_ms", [rec(compute_s=0.0, decisions=0)]) is None


# -- the registry ------------------------------------------------------------------------------


def test_every_metric_has_a_direction_and_a_doc() -> None:
    expected = {
        "detection_f1": True,
        "localization": True,
        "mttr": False,
        "unrecovered": False,
        "safe_success": True,
        "success_rate": True,
        "safety_score": True,
        "plan_steps": False,
        "cost": False,
        "feasibility_auc": True,
        "compute_ms": False,
    }
    assert {name: m.higher_is_better for name, m in METRICS.items()} == expected
    for name, metric in METRICS.items():
        assert metric.name == name
        assert isinstance(metric.higher_is_better, bool)
        assert metric.doc.strip(), name
    assert METRICS["mttr"].unit == "s"
    assert "compute_ms" not in DETERMINISTIC  # wall clock, not reproducible
    assert set(DETERMINISTIC) == set(METRICS) - {"compute_ms"}


# -- aggregation over seeds --------------------------------------------------------------------


def test_aggregate_mean_sample_std_and_t_interval() -> None:
    a = aggregate([1.0, 2.0, 3.0])
    assert a.n == 3
    assert a.mean == pytest.approx(2.0)
    assert a.std == pytest.approx(1.0)  # sample (n-1) standard deviation
    assert a.ci95 == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert a.as_dict() == {
        "mean": a.mean,
        "std": a.std,
        "ci95": a.ci95,
        "n": 3,
        "ci95_low": a.low,
        "ci95_high": a.high,
    }
    assert a.low is not None and a.high is not None
    assert 1.0 <= a.low < a.mean < a.high <= 3.0  # the bootstrap stays among the values


def test_the_bootstrap_interval_respects_the_metric_range() -> None:
    a = aggregate([0.0, 400.0], low=0.0)  # two seeds, a wild spread: t would go below 0
    assert a.ci95 is not None and a.mean is not None and a.mean - a.ci95 < 0
    assert a.low == 0.0 and a.high == 400.0
    share = aggregate([0.9, 1.0, 1.0], low=0.0, high=1.0)
    assert share.high is not None and share.high <= 1.0
    assert aggregate([5.0]).low is None  # one seed: no spread to resample


def test_aggregate_two_values_uses_t_with_one_degree_of_freedom() -> None:
    a = aggregate([10.0, 14.0])
    assert a.mean == pytest.approx(12.0)
    assert a.std == pytest.approx(math.sqrt(8.0))
    assert a.ci95 == pytest.approx(12.706 * math.sqrt(8.0) / math.sqrt(2))


def test_aggregate_five_seeds() -> None:
    xs = [2.0, 4.0, 4.0, 5.0, 10.0]
    mean = 5.0
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / 4)
    a = aggregate(xs)
    assert (a.mean, a.n) == (pytest.approx(mean), 5)
    assert a.std == pytest.approx(std)
    assert a.ci95 == pytest.approx(2.776 * std / math.sqrt(5))


def test_aggregate_one_value_has_no_interval_and_missing_values_are_skipped() -> None:
    one = aggregate([5.0])
    assert (one.mean, one.std, one.ci95, one.n) == (5.0, 0.0, None, 1)
    empty = aggregate([None, None])
    assert (empty.mean, empty.std, empty.ci95, empty.n) == (None, None, None, 0)
    assert aggregate([]).n == 0
    skipped = aggregate([1.0, None, 3.0])
    assert skipped.n == 2
    assert skipped.mean == pytest.approx(2.0)
    assert skipped.ci95 == pytest.approx(12.706 * math.sqrt(2.0) / math.sqrt(2))


def test_aggregate_identical_values_have_zero_width() -> None:
    a = aggregate([0.5, 0.5, 0.5, 0.5])
    assert (a.mean, a.std, a.ci95) == (pytest.approx(0.5), pytest.approx(0.0), pytest.approx(0.0))


# -- per agent over seeds ----------------------------------------------------------------------


def test_summarise_computes_each_seed_then_aggregates_over_seeds() -> None:
    records = [
        # agent x, seed 0: MTTR mean(10, 20) = 15, all recovered
        rec(agent="x", seed=0, mttr=10.0),
        rec(agent="x", seed=0, mttr=20.0),
        # seed 1: MTTR 30, one unrecovered
        rec(agent="x", seed=1, mttr=30.0),
        rec(agent="x", seed=1, recovered=False, mttr=None),
        # seed 2: nothing recovered: no MTTR for that seed, 2 unrecovered
        rec(agent="x", seed=2, recovered=False, mttr=None),
        rec(agent="x", seed=2, recovered=False, mttr=None),
        # another agent, one seed
        rec(agent="y", seed=0, mttr=7.0, diagnosis=None),
    ]
    summary = summarise(records)
    assert sorted(summary) == ["x", "y"]
    assert set(summary["x"]) == set(METRICS)
    mttr = summary["x"]["mttr"]
    assert mttr.n == 2  # the seed with no recovery contributes no MTTR ...
    assert mttr.mean == pytest.approx(22.5)
    assert mttr.std == pytest.approx(math.sqrt(((15 - 22.5) ** 2 + (30 - 22.5) ** 2) / 1))
    unrec = summary["x"]["unrecovered"]  # ... but is counted here, never dropped
    assert unrec.n == 3
    assert unrec.mean == pytest.approx((0 + 1 + 2) / 3)
    success = summary["x"]["success_rate"]
    assert success.mean == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    y = summary["y"]
    assert (y["mttr"].mean, y["mttr"].n, y["mttr"].ci95) == (7.0, 1, None)
    assert y["detection_f1"].mean == 0.0
