"""The reward teaches: an open incident costs more than a wasted safe call, so waiting is not
near-optimal, and a clean recovery beats every way of leaving the incident open."""

from __future__ import annotations

import gymnasium as gym
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.core import COST_PENALTY, RECOVERY_BONUS, TIME_PENALTY
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.primitives import PRIMITIVES, Safety

MONITOR = 10  # the env's default monitor_ticks


@pytest.mark.parametrize(
    "name", [n for n, p in PRIMITIVES.items() if p.safety is Safety.SAFE and p.cost > 0]
)
def test_a_wasted_safe_call_costs_less_than_leaving_the_incident_open(name: str) -> None:
    assert COST_PENALTY * PRIMITIVES[name].cost < TIME_PENALTY * MONITOR


def _returns(scenario: str, seed: int, oracle: bool) -> tuple[float, bool]:
    """Return of one episode: waiting throughout, or the oracle's runbook once the fault is
    active (the evaluation side reads the state to write it), then waiting."""
    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    env.reset(seed=seed)
    handled: set[int] = set()
    total, done, terminated = 0.0, False, False
    while not done:
        action = "Wait(10)"
        if oracle:
            state = env.unwrapped.current_episode().state
            plan = oracle_plan(state, skip=handled)
            if plan.steps:
                handled.update(id(f) for f in state.faults if f.active)
                action = str(plan)
        _, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total, bool(terminated)


@pytest.mark.parametrize("scenario", ["process-crash-test", "db-lock-contention-test"])
def test_recovering_beats_waiting_by_far(scenario: str) -> None:
    waited, recovered_by_waiting = _returns(scenario, 0, oracle=False)
    fixed, recovered = _returns(scenario, 0, oracle=True)
    assert recovered and not recovered_by_waiting
    assert fixed > 0.4 * RECOVERY_BONUS  # the SLOs must hold 60 s before it counts
    assert waited < -RECOVERY_BONUS  # waiting until the budget costs more than a recovery earns
