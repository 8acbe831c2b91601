"""Tests of the transition function: arbitrary plans never crash it, failed preconditions cost
a tick and do nothing, and dry runs are faithful and side-effect free."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pase_gym.episode import Episode
from pase_gym.errors import PlanError
from pase_gym.scenarios import ScenarioSpec, list_scenarios, load_scenario
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.observe import observe
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Call, Plan, parse_plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType, PrimitiveSpec
from pase_gym.sim.state import SimState
from pase_gym.sim.transition import (
    FAILED_CALL_TICKS,
    TransitionResult,
    check_call,
    duration_of,
    transition,
)

BASES = (
    ("tiny-mix-train", 0),
    ("tiny-mix-train", 1),
    ("tiny-mix-train", 3),
    ("process-hang-train", 0),
    ("host-power-loss-train", 0),
    ("disk-full-train", 0),
    ("cpu-memory-deadlock-unseen", 0),
    ("queue-backlog-test", 1),
)
UNKNOWN_NODES = ("ghost-1", "nova-api-99", "compute-0", "Instance-1", "x")
UNKNOWN_GROUPS = ("no-such-group", "controller", "instance", "nova-api-1", "libvirt")
CONFIG = (
    "active",
    "up",
    "hung",
    "desynced",
    "isolated",
    "drained",
    "route_w",
    "throttle",
    "cpu_alloc",
    "mem_alloc",
    "disk_alloc",
    "host_of",
)
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def spec_of(name: str) -> ScenarioSpec:
    return load_scenario(name)


@functools.cache
def base_episode(name: str, seed: int) -> Episode:
    """An episode handed over at its incident (never mutated by the tests: copy its state)."""
    episode = Episode(spec_of(name), seed)
    episode.reset()
    return episode


def fresh_copy(name: str, seed: int) -> Episode:
    """A new episode whose state is a copy of the cached base's."""
    base = base_episode(name, seed)
    episode = Episode(spec_of(name), seed)
    episode.state = base.state.copy()
    episode.rng = np.random.default_rng(1234)
    return episode


# --- strategies -----------------------------------------------------------------------------


def call_for(spec: PrimitiveSpec, names: tuple[str, ...], groups: tuple[str, ...]):
    parts = []
    for param in spec.params:
        if param.type is ParamType.NODE:
            parts.append(st.one_of(st.sampled_from(names), st.sampled_from(UNKNOWN_NODES)))
        elif param.type is ParamType.GROUP:
            parts.append(st.one_of(st.sampled_from(groups), st.sampled_from(UNKNOWN_GROUPS)))
        elif param.type is ParamType.INT:
            parts.append(st.integers(param.lo, param.hi))
        else:
            parts.append(st.sampled_from(param.choices))
    return st.tuples(*parts).map(lambda args: Call(spec.name, args))


@st.composite
def base_and_plan(draw: Any, bases: tuple[tuple[str, int], ...] = BASES) -> tuple[Any, ...]:
    name, seed = draw(st.sampled_from(bases))
    topo = base_episode(name, seed).topology
    spec = draw(st.sampled_from(list(PRIMITIVES.values())))
    first = draw(call_for(spec, topo.names, topo.groups))
    more = draw(
        st.lists(
            st.sampled_from(list(PRIMITIVES.values())).flatmap(
                lambda s: call_for(s, topo.names, topo.groups)
            ),
            max_size=4,
        )
    )
    return name, seed, Plan((first, *more))


