"""The learned baselines' cost per decision: one ``act()`` at an incident's first alarm.

Run with ``pytest benchmarks/test_bench_agents.py --benchmark-only``. One round is one
decision of a freshly reset agent (so it decides, not monitors) on the same observation:
the first alarmed observation of ``process-crash-test`` (the ~200-node cloud, seed 0). The
agents are loaded and warmed once first (weights read, for IFSHM the language model loaded),
so a round is what a decision costs in a long run. GCN-FR and DETR-FD run on 1 torch thread
(as they set themselves), IFSHM's and PASE's language models on 2. A PASE decision is the
whole round of its loop: D_t read, the prompt chosen, three candidates written in one batch,
verified, and (when none clears ``tau``) refined up to twice or replaced by its fallback.
``extra_info["decision"]`` is the plan the round produced (the same every round: the agents
are deterministic).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

pytest.importorskip("torch", reason="the learned agents need torch (pip install 'pase-gym[rl]')")

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.harness.agent import load_agent
from pase_gym.sim.plan import Call, Plan

SCENARIO = "process-crash-test"


def _first_alarm() -> tuple[dict[str, Any], dict[str, Any]]:
    env = gym.make("PASE-OpenStack-v4", scenario=SCENARIO)
    obs, info = env.reset(seed=0)
    while not obs["alarms"].sum():
        obs, _, _, _, info = env.step(Plan((Call("Wait", (10,)),)))
    return obs, info


@pytest.mark.parametrize(
    "name",
    [
        "gcn_fr",
        "detr_fd",
        pytest.param("ifshm", marks=pytest.mark.slow),
        pytest.param("pase_full", marks=pytest.mark.slow),
    ],
)
def test_decision_latency(benchmark: Any, name: str) -> None:
    if name in ("ifshm", "pase_full"):
        pytest.importorskip("transformers")
        pytest.importorskip("sb3_contrib")
    obs, info = _first_alarm()
    agent = load_agent(name)
    agent.reset(0)
    agent.act(obs, info)  # warm: weights (and the language model) loaded

    def decide() -> Any:
        agent.reset(0)
        return agent.act(obs, info)

    plan = benchmark(decide)
    fell_back = bool(getattr(agent, "fallbacks", None))
    assert plan.steps and (plan.steps[0].name != "Wait" or fell_back)
    benchmark.extra_info["decision"] = str(plan)
    benchmark.extra_info["fell_back"] = fell_back
