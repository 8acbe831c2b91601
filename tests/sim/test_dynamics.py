"""Tests of the numpy kernel: healthy calibration, load sharing, propagation, retries, OOM and
the recovery criterion."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pase_gym.episode import Episode
from pase_gym.scenarios import load_scenario
from pase_gym.sim.dynamics import (
    OOM_RESTART_TICKS,
    RETRY_FACTOR,
    advance,
    calibrate,
    evaluate,
    recovered,
)
from pase_gym.sim.logs import SYMPTOMS
from pase_gym.sim.roles import PROFILES, ROLE_INDEX
from pase_gym.sim.signatures import callers_of
from pase_gym.sim.state import IND, LogLine, SimState, new_state
from pase_gym.sim.topology import Topology, build_topology


@functools.cache
def topo(size: str, seed: int = 0) -> Topology:
    return build_topology(size, seed)


def _exited(line: LogLine) -> bool:
    """A line of the 'exited' symptom class: what systemd logs of a process the kernel killed."""
    return line.text in {text.format(node=line.node) for _, text in SYMPTOMS["exited"]}


def healthy(size: str = "small", profile: str = "deployment", seed: int = 0) -> SimState:
    state = new_state(topo(size), profile, np.random.default_rng(seed))
    calibrate(state)
    return state


def active_of(state: SimState, role: str) -> np.ndarray:
    ids = state.topo.nodes_of_role(role)
    return ids[state.active[ids]]


def active_callers(state: SimState, node: int) -> np.ndarray:
    ids = callers_of(state.topo, node)
    return ids[state.active[ids]]


# --- a healthy cloud ------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_calibrated_healthy_cloud_meets_every_slo_for_300_ticks(size: str, profile: str) -> None:
    state = healthy(size, profile, seed=3)
    assert state.slo_ok and state.slo_ok_nodes.all()
    rng = np.random.default_rng(42)
    for _ in range(60):
        advance(state, 5, rng)
        assert state.slo_ok, f"SLO broke at tick {state.tick}"
        assert state.slo_ok_nodes.all()
    assert state.tick == 300
    assert state.incident_open_at is None
    live = state.active & state.up
    assert np.all(state.err[live] <= state.slo_error)
    assert np.all(state.lat[live] <= state.slo_latency[live])
    assert np.all(state.util[live] < 0.9)  # provisioned with headroom
    assert not recovered(state, 1)  # nothing to recover from


def test_calibration_sets_positive_latency_slos_above_the_healthy_latency() -> None:
    state = healthy()
    served = state.active & ~state.topo.is_host
    assert np.all(state.slo_latency[served] > state.lat[served])
    assert np.all(state.slo_latency[served] > 0)


def test_health_indicators_are_finite_and_in_range_in_a_healthy_cloud() -> None:
    state = healthy()
    h = state.health
    assert np.isfinite(h).all()
    live = state.active
    assert np.all(h[live, IND["availability"]] > 0.99)
    assert np.all(h[live, IND["error_rate"]] < 0.01)
    assert np.all((h[:, IND["cpu"]] >= 0) & (h[:, IND["cpu"]] <= 1))
    assert np.all(h[~live] == 0)  # spares report nothing


# --- load sharing and SLO violation --------------------------------------------------------


@pytest.mark.parametrize("role", ["nova-api", "keystone", "nova-conductor", "glance-api"])
def test_crashing_one_replica_shifts_its_load_to_the_others(role: str) -> None:
    state = healthy()
    replicas = active_of(state, role)
    assert replicas.size == 3
    before = state.load[replicas].copy()
    victim, rest = replicas[0], replicas[1:]
    state.up[victim] = False
    evaluate(state, None)
    assert state.load[victim] == 0
    assert np.all(state.load[rest] > before[1:])
    assert state.load[rest].sum() == pytest.approx(before.sum(), rel=1e-9)  # nothing lost
    assert np.all(state.util[rest] > 1.4 * (before[1:] / state.cap0[rest]))
    assert not state.slo_ok_nodes[victim]
    assert state.slo_ok_nodes[rest].all()
    assert not state.slo_ok


def test_re_evaluating_after_a_change_refreshes_the_indicators() -> None:
    state = healthy()
    victim = active_of(state, "nova-api")[0]
    assert state.health[victim, IND["availability"]] > 0.99
    state.up[victim] = False
    evaluate(state, None)  # same tick, changed state: the indicators must follow
    assert state.health[victim, IND["availability"]] == 0
    assert state.health[victim, IND["cpu"]] == 0


def test_the_indicators_follow_a_crash_at_the_next_tick() -> None:
    state = healthy()
    victim = active_of(state, "nova-api")[0]
    state.up[victim] = False
    advance(state, 1, np.random.default_rng(0), step=1)
    assert state.health[victim, IND["availability"]] == 0
    assert state.history_ticks[-1] == state.tick
    assert np.array_equal(state.history[-1], state.health)


def test_a_crashed_process_restarting_on_its_own_clears_the_violation() -> None:
    state = healthy()
    victim = active_of(state, "nova-api")[0]
    state.down_until[victim] = state.tick + 10
    evaluate(state, None)
    assert not state.slo_ok
    advance(state, 10, np.random.default_rng(0))
    assert state.slo_ok and state.slo_ok_nodes[victim]


def test_a_failing_database_writer_drives_its_callers_error_rates_up() -> None:
    state = healthy()
    writer = int(active_of(state, "mysql")[0])
    assert state.route_w[writer] > 0  # the single writer
    callers = active_callers(state, writer)
    assert callers.size > 10
    assert np.all(state.err[callers] == 0)
    state.desynced[writer] = True  # accepts connections, fails every query
    evaluate(state, None)
    assert np.all(state.err[callers] > 0.5)
    # two hops: nova-api calls keystone, which calls mysql
    api = active_of(state, "nova-api")
    assert np.all(state.err[api] > 0.5)
    assert not state.slo_ok_nodes[callers].any()


def test_an_overloaded_writer_slows_its_callers_down() -> None:
    state = healthy()
    writer = int(active_of(state, "mysql")[0])
    callers = active_callers(state, writer)
    lat_before = state.lat[callers].copy()
    state.throttle[writer] = 0.1  # a tenth of its capacity: utilisation far above 1
    evaluate(state, None)
    assert state.util[writer] > 1
    assert np.all(state.lat[callers] > lat_before)
    assert np.all(state.err[callers] > 0)


def test_a_crashed_writer_fails_over_to_the_standbys_and_callers_keep_working() -> None:
    state = healthy()
    mysql = active_of(state, "mysql")
    writer, standbys = mysql[0], mysql[1:]
    assert np.all(state.load[standbys] == 0)
    state.up[writer] = False
    evaluate(state, None)
    assert np.all(state.load[standbys] > 0)
    callers = active_callers(state, int(writer))
    assert np.all(state.err[callers] <= state.slo_error)
    assert not state.slo_ok  # the crashed node itself still violates its SLO


def test_losing_every_database_replica_fails_every_caller() -> None:
    state = healthy()
    mysql = active_of(state, "mysql")
    state.up[mysql] = False
    evaluate(state, None)
    callers = active_callers(state, int(mysql[0]))
    assert np.all(state.err[callers] > 0.99)


# --- retries --------------------------------------------------------------------------------


def test_role_errors_amplify_demand_through_retries() -> None:
    state = healthy()
    replicas = active_of(state, "nova-api")
    before = state.load[replicas].copy()
    others = active_of(state, "keystone")
    others_before = state.load[others].copy()
    state.retry_err[ROLE_INDEX["nova-api"]] = 0.25
    evaluate(state, None)
    expected = before * (1 + RETRY_FACTOR * 0.25)
    assert state.load[replicas] == pytest.approx(expected, rel=1e-9)
    assert state.load[others] == pytest.approx(others_before, rel=1e-9)


def test_a_failing_replica_raises_the_load_on_its_peers_on_the_next_evaluation() -> None:
    state = healthy()
    replicas = active_of(state, "nova-api")
    state.desynced[replicas[0]] = True  # still receives traffic, answers with errors
    evaluate(state, None)
    first = state.load[replicas[1:]].copy()
    assert state.role_err[ROLE_INDEX["nova-api"]] > 0.3
    evaluate(state, None)
    assert np.all(state.load[replicas[1:]] > 1.5 * first)


# --- out of memory --------------------------------------------------------------------------


def test_memory_over_the_allocation_triggers_an_oom_kill_and_a_restart() -> None:
    state = healthy()
    node = int(active_of(state, "nova-conductor")[1])
    name = state.name(node)
    state.mem_used[node] = 1.05 * state.mem_alloc[node]
    rng = np.random.default_rng(0)
    advance(state, 1, rng, step=1)
    assert state.down_until[node] == state.tick + OOM_RESTART_TICKS
    assert state.mem_used[node] < 0.5 * state.mem_alloc[node]  # the process came back fresh
    oom = [line for line in state.log if line.node == name and _exited(line)]
    assert len(oom) == 1 and oom[0].tick == state.tick
    assert not state.works[node] and not state.slo_ok
    advance(state, OOM_RESTART_TICKS, rng, step=1)
    assert state.works[node] and state.slo_ok


def test_memory_below_the_allocation_does_not_kill() -> None:
    state = healthy()
    node = int(active_of(state, "nova-conductor")[1])
    state.mem_used[node] = 0.99 * state.mem_alloc[node]
    advance(state, 1, np.random.default_rng(0), step=1)
    assert state.down_until[node] == 0
    assert not any(_exited(line) for line in state.log)
    # swapping: close to the limit the service slows down
    assert state.lat[node] > healthy().lat[node]


def test_an_unfixed_memory_leak_is_killed_again_and_again() -> None:
    episode = Episode("memory-leak-train", 0)
    episode.reset()
    node = episode.ground_truth()[0]["node"]
    episode.wait(300)
    kills = [line for line in episode.state.log if line.node == node and _exited(line)]
    assert len(kills) >= 3
    assert len({line.tick for line in kills}) == len(kills)


# --- the recovery criterion -----------------------------------------------------------------


def test_recovered_needs_an_opened_incident() -> None:
    state = healthy()
    advance(state, 200, np.random.default_rng(0))
    assert state.slo_ok and state.slo_ok_since == 0
    assert state.incident_open_at is None
    assert not recovered(state, 60)


def test_recovered_needs_the_slos_held_for_the_hold_time() -> None:
    episode = Episode("process-crash-train", 0)
    episode.reset()
    state = episode.state
    assert state.incident_open_at is not None and not state.slo_ok
    assert not recovered(state, 1)
    node = episode.ground_truth()[0]["node"]
    episode.step(f"Restart({node})")
    rng = np.random.default_rng(1)
    while state.slo_ok_since is None and state.tick < 120:  # callers catch up after a restart
        advance(state, 1, rng, step=1)
    back = state.slo_ok_since
    assert back is not None
    hold = episode.scenario.recovery.hold
    while state.tick < back + hold - 1:
        advance(state, 1, rng, step=1)
        assert not recovered(state, hold), state.tick
    advance(state, 1, rng, step=1)
    assert state.tick == back + hold
    assert recovered(state, hold)
    assert not recovered(state, hold + 1)


def test_a_new_violation_during_the_hold_restarts_the_clock() -> None:
    episode = Episode("process-crash-train", 0)
    episode.reset()
    state = episode.state
    node = episode.ground_truth()[0]["node"]
    episode.step(f"Restart({node})")
    episode.wait(30)
    assert state.slo_ok
    other = int(active_of(state, "glance-api")[0])
    assert state.name(other) != node
    state.up[other] = False
    episode.wait(5)
    assert state.slo_ok_since is None
    state.up[other] = True
    for _ in range(6):  # the callers' retry storm settles within a few evaluations
        episode.wait(5)
        if state.slo_ok_since is not None:
            break
    restart = state.slo_ok_since
    assert restart is not None and restart > state.incident_open_at + 30
    hold = episode.scenario.recovery.hold
    episode.wait(restart + hold - 1 - state.tick)
    assert state.slo_ok and not episode.recovered
    episode.wait(1)
    assert episode.recovered


def test_not_recovered_while_a_fault_is_still_scheduled() -> None:
    spec = load_scenario(
        {
            "name": "two-crashes",
            "split": "train",
            "topology": {"nodes": "small", "seed": 0},
            "faults": [
                {"type": "process_crash", "role": "keystone", "onset": 20},
                {"type": "process_crash", "role": "glance-api", "onset": 400},
            ],
            "budget": 1000,
        }
    )
    episode = Episode(spec, 0)
    episode.reset()
    first = episode.ground_truth()[0]
    assert first["phase"] == "active"
    episode.step(f"Restart({first['node']})")
    episode.wait(200)
    state = episode.state
    assert state.slo_ok and state.tick - state.slo_ok_since >= 60
    assert state.pending
    assert not episode.recovered
    episode.wait(250)  # the second fault strikes
    assert not state.pending and not state.slo_ok
    assert not episode.recovered
