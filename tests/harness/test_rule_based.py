"""The rule-based expert system baseline (``agents/rule_based``): loads like a submission,
answers with parseable plans, waits on a healthy cloud, restarts a crashed process, never
touches the ground truth, is deterministic, and (static runbooks) fails on the novel fault."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.core import PaseOpenStackEnv
from pase_gym.episode import Episode
from pase_gym.harness.agent import load_agent, resolve_agent_class
from pase_gym.harness.runner import Job, run_episode
from pase_gym.sim.plan import Plan, parse_plan

REPO = Path(__file__).resolve().parents[2]
HEALTHY = (
    "t=10s. Cloud of 202 active nodes (3 controllers, 14 compute hosts), network workload. "
    "All service level objectives are met; no alarms."
)
CRASH = (
    "t=50s. Cloud of 202 active nodes (3 controllers, 14 compute hosts), network workload. "
    "1 node(s) violate their SLO. Alarms on 1 node(s): nova-compute-2: NodeDown 0.00. "
    "Affected components: nova-compute-2 (nova-compute on compute-2; depends on glance-api, "
    "libvirt, neutron-server, nova-conductor, ovs-agent). "
    "Recent logs: nova-compute-2: systemd: nova-compute-2.service: Failed with result "
    "'exit-code'."
)
DISK = (
    "t=50s. Cloud of 204 active nodes (3 controllers, 14 compute hosts), storage workload. "
    "17 node(s) violate their SLO. Alarms on 2 node(s): mysql-1: DiskFull 1.00, NodeDown 0.00; "
    "controller-1: DiskFull 0.99. Alarmed nodes share host(s): controller-1. Affected "
    "components: mysql-1 (mysql on controller-1; called by cinder-api, keystone); controller-1 "
    "(controller). Recent logs: controller-1: OSError: [Errno 28] No space left on device | "
    "mysql-1: mysqld: Disk is full writing './ib_logfile0' (Errcode: 28)."
)


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the registry finds agents/ from the repository root


def agent_module() -> Any:
    return sys.modules[resolve_agent_class("rule_based").__module__]


def play(scenario: str, seed: int, agent: Any | None = None) -> tuple[list[Plan], Any, bool]:
    """Drive one episode by hand: the plans, the unwrapped env, recovered?"""
    agent = agent or load_agent("rule_based")
    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    obs, info = env.reset(seed=seed)
    agent.reset(seed)
    plans: list[Plan] = []
    done = False
    while not done:
        plan = agent.act(obs, info)
        plans.append(plan)
        obs, _, terminated, truncated, info = env.step(plan)
        done = terminated or truncated
    return plans, env.unwrapped, bool(terminated)


def test_loads_through_the_registry() -> None:
    agent = load_agent("rule_based")
    assert agent.name == "rule_based"  # type: ignore[attr-defined]
    assert callable(agent.reset) and callable(agent.act)


def test_reads_only_the_observation_and_info() -> None:
    cls = resolve_agent_class("rule_based")
    assert not getattr(cls, "uses_ground_truth", False)
    assert not hasattr(cls, "bind_ground_truth")
    params = inspect.signature(cls.__dict__["act"]).parameters
    assert list(params) == ["self", "observation", "info"]
    source = inspect.getsource(agent_module())
    for forbidden in ("ground_truth", "oracle", ".simulate(", ".episode", ".unwrapped"):
        assert forbidden not in source


def test_runs_with_the_evaluation_side_sealed(monkeypatch: pytest.MonkeyPatch) -> None:
    def sealed(*_: object, **__: object) -> None:
        raise AssertionError("the rule-based agent must not read the evaluation side")

    for owner in (PaseOpenStackEnv, Episode):
        monkeypatch.setattr(owner, "ground_truth", sealed)
        monkeypatch.setattr(owner, "simulate", sealed)
    plans, _, recovered = play("process-crash-test", 0)
    assert recovered and len(plans) > 1


def test_waits_on_a_healthy_cloud() -> None:
    agent = load_agent("rule_based")
    agent.reset(0)
    for tick in (10, 30, 50):
        plan = agent.act({}, {"description": HEALTHY.replace("t=10s", f"t={tick}s"), "tick": tick})
        assert str(plan) == "Wait(10)"


def test_waits_until_the_fault_shows_in_an_episode() -> None:
    agent = load_agent("rule_based")
    env = gym.make("PASE-OpenStack-v4", scenario="process-crash-test")
    obs, info = env.reset(seed=0)
    agent.reset(0)
    while "All service level objectives are met" in info["description"]:
        assert str(agent.act(obs, info)) == "Wait(10)"
        obs, *_, info = env.step("Wait(10)")
    assert str(agent.act(obs, info)) != "Wait(10)"


def test_console_parsing() -> None:
    console, context = agent_module().read_console(DISK)
    assert console.alarms == {"mysql-1": ["DiskFull", "NodeDown"], "controller-1": ["DiskFull"]}
    assert context == {
        "mysql-1": ("mysql", "controller-1"),
        "controller-1": ("controller", "controller-1"),
    }
    assert console.logs == [
        ("controller-1", "OSError: [Errno 28] No space left on device"),
        ("mysql-1", "mysqld: Disk is full writing './ib_logfile0' (Errcode: 28)"),
    ]
    assert not console.healthy
    assert agent_module().read_console(HEALTHY)[0].healthy


def test_rules_fire_their_fixed_runbooks() -> None:
    agent = load_agent("rule_based")
    agent.reset(0)
    plan = agent.act({}, {"description": CRASH, "tick": 50})
    assert str(plan) == "Diagnose(process_crash, nova-compute-2); Restart(nova-compute-2)"
    agent.reset(0)
    plan = agent.act({}, {"description": DISK, "tick": 50})
    assert str(plan) == "Diagnose(disk_full, controller-1); CleanDisk(controller-1)"


def test_paces_itself_and_gives_up() -> None:
    agent = load_agent("rule_based")
    agent.reset(0)
    plans = [str(agent.act({}, {"description": CRASH, "tick": t})) for t in range(50, 400, 20)]
    assert plans[0].startswith("Diagnose(")  # one diagnosis per incident
    assert not any(p.startswith("Diagnose(") for p in plans[1:])
    assert sum(p.endswith("Restart(nova-compute-2)") for p in plans) == 2  # tried, retried, gave up
    assert plans[1] == "Wait(10)"  # no repeat on the next step


@pytest.mark.parametrize(
    "scenario", ["process-crash-test", "disk-full-test", "memory-leak-test", "queue-backlog-test"]
)
def test_every_plan_parses(scenario: str) -> None:
    plans, _, _ = play(scenario, 1)
    for plan in plans:
        assert isinstance(plan, Plan)
        assert parse_plan(str(plan)) == plan
    assert sum(p.diagnosis is not None for p in plans) >= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_restarts_a_crashed_process_and_recovers(seed: int) -> None:
    plans, env, recovered = play("process-crash-test", seed)
    node = env.ground_truth()[0]["node"]
    assert recovered
    assert any(str(call) == f"Restart({node})" for p in plans for call in p.steps)
    record = run_episode(Job("rule_based", "t", "process-crash-test", seed))
    assert record["recovered"] and record["agent"] == "rule_based"
    assert not record["uses_ground_truth"]
    assert record["diagnosis"] == "process_crash" and record["diagnosed_node"] == node
    assert record["agent_errors"] == 0


@pytest.mark.parametrize(("scenario", "seed"), [("process-crash-test", 3), ("dns-failure-test", 0)])
def test_deterministic(scenario: str, seed: int) -> None:
    first = run_episode(Job("rule_based", "t", scenario, seed))
    second = run_episode(Job("rule_based", "t", scenario, seed))
    first.pop("compute_s"), second.pop("compute_s")
    assert first == second
    assert [str(p) for p in play(scenario, seed)[0]] == [str(p) for p in play(scenario, seed)[0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_static_runbooks_fail_on_the_novel_fault(seed: int) -> None:
    record = run_episode(Job("rule_based", "t", "cpu-memory-deadlock-unseen", seed))
    assert not record["recovered"]
    assert record["agent_errors"] == 0