def assert_consistent(
    state: SimState,
    plan: Plan,
    result: TransitionResult,
    start: int,
    deadline: int | None = None,
) -> None:
    """What every transition result must satisfy, whatever the plan (and the deadline: the
    clock stops there, cutting the call running then and skipping the rest)."""
    assert len(result.outcomes) + result.cut == len(plan.steps)
    assert result.start_tick == start and result.end_tick == state.tick
    if deadline is None:
        assert result.cut == 0
    else:
        assert state.tick <= max(deadline, start)
        assert result.cut == 0 or state.tick >= deadline
    limit = 10**9 if deadline is None else deadline
    at = start
    for call, outcome in zip(plan.steps, result.outcomes, strict=False):
        assert outcome.call == call
        assert outcome.start == at
        room = max(limit - outcome.start, 0)
        if outcome.executed:
            assert outcome.violations == []
            assert outcome.end - outcome.start == min(duration_of(call), room)
            assert outcome.cost == call.spec().cost
        else:
            assert outcome.violations, "a call that did not run must say why"
            assert outcome.end - outcome.start == min(FAILED_CALL_TICKS, room)
            assert outcome.harmed == [] and outcome.cost == 0
        assert set(outcome.harmed) <= set(state.topo.names)
        at = outcome.end
    assert result.slo_ok == state.slo_ok
    assert result.cost == pytest.approx(sum(o.cost for o in result.outcomes))
    assert result.lost_messages >= 0
    metrics = observe(state, np.random.default_rng(0)).metrics
    assert metrics.shape == state.health.shape and np.isfinite(metrics).all()
    assert np.all((state.err >= 0) & (state.err <= 1))
    assert np.all(np.isfinite(state.lat) & (state.lat >= 0))
    assert np.all(state.load >= 0)


# --- properties -----------------------------------------------------------------------------


@settings(SETTINGS, max_examples=1000)
@given(case=base_and_plan())
def test_any_valid_plan_runs_or_reports_violations(case: tuple[Any, ...]) -> None:
    name, seed, plan = case
    base = base_episode(name, seed).state
    start_tick = base.tick
    state = base.copy()
    expected_first = check_call(state, plan.steps[0])
    result = transition(state, plan, np.random.default_rng(99))
    assert_consistent(state, plan, result, start_tick)
    # the precondition check the action masks use is the one execution applies
    assert result.outcomes[0].violations == expected_first
    assert base.tick == start_tick  # the copy was changed, not the original


@settings(SETTINGS, max_examples=300)
@given(case=base_and_plan(bases=(("process-crash-test", 0), ("db-lock-contention-test", 1))))
def test_any_valid_plan_runs_or_reports_violations_in_a_small_cloud(
    case: tuple[Any, ...],
) -> None:
    name, seed, plan = case
    state = base_episode(name, seed).state.copy()
    start = state.tick
    result = transition(state, plan, np.random.default_rng(5))
    assert_consistent(state, plan, result, start)


def _fragments() -> list[str]:
    topo = base_episode("tiny-mix-train", 0).topology
    return [
        *PRIMITIVES,
        "Diagnose",
        "diagnose",
        "Restrat",
        *FAULT_NAMES[:4],
        *topo.names[:12],
        *topo.groups[:4],
        "(",
        ")",
        "(",
        ")",
        ",",
        ",",
        ";",
        ";",
        "\n",
        "=",
        "'",
        '"',
        "#",
        " ",
        "  ",
        "\t",
        "0",
        "1",
        "3",
        "8",
        "600",
        "601",
        "-3",
        "+2",
        "1e3",
        "2.5",
        "99999999999999999999",
        "ticks",
        "node",
        "count",
        "percent",
        "memory",
        "cpu",
        "disk",
        "group",
        "amount",
        "resource",
        "é",
        "\x00",
        "nova api",
        "-",
        "@",
        ":",
        ".",
    ]


@settings(SETTINGS, max_examples=1000)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.lists(st.sampled_from(_fragments()), max_size=14).map("".join),
        st.lists(st.sampled_from(_fragments()), max_size=14).map(" ".join),
    )
)
def test_any_plan_text_either_executes_or_raises_plan_error(text: str) -> None:
    episode = fresh_copy("tiny-mix-train", 0)
    start = episode.state.tick
    try:
        result = episode.step(text)
    except PlanError as err:
        assert str(err)
        assert episode.state.tick == start  # a plan that does not parse does nothing
        assert episode.results == []
        return
    plan = parse_plan(text)
    assert isinstance(result, TransitionResult)
    assert_consistent(episode.state, plan, result, start, deadline=episode.scenario.budget)


def test_text_fuzz_reaches_both_outcomes() -> None:
    """The fragments above do produce executable plans, not only parse errors."""
    episode = fresh_copy("tiny-mix-train", 0)
    node = episode.state.name(int(np.flatnonzero(episode.topology.is_process)[0]))
    assert episode.step(f"Wait(60); Restart({node})\n# done").outcomes[1].executed
    with pytest.raises(PlanError):
        episode.step("Wait(601)")


