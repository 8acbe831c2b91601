"""The scripted expert (``pase_gym.harness.expert``) and the ``prober`` agent: every fault's
findings name it, probes go where the alarms point, the agent probes before it acts, reads no
ground truth and recovers what it diagnosed."""

from __future__ import annotations

import gymnasium as gym
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.harness.agent import load_agent
from pase_gym.harness.expert import (
    FINDINGS,
    MAX_PROBES,
    probe_candidates,
    read_findings,
    worst_replica,
)
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.plan import Plan, parse_plan


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_types_findings_name_it_and_only_it(fault: str) -> None:
    spec = FAULTS[fault]
    assert spec.findings, f"{fault} shows nothing to a probe"
    lines = [
        f.format(node="nova-api-2", host="nova-api-2", onset=30, age=12) for f in spec.findings
    ]
    assert read_findings([{"node": "nova-api-2", "lines": lines}]) == (fault, "nova-api-2")
    for hosted in spec.hosted_findings:  # a process on the faulty host points at the host
        line = hosted.format(host="compute-3", onset=30, age=12)
        found = read_findings([{"node": "nova-compute-3", "lines": [line]}])
        assert found == (fault, "compute-3")


def test_a_report_without_a_finding_names_nothing() -> None:
    healthy = ["keystone-1 (keystone on controller-1): process running", "cpu 30%, memory 40%"]
    assert read_findings([{"node": "keystone-1", "lines": healthy}]) is None
    assert read_findings([]) is None
    assert {fault for _, fault in FINDINGS} == set(FAULTS)


def test_the_replica_line_points_at_the_worst_replica() -> None:
    line = (
        "replicas as their clients see them: keystone-1 error rate 0.01, latency 0.10 s, "
        "availability 1.00; keystone-2 error rate 0.62, latency 0.12 s, availability 1.00; "
        "keystone-3 error rate 0.00, latency 0.09 s, availability 1.00"
    )
    assert worst_replica({"node": "keystone-1", "lines": [line]}) == "keystone-2"
    assert worst_replica({"node": "keystone-2", "lines": [line]}) is None  # already there
    even = line.replace("0.62", "0.01")
    assert worst_replica({"node": "keystone-1", "lines": [even]}) is None


def test_probes_go_to_the_alarmed_host_first() -> None:
    env = gym.make("PASE-OpenStack-v4", scenario="host-power-loss-test", start="incident")
    obs, info = env.reset(seed=0)
    root = env.unwrapped.ground_truth()[0]["node"]
    names = info["slot_names"]
    candidates = probe_candidates(obs, names)
    assert 0 < len(candidates) <= MAX_PROBES and set(candidates) <= set(info["node_names"])
    assert candidates[0] == root


def _run(agent: object, scenario: str, seed: int) -> tuple[list[Plan], gym.Env]:
    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    obs, info = env.reset(seed=seed)
    agent.reset(seed)  # type: ignore[attr-defined]
    plans: list[Plan] = []
    for _ in range(80):
        plan = agent.act(obs, info)  # type: ignore[attr-defined]
        plans.append(plan if isinstance(plan, Plan) else parse_plan(plan))
        obs, _, terminated, truncated, info = env.step(plan)
        if terminated or truncated:
            break
    return plans, env


@pytest.mark.parametrize(
    ("scenario", "seed"),
    [("process-hang-test", 1), ("dns-failure-test", 0), ("bad-deploy-test", 2)],
)
def test_the_prober_inspects_then_runs_the_runbook_and_recovers(scenario: str, seed: int) -> None:
    agent = load_agent("prober")
    assert not getattr(agent, "uses_ground_truth", False)
    plans, env = _run(agent, scenario, seed)
    truth = env.unwrapped.ground_truth()[0]
    acting = [p for p in plans if p.steps and p.steps[0].name != "Wait"]
    first_probe = next(i for i, p in enumerate(acting) if p.steps[0].name == "Inspect")
    diagnosed = next(i for i, p in enumerate(acting) if p.diagnosis is not None)
    assert first_probe < diagnosed  # it looks before it acts
    assert all(len(p.steps) == 1 for p in acting[:diagnosed])  # one probe per step
    assert diagnosed - first_probe <= MAX_PROBES
    diagnosis = acting[diagnosed].diagnosis
    assert diagnosis is not None
    assert (diagnosis.fault_type, diagnosis.node) == (truth["fault_type"], truth["node"])
    episode = env.unwrapped.current_episode()
    assert episode.recovered
    assert not any(r.harmed for r in episode.results)


def test_the_prober_is_deterministic() -> None:
    agent = load_agent("prober")
    first, _ = _run(agent, "queue-backlog-test", 0)
    again, _ = _run(agent, "queue-backlog-test", 0)
    assert [str(p) for p in first] == [str(p) for p in again]
