"""Database lock contention and a failed replica need their catalogued two-step recovery: a
restart alone, or the first step alone, leaves the incident open."""

from __future__ import annotations

import pytest

from pase_gym.episode import Episode

CASES = [
    ("db-lock-contention-test", "Failover({n}); Restart({n})", ["Restart({n})", "Failover({n})"]),
    ("db-replica-failure-test", "Isolate({n}); Restart({n})", ["Restart({n})", "Isolate({n})"]),
]


def _run(scenario: str, seed: int, plan: str) -> tuple[bool, str]:
    episode = Episode(scenario, seed)
    episode.reset()
    node = episode.ground_truth()[0]["node"]
    episode.step(plan.format(n=node))
    episode.run_until_recovered()
    return episode.recovered, episode.ground_truth()[0]["phase"]


@pytest.mark.parametrize(("scenario", "runbook", "partial"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_only_the_two_step_runbook_recovers(
    scenario: str, runbook: str, partial: list[str], seed: int
) -> None:
    for plan in partial:
        recovered, phase = _run(scenario, seed, plan)
        assert not recovered and phase != "resolved", (plan, phase)
    recovered, phase = _run(scenario, seed, runbook)
    assert recovered and phase == "resolved"
