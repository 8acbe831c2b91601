"""Adding a fault type is one class plus a scenario file: proven with a toy fault.

The toy fault is defined here, in the test file alone, registered for the test's duration,
and run through the scenario loader, the env, the oracle and the harness.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.core import episode_of
from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import SuiteSpec
from pase_gym.scenarios import load_scenario
from pase_gym.sim.faults import (
    FAULT_NAMES,
    ActiveFault,
    FaultSpec,
    RunbookStep,
    SignatureTerm,
    fault_names,
    register_fault,
    registered,
)
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.state import Modifiers, SimState


class StaleCache(ActiveFault):
    """A service serves stale answers from a poisoned cache until it is flushed and restarted."""

    spec = FaultSpec(
        name="stale_cache",
        family="deploy",
        target="service",
        description="A poisoned local cache makes the service fail most of its requests.",
        signature=(SignatureTerm("node", "error_rate", ">", 0.5),),
        symptoms=("stack_trace",),
        recovery="Flush the service's cache, then restart it.",
        catalogue="a test of the fault registry",
    )
    clears_by = ("flush_cache", "restart")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.err_add[self.node] = max(mods.err_add[self.node], 0.8)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("FlushCache", (name,)), ("Restart", (name,))]


SCENARIO = """\
name: stale-cache-test
split: test
topology: {nodes: tiny, seed: 3}
workload: {profile: deployment}
faults:
  - type: stale_cache
    onset: [20, 40]
recovery: {hold: 60}
budget: 600
"""


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "stale-cache-test.yaml"
    path.write_text(SCENARIO)
    with registered(StaleCache):
        yield path


def test_the_catalogue_order_of_the_built_in_types_is_fixed() -> None:
    # the order numbers the env's diagnosis space and the GCN-FR output head
    assert FAULT_NAMES[:3] == ("process_crash", "process_hang", "memory_leak")
    assert FAULT_NAMES[-2:] == ("certificate_expiry", "cpu_memory_deadlock")
    assert len(FAULT_NAMES) == 18


def test_registering_adds_the_type_and_leaving_the_block_removes_it(toy: Path) -> None:
    assert fault_names()[-1] == "stale_cache"
    assert load_scenario(str(toy)).faults[0].types() == ["stale_cache"]


def test_the_registry_is_clean_after_the_block() -> None:
    assert "stale_cache" not in fault_names()


def test_a_bad_registration_is_refused() -> None:
    class NoSpec(ActiveFault):
        pass

    with pytest.raises(ValueError, match="spec"):
        register_fault(NoSpec)

    class Twice(StaleCache):
        spec = FaultSpec("process_crash", "process", "service", "", (), "", "", "")

    with pytest.raises(ValueError, match="already registered"):
        register_fault(Twice)


def test_the_env_the_parser_and_the_oracle_handle_the_new_type(toy: Path) -> None:
    env = gym.make("PASE-OpenStack-v4", scenario=str(toy))
    env.reset(seed=0)
    assert env.action_space["diagnosis"]["fault"].n == len(FAULT_NAMES) + 2  # type: ignore[index]
    for _ in range(12):
        if episode_of(env).state.incident_open_at is not None:
            break
        env.step("Wait(10)")
    episode = episode_of(env)
    assert episode.ground_truth()[0]["fault_type"] == "stale_cache"
    episode_lines = [
        line.text for line in episode.state.log if line.node == episode.ground_truth()[0]["node"]
    ]
    assert any("Traceback (most recent call last)" in text for text in episode_lines)
    plan = oracle_plan(episode.state)
    node = episode.ground_truth()[0]["node"]
    assert str(plan) == f"Diagnose(stale_cache, {node}); FlushCache({node}); Restart({node})"
    assert parse_plan(str(plan)) == plan
    # a restart alone is a mitigation: the fault stays
    _, _, terminated, _, _ = env.step(f"Restart({node})")
    assert not terminated and episode.state.faults[0].active
    ticks = 0
    terminated = truncated = False
    _, _, terminated, truncated, _ = env.step(plan)
    while not (terminated or truncated) and ticks < 20:
        _, _, terminated, truncated, _ = env.step("Wait(10)")
        ticks += 1
    assert terminated and not truncated
    assert episode.report().recovered and episode.report().diagnosis_correct


def test_the_harness_scores_the_new_type(toy: Path, tmp_path: Path) -> None:
    suite = SuiteSpec(name="toy", scenarios=[str(toy)], seeds=2)
    records = run_suite(["oracle", "random"], suite, tmp_path / "toy.jsonl", progress=False)
    by_agent = {a: [r for r in records if r["agent"] == a] for a in ("oracle", "random")}
    assert [r["recovered"] for r in by_agent["oracle"]] == [True, True]
    assert {r["fault_types"][0] for r in records} == {"stale_cache"}
    assert {r["families"][0] for r in records} == {"deploy"}
    assert all(r["diagnosis"] == "stale_cache" for r in by_agent["oracle"])
    assert not any(r["recovered"] for r in by_agent["random"])
    assert np.isfinite([r["return"] for r in records]).all()


MODULE = """
from pase_gym.sim.faults.base import ActiveFault, FaultSpec, SignatureTerm
from pase_gym.sim.faults.registry import register_fault


@register_fault
class DroppedRoute(ActiveFault):
    spec = FaultSpec(
        name="dropped_route",
        family="network",
        target="host",
        description="A static route disappears from a host.",
        signature=(SignatureTerm("callers", "error_rate", ">", 0.05),),
        symptoms=("unreachable",),
        recovery="Fail the host over to its standby link.",
        catalogue="a test of module discovery",
    )
    clears_by = ("failover",)

    def runbook(self, state):
        return [("Failover", (state.name(self.node),))]
"""


def test_a_new_file_in_the_faults_folder_is_appended_to_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pase_gym.sim.faults as faults

    (tmp_path / "dropped_route.py").write_text(MODULE)
    monkeypatch.setattr(faults, "__path__", [*faults.__path__, str(tmp_path)])
    before = fault_names()
    try:
        faults._import_new_fault_modules()
        assert fault_names() == (*before, "dropped_route")
    finally:
        if "dropped_route" in fault_names():
            faults.unregister_fault("dropped_route")
        sys.modules.pop("pase_gym.sim.faults.dropped_route", None)
        vars(faults).pop("dropped_route", None)
    assert fault_names() == before
