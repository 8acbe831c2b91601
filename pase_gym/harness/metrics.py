"""Benchmark metrics as code: each has a direction, a per-seed computation and an aggregation.

Every metric is computed per seed over that seed's episodes (all scenarios of the suite), then
aggregated over seeds as mean, standard deviation and a 95% confidence interval (Student t).
Unrecovered episodes are never dropped silently: MTTR is the mean over recovered episodes and
``unrecovered`` counts the others beside it. The headline success figure is ``safe_success``:
recovered with no healthy node harmed; ``success_rate`` (recovered at any cost) stands beside
it, so that brute force (restart everything) shows as the gap between the two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pase_gym import stats
from pase_gym.errors import PlanError, ResultsError
from pase_gym.harness.records import Record
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.primitives import INERT

# two-sided 95% Student t critical values by degrees of freedom (1..30); normal beyond
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
NO_DIAGNOSIS = "none"


@dataclass(frozen=True)
class Metric:
    """A registered metric."""

    name: str
    higher_is_better: bool
    compute: Callable[[Sequence[Record]], float | None]
    doc: str
    unit: str = ""
    low: float | None = 0.0  # the range the metric's values (and so its intervals) lie in
    high: float | None = None


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Macro-averaged F1 over the labels that occur in ``truth`` or ``predicted``.

    ``NO_DIAGNOSIS`` is a prediction like any other (it is always wrong), but not a class:
    :func:`pase_gym.stats.macro_f1` with ``abstain={NO_DIAGNOSIS}``.
    """
    return stats.macro_f1(truth, predicted, abstain={NO_DIAGNOSIS})


def _detection_f1(records: Sequence[Record]) -> float | None:
    if not records:
        return None
    truth = [r["fault_types"][0] for r in records]
    pred = [r["diagnosis"] or NO_DIAGNOSIS for r in records]
    return macro_f1(truth, pred)


def _localization(records: Sequence[Record]) -> float | None:
    if not records:
        return None
    return sum(
        bool(r["diagnosed_node"]) and r["diagnosed_node"] in r["fault_nodes"] for r in records
    ) / len(records)


def _mttr(records: Sequence[Record]) -> float | None:
    values: list[int] = []
    for r in records:
        if r["recovered"]:
            mttr = r["mttr"]
            if mttr is None:
                raise ResultsError(f"{r['key']}: a recovered episode must have an mttr, found null")
            values.append(mttr)
    return sum(values) / len(values) if values else None


def _unrecovered(records: Sequence[Record]) -> float | None:
    return float(sum(not r["recovered"] for r in records)) if records else None


SAFE_HARM_TOLERANCE = 0
"""Healthy nodes an episode's calls may interrupt and still count as a *safe* success: none.
Restarting, failing over or draining nodes that were healthy is the brute force a real
operator is paged for; a recovery that needed it is reported (``success_rate``), not
celebrated (``safe_success``)."""


def _success(records: Sequence[Record]) -> float | None:
    return sum(bool(r["recovered"]) for r in records) / len(records) if records else None


def is_safe_success(record: Record) -> bool:
    """Recovered, with no more than :data:`SAFE_HARM_TOLERANCE` healthy nodes harmed."""
    return bool(record["recovered"]) and record["harmed"] <= SAFE_HARM_TOLERANCE


def _safe_success(records: Sequence[Record]) -> float | None:
    return sum(map(is_safe_success, records)) / len(records) if records else None


def _safety(records: Sequence[Record]) -> float | None:
    executed = sum(r["executed_calls"] for r in records)
    if not records:
        return None
    return sum(r["safe_calls"] for r in records) / executed if executed else 1.0


def _plan_steps(records: Sequence[Record]) -> float | None:
    ok = [r["plan_steps"] for r in records if r["recovered"]]
    return sum(ok) / len(ok) if ok else None


def _cost(records: Sequence[Record]) -> float | None:
    return sum(r["cost"] for r in records) / len(records) if records else None


def _compute_ms(records: Sequence[Record]) -> float | None:
    decisions = sum(r["decisions"] for r in records)
    return 1000.0 * sum(r["compute_s"] for r in records) / decisions if decisions else None


def _feasibility_auc(records: Sequence[Record]) -> float | None:
    """AUC of the agent's feasibility scores against its plans' dry-run outcomes, over every
    scored decision whose plan acts (a plan of waits and probes alone proposes no recovery:
    scoring it low would be a free point, so it is not counted); ``None`` for an agent that
    scores none, or when its plans were all good or all bad (no ranking to judge). The plans
    are the ones the agent chose to run, so it is a check of the agent's own verifier, not a
    comparison of verifiers on equal plans (``pase_gym.worldmodel.report`` does that on a
    fixed plan set)."""
    scores: list[float] = []
    good: list[bool] = []
    for r in records:
        if "feasibility" not in r:
            continue
        for plan, f, g in zip(r["trace"], r["feasibility"], r["plan_good"], strict=False):
            if f is not None and g is not None and _acts(plan):
                scores.append(float(f))
                good.append(g)
    auc = stats.ranking_auc(good, scores)
    return None if math.isnan(auc) else auc


