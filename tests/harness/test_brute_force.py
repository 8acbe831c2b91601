"""Brute force does not pay: restarting, failing over or scaling in everything scores no safe
success on the ``paper`` suite, and every remedy on every alarmed node scores below the
rule-based agent while its waste shows in the cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from pase_gym.harness.metrics import METRICS
from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import load_suite

AGENTS = Path(__file__).resolve().parents[2] / "agents" / "brute_force" / "agent.py"
BRUTE = ("RestartEverything", "FailoverEverything", "ScaleToZero", "EveryRemedy")


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float | None]]:
    out = tmp_path_factory.mktemp("brute") / "paper.jsonl"
    specs = [f"{AGENTS}:{name}" for name in BRUTE] + ["rule_based"]
    records = run_suite(specs, load_suite("paper"), out, seeds=1, workers=2, progress=False)
    by_agent: dict[str, list] = {}
    for r in records:
        by_agent.setdefault(r["agent"], []).append(r)
    return {
        agent: {
            name: METRICS[name].compute(recs) for name in ("safe_success", "success_rate", "cost")
        }
        for agent, recs in by_agent.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["restart_everything", "failover_everything", "scale_to_zero"])
def test_brute_force_scores_no_safe_success(
    scores: dict[str, dict[str, float | None]], agent: str
) -> None:
    assert scores[agent]["safe_success"] == 0.0


@pytest.mark.slow
def test_every_remedy_everywhere_scores_below_the_rule_based_agent_and_costs_more(
    scores: dict[str, dict[str, float | None]],
) -> None:
    remedy, rules = scores["every_remedy"], scores["rule_based"]
    assert remedy["safe_success"] is not None and rules["safe_success"] is not None
    assert remedy["safe_success"] < rules["safe_success"]
    assert remedy["cost"] is not None and rules["cost"] is not None
    assert remedy["cost"] > 2 * rules["cost"]
