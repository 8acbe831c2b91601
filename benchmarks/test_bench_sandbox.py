"""The sandbox's cost per decision: one ``act`` of the rule-based agent, in-process and through
the sandbox (pickled observation out, JSON plan back), on the same first-alarm observation of
the ~200-node cloud.

Run with ``pytest benchmarks/test_bench_sandbox.py --benchmark-only``; the difference of the two
medians is the overhead a sandboxed decision pays (the agent's own work is the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.harness.agent import load_agent
from pase_gym.harness.sandbox import SandboxedAgent

ROUNDS = 300
AGENT = Path(__file__).resolve().parents[1] / "agents" / "rule_based" / "agent.py"


@pytest.fixture(scope="module")
def scene() -> tuple[Any, Any]:
    env = gym.make("PASE-OpenStack-v4", scenario="process-crash-test", start="incident")
    return env.reset(seed=0)


@pytest.mark.parametrize("where", ["in_process", "sandbox"])
def test_decision_round_trip(benchmark: Any, scene: tuple[Any, Any], where: str) -> None:
    obs, info = scene
    agent: Any = load_agent(str(AGENT)) if where == "in_process" else SandboxedAgent(str(AGENT))
    try:
        plan = benchmark.pedantic(
            lambda: agent.act(obs, info),
            setup=lambda: agent.reset(0),  # untimed: each round is the incident's first decision
            rounds=ROUNDS,
            iterations=1,
            warmup_rounds=5,
        )
        assert "Diagnose(" in str(plan)  # the same answer either way: a diagnosis at the alarm
    finally:
        if where == "sandbox":
            agent.close()