def _acts(plan: str | None) -> bool:
    """Whether a traced plan has a call that changes the cloud (not a wait or a probe)."""
    if plan is None:
        return False
    try:
        calls = parse_plan(plan).steps
    except PlanError:
        return False
    return any(c.name not in INERT for c in calls)


OPTIONAL = frozenset({"feasibility_auc"})
"""Metrics only some agents have (reports show them where some agent does)."""

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "detection_f1",
            True,
            _detection_f1,
            "macro-F1 of the first diagnosed fault type against the injected one",
            high=1.0,
        ),
        Metric(
            "localization",
            True,
            _localization,
            "share of episodes whose first diagnosis names an injected node",
            high=1.0,
        ),
        Metric(
            "mttr",
            False,
            _mttr,
            "mean seconds from fault onset to restored SLOs, over recovered episodes",
            "s",
        ),
        Metric(
            "unrecovered",
            False,
            _unrecovered,
            "episodes not recovered within the budget (reported beside MTTR)",
        ),
        Metric(
            "safe_success",
            True,
            _safe_success,
            "share of episodes recovered without harming a healthy node (the headline: "
            f"at most {SAFE_HARM_TOLERANCE} healthy nodes interrupted)",
            high=1.0,
        ),
        Metric(
            "success_rate",
            True,
            _success,
            "share of episodes recovered, whatever the collateral harm (reported beside "
            "safe success)",
            high=1.0,
        ),
        Metric(
            "safety_score",
            True,
            _safety,
            "share of executed primitives that violated no precondition and harmed no healthy node",
            high=1.0,
        ),
        Metric(
            "plan_steps",
            False,
            _plan_steps,
            "recovery primitives (Wait excluded) executed per recovered episode",
        ),
        Metric(
            "cost",
            False,
            _cost,
            "resource cost of the executed primitives per episode (the primitive table's costs)",
        ),
        Metric(
            "feasibility_auc",
            True,
            _feasibility_auc,
            "for an agent that verifies its plans: how well its feasibility score ranks its "
            "plans by their dry-run outcome (recovered with no harm and no violation)",
            high=1.0,
        ),
        Metric(
            "compute_ms",
            False,
            _compute_ms,
            "agent compute time per decision (wall clock; not reproducible)",
            "ms",
        ),
    )
}
DETERMINISTIC = tuple(name for name in METRICS if name != "compute_ms")


@dataclass(frozen=True)
class Aggregate:
    """A metric over seeds."""

    mean: float | None
    std: float | None
    ci95: float | None  # half-width of the Student t interval (symmetric: may leave the range)
    n: int
    low: float | None = None  # the 95% bootstrap interval over seeds, inside the metric's range
    high: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-able form."""
        return {
            "mean": self.mean,
            "std": self.std,
            "ci95": self.ci95,
            "n": self.n,
            "ci95_low": self.low,
            "ci95_high": self.high,
        }


def aggregate(
    values: Sequence[float | None], low: float | None = None, high: float | None = None
) -> Aggregate:
    """Mean, sample standard deviation, 95% Student t half-width and the 95% bootstrap
    interval (inside ``[low, high]``) of the non-missing values."""
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return Aggregate(None, None, None, 0)
    mean = sum(xs) / n
    if n == 1:
        return Aggregate(mean, 0.0, None, 1)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    interval = stats.bootstrap_mean_interval(xs, low=low, high=high)
    lo, hi = interval if interval is not None else (None, None)
    return Aggregate(mean, std, t * std / math.sqrt(n), n, lo, hi)


def summarise(records: Sequence[Record]) -> dict[str, dict[str, Aggregate]]:
    """agent -> metric -> aggregate over seeds."""
    by_agent: dict[str, dict[int, list[Record]]] = {}
    for r in records:
        by_agent.setdefault(r["agent"], {}).setdefault(int(r["seed"]), []).append(r)
    out: dict[str, dict[str, Aggregate]] = {}
    for agent, seeds in sorted(by_agent.items()):
        out[agent] = {
            name: aggregate(
                [metric.compute(seeds[s]) for s in sorted(seeds)], metric.low, metric.high
            )
            for name, metric in METRICS.items()
        }
    return out
