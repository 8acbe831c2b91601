"""The one action decoder: every field of a structured action is checked, nothing is wrapped
around, a bad action is a penalised no-op, and a plan never runs the clock past the budget."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.actions import decode_action, to_plan
from pase_gym.env.core import MALFORMED_PENALTY, episode_of
from pase_gym.env.spaces import NUMBER_SLOTS, PRIMITIVE_NAMES, RESOURCE_SLOTS
from pase_gym.errors import PlanError
from pase_gym.sim.faults import fault_names
from pase_gym.sim.plan import MAX_STEPS, Call, Plan

TINY = "PASE-OpenStack-Tiny-v4"
RESTART = PRIMITIVE_NAMES.index("Restart")
WAIT = PRIMITIVE_NAMES.index("Wait")
SCALE_OUT = PRIMITIVE_NAMES.index("ScaleOut")


@pytest.fixture
def env() -> gym.Env[Any, Any]:
    e = gym.make(TINY, start="incident")
    e.reset(seed=0)
    return e


def _decode(env: gym.Env[Any, Any], action: Any) -> Plan:
    base: Any = env.unwrapped
    return decode_action(action, episode_of(env).topology, base.shapes)


def _step(primitive: Any = RESTART, **slots: Any) -> dict[str, Any]:
    return {"primitive": primitive, "node": 0, **slots}


def test_a_valid_structured_action_decodes_to_its_plan(env: gym.Env[Any, Any]) -> None:
    names = episode_of(env).topology.names
    action = {
        "diagnosis": {"fault": np.int64(1), "node": np.int64(2)},
        "steps": (
            _step(RESTART, node=np.int64(3)),
            {"primitive": WAIT, "number": np.array(9)},
            {"primitive": SCALE_OUT, "group": 0, "number": 1},
        ),
    }
    plan = _decode(env, action)
    group = env.unwrapped.shapes.groups[0]  # type: ignore[attr-defined]
    assert plan.diagnosis is not None
    assert (plan.diagnosis.fault_type, plan.diagnosis.node) == (fault_names()[0], names[2])
    assert plan.steps == (
        Call("Restart", (names[3],)),
        Call("Wait", (10,)),  # INT slots: lo + number % (hi - lo + 1), as documented
        Call("ScaleOut", (group, 2)),
    )


def test_a_resource_slot_reads_the_primitives_own_choices(env: gym.Env[Any, Any]) -> None:
    # Trace's request types and ResizeResource's allocations share one slot, read modulo
    # each primitive's own choices, so every choice of either is reachable from the space
    trace, resize = PRIMITIVE_NAMES.index("Trace"), PRIMITIVE_NAMES.index("ResizeResource")
    assert RESOURCE_SLOTS == 4
    assert env.action_space["steps"].feature_space["resource"].n == RESOURCE_SLOTS  # type: ignore[index]
    traced = [_decode(env, {"steps": ({"primitive": trace, "resource": r},)}) for r in range(4)]
    assert [p.steps[0] for p in traced] == [
        Call("Trace", (request,)) for request in ("boot", "volume", "network", "cleanup")
    ]
    name = episode_of(env).topology.names[3]
    grown = [
        _decode(env, {"steps": (_step(resize, node=3, number=0, resource=r),)}).steps[0]
        for r in range(4)
    ]
    assert [c.args[1] for c in grown] == ["cpu", "memory", "disk", "cpu"]
    assert {c.args[0] for c in grown} == {name}
    _, _, _, _, info = env.step({"steps": ({"primitive": trace, "resource": 3},)})
    assert info["plan_error"] is None and info["probes"][0]["request"] == "cleanup"


@pytest.mark.parametrize(
    ("step", "where"),
    [
        ({"primitive": -1, "node": 0}, "step 0.primitive"),  # was silently the last primitive
        ({"primitive": len(PRIMITIVE_NAMES), "node": 0}, "step 0.primitive"),
        ({"primitive": float("inf"), "node": 0}, "step 0.primitive"),  # was an OverflowError
        ({"primitive": float("nan"), "node": 0}, "step 0.primitive"),
        ({"primitive": 1.0, "node": 0}, "step 0.primitive"),
        ({"primitive": True, "node": 0}, "step 0.primitive"),
        ({"primitive": "0", "node": 0}, "step 0.primitive"),
        ({"primitive": np.array([RESTART]), "node": 0}, "step 0.primitive"),
        ({"primitive": RESTART, "node": -1}, "step 0.node"),
        ({"primitive": RESTART, "node": 10**30}, "step 0.node"),
        ({"primitive": RESTART}, "missing slot 'node'"),
        ({"primitive": RESTART, "node": 0, "extra": 1}, "unknown slot"),
        ({"primitive": RESTART, "node": 0, "number": NUMBER_SLOTS}, "step 0.number"),
        ({"primitive": RESTART, "node": 0, "resource": RESOURCE_SLOTS}, "step 0.resource"),
        ({"primitive": SCALE_OUT, "group": 10_000, "number": 1}, "step 0.group"),
        ({"primitive": WAIT, "number": -3}, "step 0.number"),
        ({"node": 0}, "missing slot 'primitive'"),
        ([RESTART, 0], "expected a mapping"),
    ],
)
def test_every_bad_slot_is_a_plan_error_naming_it(
    env: gym.Env[Any, Any], step: Any, where: str
) -> None:
    with pytest.raises(PlanError, match=where.replace(".", r"\.")):
        _decode(env, {"steps": [step]})


@pytest.mark.parametrize(
    ("action", "match"),
    [
        ({"steps": [], "diagnosis": {"fault": len(fault_names()) + 1, "node": 0}}, "fault"),
        ({"steps": [], "diagnosis": {"fault": -1, "node": 0}}, "fault"),
        ({"steps": [], "diagnosis": {"fault": 1}}, "missing slot 'node'"),
        ({"steps": [], "diagnosis": {"fault": 1, "node": 10_000}}, "diagnosis.node"),
        ({"steps": [], "diagnosis": [1, 0]}, "diagnosis: expected a mapping"),
        ({"steps": [], "oops": 1}, "unknown key"),
        ({"diagnosis": None}, "needs 'steps'"),
        ({"steps": "Restart(x)"}, "list or tuple"),
        ({"steps": {"primitive": 0}}, "list or tuple"),
        (42, "expected a dict"),
        (None, "expected a dict"),
    ],
)
def test_malformed_actions_name_what_was_expected(
    env: gym.Env[Any, Any], action: Any, match: str
) -> None:
    with pytest.raises(PlanError, match=match):
        to_plan(action, episode_of(env).topology, env.unwrapped.shapes)  # type: ignore[attr-defined]


def test_padding_node_slots_are_rejected_not_wrapped() -> None:
    env = gym.make("PASE-OpenStack-Train-v4")  # padded: the tiny train clouds have spare slots
    env.reset(seed=0)
    n = episode_of(env).topology.n
    assert env.unwrapped.shapes.nodes > n  # type: ignore[attr-defined]
    with pytest.raises(PlanError, match="padding"):
        _decode(env, {"steps": [_step(node=n)]})


def test_a_million_call_action_is_refused_before_any_call_is_read(env: gym.Env[Any, Any]) -> None:
    class Exploding(dict):  # reading any call would raise something else than a PlanError
        def __getitem__(self, key: object) -> Any:
            raise AssertionError("a call was read")

    steps = [Exploding()] * 1_000_000
    with pytest.raises(PlanError, match=f"at most {MAX_STEPS} steps"):
        _decode(env, {"steps": steps})


def test_a_diagnosis_of_an_unknown_node_is_a_malformed_plan(env: gym.Env[Any, Any]) -> None:
    fault = fault_names()[0]
    results_before = len(episode_of(env).results)
    _, reward, _, _, info = env.step(f"Diagnose({fault}, no-such-node); Wait(5)")
    assert info["plan_error"] is not None and "unknown node" in info["plan_error"]
    assert float(reward) <= -MALFORMED_PENALTY
    assert episode_of(env).diagnoses == [] and len(episode_of(env).results) == results_before
    real = episode_of(env).topology.names[0]
    _, _, _, _, info = env.step(f"Diagnose({fault}, {real})")
    assert info["plan_error"] is None and episode_of(env).diagnoses == [(fault, real)]


def test_bad_structured_actions_are_penalised_no_ops_in_step(env: gym.Env[Any, Any]) -> None:
    tick = episode_of(env).state.tick
    obs, reward, terminated, _, info = env.step({"steps": [{"primitive": float("inf"), "node": 0}]})
    assert "primitive" in info["plan_error"]
    assert float(reward) <= -MALFORMED_PENALTY
    assert env.observation_space.contains(obs)
    assert episode_of(env).state.tick > tick and not terminated


def test_simulate_rejects_what_step_rejects(env: gym.Env[Any, Any]) -> None:
    with pytest.raises(PlanError, match="primitive"):
        env.unwrapped.simulate({"steps": [{"primitive": -1, "node": 0}]})  # type: ignore[attr-defined]


def test_a_plan_never_runs_the_clock_past_the_budget() -> None:
    env = gym.make(TINY, start="incident")
    env.reset(seed=0)
    episode = episode_of(env)
    budget = episode.scenario.budget
    plan = Plan((Call("Wait", (600,)),) * MAX_STEPS)  # 38,400 s asked for on a 600 s budget
    _, _, terminated, truncated, info = env.step(plan)
    assert episode.state.tick == budget
    assert truncated and not terminated
    assert info["plan_cut"] > 0
    assert info["plan_ticks"] <= budget


def test_a_plan_that_fits_the_budget_is_not_cut(env: gym.Env[Any, Any]) -> None:
    tick = episode_of(env).state.tick
    _, _, _, _, info = env.step("Wait(5); Wait(5)")
    assert info["plan_cut"] == 0 and info["plan_ticks"] == 10
    assert episode_of(env).state.tick == tick + 10 + 10  # the plan, then 10 s of monitoring
