"""Simulator benchmarks: tick rate, the evaluation kernel, plan execution and the dry run.

Run with ``pytest benchmarks/ --benchmark-only``; ``pytest benchmarks/ --benchmark-disable``
runs every benchmarked function once, as a smoke test. See ``benchmarks/README.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from pase_gym.sim.dynamics import advance, evaluate
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.state import SimState
from pase_gym.sim.transition import TransitionResult, transition

if TYPE_CHECKING:  # the fixtures' types; conftest is never imported at run time
    from conftest import SimCache, SimCase

# Rounds per cloud size: enough for a stable median, few enough that the whole suite stays
# well under two minutes on two cores (a 10,000-node plan takes several milliseconds).
ROUNDS = {20: 1000, 200: 1000, 2000: 500, 10000: 150}
WARMUP_ROUNDS = 3
COPY_ITERATIONS = 10  # a copy takes microseconds: time 10 per round to dwarf the timer
DRY_RUN_ROUNDS = 200


def _median(benchmark: Any) -> float | None:
    """Median seconds per call, or ``None`` when benchmarking is disabled (smoke mode)."""
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


@pytest.mark.benchmark(group="tick_rate")
def test_tick_rate(benchmark: Any, sim_case: SimCase, rng: np.random.Generator) -> None:
    """One simulated tick of a healthy cloud: ``advance(state, 1, rng, step=1)``.

    Each tick runs the fault hooks, threshold events, one full evaluation (with the eight
    indicators and the metric history), event accumulation and SLO tracking. The state keeps
    advancing from round to round, like a long monitoring run.
    """
    state = sim_case.healthy.copy()
    benchmark.pedantic(
        advance,
        args=(state, 1, rng),
        kwargs={"step": 1},
        rounds=ROUNDS[sim_case.nodes],
        warmup_rounds=WARMUP_ROUNDS,
    )
    assert state.slo_ok, "a healthy cloud left its SLOs while time passed"
    benchmark.extra_info["nodes"] = sim_case.topo.n
    median = _median(benchmark)
    if median is not None:
        benchmark.extra_info["ticks_per_second"] = round(1.0 / median, 1)


@pytest.mark.benchmark(group="evaluate_core")
def test_evaluate_core(benchmark: Any, sim_case: SimCase, rng: np.random.Generator) -> None:
    """The vectorised kernel alone: ``evaluate(state, rng, full=False)`` (no indicators)."""
    state = sim_case.healthy.copy()
    benchmark.pedantic(
        evaluate,
        args=(state, rng),
        kwargs={"full": False},
        rounds=ROUNDS[sim_case.nodes],
        warmup_rounds=WARMUP_ROUNDS,
    )
    assert state.slo_ok
    benchmark.extra_info["nodes"] = sim_case.topo.n


@pytest.mark.benchmark(group="state_copy")
def test_state_copy(benchmark: Any, sim_case: SimCase) -> None:
    """``state.copy()`` of a state with an active fault (what every plan execution starts from).

    Reported per copy (pytest-benchmark divides each round by its iterations).
    """
    state = sim_case.faulted
    new = benchmark.pedantic(
        state.copy,
        rounds=ROUNDS[sim_case.nodes],
        warmup_rounds=WARMUP_ROUNDS,
        iterations=COPY_ITERATIONS,
    )
    assert isinstance(new, SimState)
    assert new.hung is not state.hung
    benchmark.extra_info["nodes"] = sim_case.topo.n


@pytest.mark.benchmark(group="plan_execution")
def test_plan_execution(benchmark: Any, sim_case: SimCase, rng: np.random.Generator) -> None:
    """One 4-step plan, ``transition(copy, plan, rng)``, on a cloud with a hung process.

    The plan is ``KillProcess(nova-api-1); Restart(nova-api-1); ScaleOut(nova-api, 1);
    Wait(5)`` (35 simulated seconds). Every round gets a fresh copy of the faulted state from the
    untimed ``setup``, so the figure is the plan's cost net of the copy (see
    :func:`test_state_copy` for the copy itself).
    """
    source = sim_case.faulted
    plan = sim_case.plan

    def fresh_copy() -> tuple[tuple[SimState, Any, np.random.Generator], dict[str, Any]]:
        return (source.copy(), plan, rng), {}

    result: TransitionResult = benchmark.pedantic(
        transition,
        setup=fresh_copy,
        rounds=ROUNDS[sim_case.nodes],
        warmup_rounds=WARMUP_ROUNDS,
    )
    # Guard against measuring the wrong thing: every call must really run.
    assert [o.executed for o in result.outcomes] == [True] * 4, result.violations
    assert not result.violations
    assert source.hung[source.node_id(sim_case.fault_node)], "the cached faulted state was mutated"
    benchmark.extra_info["nodes"] = sim_case.topo.n
    benchmark.extra_info["plan"] = sim_case.plan_text
    benchmark.extra_info["simulated_ticks"] = result.ticks


@pytest.mark.benchmark(group="dry_run")
def test_dry_run(benchmark: Any, sim_cache: SimCache) -> None:
    """``Episode.simulate(plan)`` on the built-in ``default`` scenario after ``reset()``.

    A dry run copies the state and the random stream, executes the plan and then monitors
    (10 ticks at a time) until the scenario's hold time is met or has been waited out. The plan
    is the scenario's reference (oracle) plan, so the hold check runs to recovery.
    """
    episode = sim_cache.dry_run_episode()
    reference = episode.scenario.reference
    assert reference is not None, "the default scenario lost its reference plan"
    plan = parse_plan(reference.plan)
    tick_before = episode.state.tick
    prediction = benchmark.pedantic(
        episode.simulate, args=(plan,), rounds=DRY_RUN_ROUNDS, warmup_rounds=WARMUP_ROUNDS
    )
    assert episode.state.tick == tick_before, "a dry run changed the episode"
    benchmark.extra_info["nodes"] = episode.topology.n
    benchmark.extra_info["plan"] = reference.plan
    benchmark.extra_info["predicted_recovered"] = prediction.recovered
    benchmark.extra_info["hold"] = episode.scenario.recovery.hold