# --- failed preconditions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Restart(compute-1)", "is_process(node)"),
        ("Restart(ghost-7)", "unknown node"),
        ("Migrate(nova-api-1, compute-1)", "is_instance(instance)"),
        ("Migrate(instance-1, nova-api-1)", "is_compute_host(host)"),
        ("CleanDisk(nova-api-1)", "is_host(node)"),
        ("FlushQueue(mysql-1)", "is_queue(queue)"),
        ("ScaleOut(rabbitmq, 1)", "scalable(group)"),
        ("ScaleOut(nova-api, 8)", "has_spare(group, count)"),
        ("ScaleIn(nova-api, 4)", "has_active(group, count)"),
        ("ScaleOut(hypervisors, 1)", "unknown group"),
        ("Failover(nova-api-1)", "has_standby(node)"),
        ("Reroute(nova-api, nova-api-1, nova-api-1)", "not same_node(source, target)"),
        ("Reroute(keystone, nova-api-1, nova-api-2)", "in_group(source, group)"),
        ("ResizeResource(compute-1, memory, 1)", "is_resizable(node)"),
        ("RenewCertificate(compute-1)", "is_process(node)"),
    ],
)
def test_a_call_with_failed_preconditions_does_nothing_but_cost_a_tick(
    text: str,
    fragment: str,
) -> None:
    episode = fresh_copy("process-crash-test", 0)
    state = episode.state
    before = {k: getattr(state, k).copy() for k in CONFIG}
    start = state.tick
    result = episode.step(text)
    (outcome,) = result.outcomes
    assert not outcome.executed
    assert outcome.end - outcome.start == 1 and state.tick == start + 1
    assert any(fragment in v for v in outcome.violations), outcome.violations
    assert result.harmed == [] and result.cost == 0
    for key, value in before.items():
        assert np.array_equal(getattr(state, key), value), key
    assert episode.report().safety_score == 0.0


def test_restarting_a_hung_process_is_refused_and_it_stays_hung() -> None:
    episode = fresh_copy("process-hang-train", 0)
    fault = episode.state.faults[0]
    node = episode.state.name(fault.node)
    result = episode.step(f"Restart({node})")
    assert result.violations == [
        f"step 1 Restart({node}): not hung(node) failed: a hung process ignores the stop "
        "signal; kill it first"
    ]
    assert result.ticks == 1
    assert episode.state.hung[fault.node] and fault.active
    assert episode.step(f"KillProcess({node}); Restart({node})").violations == []
    assert not fault.active


def test_a_failed_call_does_not_stop_the_rest_of_the_plan() -> None:
    episode = fresh_copy("process-crash-test", 0)
    node = episode.ground_truth()[0]["node"]
    result = episode.step(f"Restart(ghost-1); Restart({node})")
    assert [o.executed for o in result.outcomes] == [False, True]
    assert result.ticks == 1 + PRIMITIVES["Restart"].duration
    assert episode.run_until_recovered()
    assert episode.report().safety_score == 0.5


# --- dry runs -------------------------------------------------------------------------------


def snapshot(episode: Episode) -> dict[str, Any]:
    state = episode.state
    out: dict[str, Any] = {k: v.copy() for k, v in vars(state).items() if isinstance(v, np.ndarray)}
    for key in (
        "tick",
        "slo_ok",
        "slo_ok_since",
        "incident_open_at",
        "evaluated_at",
        "health_at",
        "lost_messages",
    ):
        out[key] = getattr(state, key)
    out["faults"] = [(f.name, f.node, f.phase, f.resolved_at, dict(f.params)) for f in state.faults]
    out["pending"] = [(f.name, f.node, f.onset) for f in state.pending]
    out["log"] = [str(line) for line in state.log]
    out["history"] = [h.copy() for h in state.history]
    out["history_ticks"] = list(state.history_ticks)
    out["rng"] = episode.rng.bit_generator.state
    out["results"] = len(episode.results)
    out["diagnoses"] = list(episode.diagnoses)
    return out


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), key
        elif key == "history":
            assert len(x) == len(y) and all(
                np.array_equal(p, q) for p, q in zip(x, y, strict=True)
            ), key
        else:
            assert x == y, key


