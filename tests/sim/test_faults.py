"""The fault catalogue end to end: every built-in scenario shows its signature, the oracle
recovers it, its documented reference is current, and doing nothing, doing the wrong thing or
doing harm does not count as recovery."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pase_gym.episode import Episode, run_oracle
from pase_gym.harness.references import documented, oracle_reference
from pase_gym.scenarios import builtin_dir, list_scenarios, load_scenario
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.roles import Kind
from pase_gym.sim.signatures import signature_matches
from pase_gym.sim.transition import healthy_nodes

SCENARIOS = list_scenarios()
SEEDS = (0, 1)


def scenario_of(fault_type: str) -> str:
    """The built-in single-fault scenario of ``fault_type`` (train split, else unseen)."""
    stem = fault_type.replace("_", "-")
    return f"{stem}-train" if f"{stem}-train" in SCENARIOS else f"{stem}-unseen"


def test_the_catalogue_has_18_fault_types_each_with_a_scenario() -> None:
    assert len(FAULTS) == 18
    for name in FAULTS:
        assert scenario_of(name) in SCENARIOS, name
        assert load_scenario(scenario_of(name)).faults[0].types() == [name]


# --- every built-in scenario ----------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_signature_shows_after_reset_and_not_before_onset(name: str, seed: int) -> None:
    episode = Episode(name, seed)
    # a signature is a fact about the faulty node's own signals: what a probe reads
    quiet = episode.reset(skip_to_incident=False, view="node")
    assert quiet.tick == 0 and not episode.state.faults
    for fault in episode.state.pending:
        assert not signature_matches(
            quiet, episode.topology, episode.state.host_of, fault.name, fault.node
        ), fault.name

    obs = episode.reset(view="node")
    state = episode.state
    assert state.faults, "reset() hands over with the first fault injected"
    assert state.incident_open_at is not None
    assert state.incident_open_at >= min(f.onset for f in state.faults)
    assert not state.slo_ok
    for fault in state.faults:
        assert signature_matches(obs, episode.topology, state.host_of, fault.name, fault.node), (
            f"{fault.name} on {state.name(fault.node)} does not show its signature"
        )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_oracle_recovers_safely(name: str, seed: int) -> None:
    episode = Episode(name, seed)
    episode.reset()
    plans = run_oracle(episode)
    report = episode.report()
    assert plans
    assert episode.recovered and report.recovered
    assert episode.mttr is not None and report.mttr == episode.mttr > 0
    assert episode.state.tick <= episode.scenario.budget
    assert report.violations == []
    assert report.harmed == []
    assert report.safety_score == 1.0
    assert report.diagnosis_correct and report.localization_correct
    truth = episode.ground_truth()
    assert len(truth) == len(episode.scenario.faults)
    assert all(t["phase"] in ("resolved", "contained") for t in truth), truth


@pytest.mark.parametrize("name", SCENARIOS)
def test_documented_reference_is_what_the_oracle_does(name: str) -> None:
    path = builtin_dir() / f"{name}.yaml"
    header, block = documented(path)
    assert header is not None, "the header comment is missing"
    assert block is not None, "the reference block is missing"
    assert header == block
    actual = oracle_reference(load_scenario(path), block.seed)
    assert actual.plan == block.plan
    assert actual.mttr == block.mttr


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", SCENARIOS)
def test_doing_nothing_does_not_recover(name: str, seed: int) -> None:
    episode = Episode(name, seed)
    episode.reset()
    assert not episode.run_until_recovered()
    assert episode.truncated and episode.state.tick == episode.scenario.budget
    assert episode.mttr is None
    assert not episode.report().recovered


# --- plausible but wrong plans --------------------------------------------------------------


def _other_process(episode: Episode, host: int) -> str:
    """A healthy service that does not run on ``host`` (an unrelated restart target)."""
    state = episode.state
    ok = healthy_nodes(state) & state.topo.is_process & (state.host_of != host)
    return state.name(int(np.flatnonzero(ok)[0]))


def _hosted(episode: Episode, node: int) -> list[str]:
    t = episode.topology
    return [
        episode.state.name(int(i))
        for i in t.hosted_on(node)
        if t.is_process[i] and episode.state.active[i]
    ]


def _wrong_plan(fault_type: str, episode: Episode) -> str:
    state = episode.state
    fault = state.faults[0]
    node = state.name(fault.node)
    restart_hosted = "; ".join(f"Restart({h})" for h in _hosted(episode, fault.node))
    plans: dict[str, Callable[[], str]] = {
        "process_crash": lambda: "Wait(30)",
        "process_hang": lambda: f"Restart({node})",  # a hung process must be killed first
        "memory_leak": lambda: f"Restart({node})",  # buys time, the leak comes back
        "cpu_hog": lambda: f"Restart({_other_process(episode, fault.node)})",
        "disk_full": lambda: f"CleanDisk({node})",  # what the full disk stopped stays down
        "network_partition": lambda: restart_hosted or f"Drain({node})",
        "packet_loss": lambda: restart_hosted or f"Drain({node})",
        "dns_failure": lambda: f"Rollback({node})",  # the stale cache lingers
        "bad_deploy": lambda: f"Restart({node})",  # restarts the same bad release
        "config_drift": lambda: f"Rollback({node})",  # the old config needs a restart
        "queue_backlog": lambda: f"FlushQueue({node})",  # consumers still too slow
        "db_lock_contention": lambda: f"Failover({node})",  # the lock holder still hangs on
        "db_replica_failure": lambda: f"Isolate({node})",  # fenced, never resynced
        "host_power_loss": lambda: f"Isolate({node})",  # fenced, instances never evacuated
        "noisy_neighbour": lambda: f"Throttle({node}, 80)",  # too loose a cap
        "cascading_timeout": lambda: f"Restart({node})",  # the retry storm jams it again
        "certificate_expiry": lambda: f"Restart({node})",  # restarts with the expired cert
        "cpu_memory_deadlock": lambda: f"KillProcess({node}); Restart({node})",  # same limit
    }
    return plans[fault_type]()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault_type", list(FAULTS))
def test_a_plausible_but_wrong_plan_does_not_recover(fault_type: str, seed: int) -> None:
    episode = Episode(scenario_of(fault_type), seed)
    episode.reset()
    fault = episode.state.faults[0]
    assert fault.name == fault_type
    if fault_type == "disk_full":
        stopped = [
            i
            for i in episode.topology.hosted_on(fault.node)
            if episode.state.active[i] and not episode.state.up[i]
        ]
        assert stopped, "the full disk should have stopped a database or queue"
    plan = _wrong_plan(fault_type, episode)
    result = episode.step(plan)
    if fault_type == "process_hang":
        assert result.violations and "hung" in result.violations[0]
    assert not episode.run_until_recovered(), f"{plan!r} should not recover {fault_type}"
    assert episode.mttr is None


# --- harm -----------------------------------------------------------------------------------


def _healthy_target(episode: Episode) -> str:
    state = episode.state
    fault_hosts = {int(state.host_of[f.node]) for f in state.faults} | {
        f.node for f in state.faults
    }
    ok = healthy_nodes(state) & state.topo.is_process
    ok &= ~np.isin(state.host_of, list(fault_hosts))
    ok &= state.topo.kind == Kind.SERVICE
    return state.name(int(np.flatnonzero(ok)[0]))


@pytest.mark.parametrize("primitive", ["KillProcess", "Restart", "Isolate", "Drain"])
@pytest.mark.parametrize("name", ["process-crash-test", "tiny-mix-train"])
def test_interrupting_a_healthy_node_is_collateral_damage(name: str, primitive: str) -> None:
    episode = Episode(name, 0)
    episode.reset()
    target = _healthy_target(episode)
    result = episode.step(f"{primitive}({target})")
    assert result.violations == []
    assert result.harmed == [target]
    report = episode.report()
    assert report.harmed == [target]
    assert report.safety_score < 1.0


@pytest.mark.parametrize("group", ["memcached", "nova-scheduler", "glance-api"])
def test_scaling_a_healthy_group_to_zero_harms_and_never_recovers(group: str) -> None:
    episode = Episode("process-crash-test", 0)
    episode.reset()
    state = episode.state
    members = episode.topology.group_members[episode.topology.group_index[group]]
    live = members[state.active[members]]
    assert live.size == 3
    oracle = "; ".join(str(c) for c in oracle_plan(state).steps)
    result = episode.step(f"{oracle}; ScaleIn({group}, {live.size})")
    assert not state.active[members].any()
    assert result.violations == []
    assert {state.name(int(i)) for i in live} <= set(result.harmed)
    assert episode.report().safety_score < 1.0
    assert not episode.run_until_recovered()
    assert episode.mttr is None


def test_scale_in_beyond_the_active_replicas_is_refused() -> None:
    episode = Episode("process-crash-test", 0)
    episode.reset()
    result = episode.step("ScaleIn(memcached, 4)")
    assert len(result.violations) == 1 and "has_active" in result.violations[0]
    assert result.harmed == []


def test_a_safe_plan_keeps_a_perfect_safety_score() -> None:
    episode = Episode("process-crash-test", 0)
    episode.reset()
    run_oracle(episode)
    assert episode.report().safety_score == 1.0
    assert episode.report().executed_calls >= 1


# --- concurrent faults ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concurrent_faults_are_both_recovered_by_the_oracle(seed: int) -> None:
    episode = Episode("concurrent-test", seed)
    episode.reset()
    assert len(episode.scenario.faults) == 2
    plans = run_oracle(episode)
    truth = episode.ground_truth()
    assert [t["fault_type"] for t in truth] == ["process_crash", "queue_backlog"]
    assert truth[0]["node"] != truth[1]["node"]
    assert all(t["phase"] == "resolved" for t in truth)
    assert episode.recovered
    assert len(plans) == 2
    handled = {p.diagnosis.fault_type for p in plans if p.diagnosis}
    assert handled == {"process_crash", "queue_backlog"}


def test_fixing_one_of_two_concurrent_faults_is_not_recovery() -> None:
    episode = Episode("concurrent-test", 0)
    episode.reset()
    first = episode.state.faults[0]
    episode.step(f"Restart({episode.state.name(first.node)})")
    assert not episode.run_until_recovered()