def _plans(episode: Episode) -> list[str]:
    t = episode.topology
    node = episode.ground_truth()[0]["node"]
    return [
        str(oracle_plan(episode.state)),
        f"ScaleIn({t.groups[0]}, 1); Isolate({node}); Wait(50)",
        f"KillProcess({node}); ResizeResource({node}, memory, 2); FlushCache({node})",
        "Restart(ghost-1)",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "process-crash-test",
        "memory-leak-train",
        "concurrent-test",
        "queue-backlog-test",
        "host-power-loss-train",
    ],
)
def test_simulate_changes_nothing(name: str) -> None:
    episode = Episode(spec_of(name), 3)
    episode.reset()
    for plan in _plans(episode):
        before = snapshot(episode)
        episode.simulate(plan)
        assert_same(before, snapshot(episode))


@pytest.mark.parametrize(
    "name", ["process-crash-test", "memory-leak-train", "concurrent-test", "host-power-loss-train"]
)
def test_a_real_step_after_a_dry_run_is_the_same_as_without_it(name: str) -> None:
    dry = Episode(spec_of(name), 3)
    dry.reset()
    plans = _plans(dry)
    for plan in plans:
        dry.simulate(plan)
    real = Episode(spec_of(name), 3)
    real.reset()
    a, b = dry.step(plans[0]), real.step(plans[0])
    assert [(o.start, o.end, o.executed, o.harmed) for o in a.outcomes] == [
        (o.start, o.end, o.executed, o.harmed) for o in b.outcomes
    ]
    dry.wait(40)
    real.wait(40)
    assert_same(snapshot(dry), snapshot(real))
    assert np.array_equal(dry.observe().events, real.observe().events)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list_scenarios())
def test_dry_run_of_the_oracle_plan_predicts_the_real_outcome(name: str, seed: int) -> None:
    episode = Episode(spec_of(name), seed)
    episode.reset()
    plan = oracle_plan(episode.state)
    prediction = episode.simulate(plan)
    result = episode.step(plan)
    assert prediction.violations == result.violations == []
    assert prediction.harmed == result.harmed == []
    assert prediction.ticks == result.ticks
    assert prediction.cost == result.cost
    real = episode.run_until_recovered()
    if prediction.recovered:
        assert real
        assert prediction.recovery_tick == episode.state.slo_ok_since
    if len(episode.scenario.faults) > 1:
        assert not prediction.recovered and not real  # the later fault is still to come


def test_dry_run_of_a_harmful_plan_predicts_the_harm() -> None:
    episode = Episode(spec_of("process-crash-test"), 0)
    episode.reset()
    prediction = episode.simulate("ScaleIn(memcached, 3)")
    assert not prediction.recovered
    assert len(prediction.harmed) == 3
    assert episode.step("ScaleIn(memcached, 3)").harmed == prediction.harmed


@pytest.mark.parametrize(
    ("name", "seed"),
    [
        ("queue-backlog-test", 0),
        ("network-partition-train", 0),
        ("disk-full-train", 0),
        ("cpu-hog-train", 0),
    ],
)
def test_dry_run_predicts_recovery_when_the_slos_return_after_the_plan(
    name: str,
    seed: int,
) -> None:
    episode = Episode(spec_of(name), seed)
    episode.reset()
    plan = oracle_plan(episode.state)
    prediction = episode.simulate(plan)
    assert episode.step(plan).violations == []
    assert episode.run_until_recovered()
    assert prediction.recovered


@settings(SETTINGS, max_examples=300)
@given(case=base_and_plan(bases=BASES[:4]))
def test_a_dry_run_of_any_plan_is_side_effect_free_and_matches_the_real_call_outcomes(
    case: tuple[Any, ...],
) -> None:
    name, seed, plan = case
    episode = fresh_copy(name, seed)
    before = snapshot(episode)
    prediction = episode.simulate(plan)
    assert_same(before, snapshot(episode))
    result = episode.step(plan)
    assert prediction.violations == result.violations
    assert prediction.harmed == result.harmed
    assert prediction.ticks == result.ticks
    assert prediction.cost == result.cost
