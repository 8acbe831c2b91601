"""Wrappers: text plans (property-based), the flat masked action space, the SB3 stack."""

from __future__ import annotations

import pickle
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pase_gym.env.core import MALFORMED_PENALTY, TIME_PENALTY
from pase_gym.errors import PlanError
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan import MAX_TEXT_LENGTH, Plan, parse_plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.transition import check_call
from pase_gym.wrappers import (
    SB3_PARTS,
    DiscretePlanAction,
    SB3Observation,
    TextPlanAction,
    make_sb3_env,
)

TINY = "PASE-OpenStack-Tiny-v4"
DEFAULT = "PASE-OpenStack-v4"


# ---- TextPlanAction ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _snapshot() -> tuple[bytes, tuple[str, ...], tuple[str, ...], int]:
    """A text-wrapped tiny env at an open incident, pickled (each example starts from it)."""
    env = TextPlanAction(gym.make(TINY, start="incident"))
    _, info = env.reset(seed=0)
    assert env.unwrapped.episode.state.incident_open_at is not None
    names = tuple(env.unwrapped.node_names())
    groups = tuple(env.unwrapped.shapes.groups)
    return pickle.dumps(env), names, groups, info["tick"]


def _fresh() -> gym.Env[Any, Any]:
    env: gym.Env[Any, Any] = pickle.loads(_snapshot()[0])
    return env


def _check_text_step(text: str) -> None:
    """The property: stepping any text never raises and does what the parser says."""
    try:
        expected: Plan | None = parse_plan(text)
        error = None
    except PlanError as exc:
        expected, error = None, str(exc)
    env = _fresh()
    tick0 = _snapshot()[3]
    obs, reward, terminated, truncated, info = env.step(text)
    assert env.observation_space.contains(obs)
    assert np.isfinite(reward)
    if error is not None:
        assert info["plan_error"] == error
        assert info["plan"] == ""
        assert "violations" not in info
        elapsed = info["tick"] - tick0
        assert reward == pytest.approx(-MALFORMED_PENALTY - TIME_PENALTY * elapsed)
        assert not terminated and not truncated
        return
    assert expected is not None
    assert info["plan_error"] is None
    assert info["plan"] == str(expected)
    if len(expected):
        assert info["plan_ticks"] >= len(expected)
        assert isinstance(info["violations"], list)
    # text and the parsed Plan are the same action (the Plan goes in below the text wrapper)
    twin = _fresh()
    _, twin_reward, *_, twin_info = twin.env.step(expected)
    assert twin_reward == reward
    assert twin_info == info


_FRAGMENTS = ["", "(", ")", ",", ";", "=", "'", '"', "#x", "1a", "-", "+", "\n", "()", "a b"]
_KEYWORDS = ["node", "group", "count", "ticks", "resource", "amount", "percent", "bogus"]


@st.composite
def _grammarish(draw: st.DrawFn) -> str:
    """Plan-shaped text: real and misspelt names, node names, ints, broken punctuation."""
    _, names, groups, _ = _snapshot()
    ident = st.sampled_from(
        [*names, *groups, *FAULT_NAMES, "cpu", "memory", "disk", "nova-api-99", "x"]
    )
    ints = st.one_of(st.integers(-3, 40), st.sampled_from([0, 599, 600, 601, 10**20]))
    value = st.one_of(
        ident, ints.map(str), ident.map(lambda v: f"'{v}'"), st.sampled_from(_FRAGMENTS)
    )
    arg = st.one_of(value, st.tuples(st.sampled_from(_KEYWORDS), value).map("=".join))
    prims = [*PRIMITIVES, "Diagnose", "restart", "Restrat", "Wiat", "Foo", ""]
    statements = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(prims))
        args = draw(st.lists(arg, max_size=4))
        sep = draw(st.sampled_from([",", ", ", ",,", " ", ";"]))
        opener = draw(st.sampled_from(["(", "(", "(", "", "(("]))
        closer = draw(st.sampled_from([")", ")", ")", "", "))"]))
        statements.append(f"{name}{opener}{sep.join(args)}{closer}")
    joiner = draw(st.sampled_from(["; ", "\n", ";", " ", ";;", "\n# note\n"]))
    return joiner.join(statements)


@st.composite
def _valid_plan_text(draw: st.DrawFn) -> str:
    """Well-formed plans over the env's nodes and groups (preconditions may still fail)."""
    _, names, groups, _ = _snapshot()
    calls = []
    if draw(st.booleans()):
        fault = draw(st.sampled_from(FAULT_NAMES))
        calls.append(f"Diagnose({fault}, {draw(st.sampled_from(names))})")
    for _ in range(draw(st.integers(0, 3))):
        spec = PRIMITIVES[draw(st.sampled_from(sorted(PRIMITIVES)))]
        args = []
        for p in spec.params:
            if p.type is ParamType.NODE:
                args.append(draw(st.sampled_from(names)))
            elif p.type is ParamType.GROUP:
                args.append(draw(st.sampled_from(groups)))
            elif p.type is ParamType.INT:
                args.append(str(draw(st.integers(p.lo, min(p.hi, p.lo + 20)))))
            else:
                args.append(draw(st.sampled_from(p.choices)))
        calls.append(f"{spec.name}({', '.join(args)})")
    return "; ".join(calls)


_FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(_FAST, max_examples=300)
@given(text=st.text(max_size=80))
def test_any_text_never_raises(text: str) -> None:
    _check_text_step(text)


@settings(_FAST, max_examples=400)
@given(text=_grammarish())
def test_plan_shaped_text_never_raises(text: str) -> None:
    _check_text_step(text)


@settings(_FAST, max_examples=300)
@given(text=_valid_plan_text())
def test_valid_plan_text_executes(text: str) -> None:
    parse_plan(text)  # the strategy only writes valid plans
    _check_text_step(text)


@pytest.mark.parametrize(
    "text",
    [
        "Restart(",
        "Restart(nova-api-1",
        "Wait(0)",
        "Wait(601)",
        "ScaleOut(nova-api)",
        "Restrat(nova-api-1)",
        "Wait(5); Diagnose(memory_leak, nova-api-1)",
        "Wait(1);" * (MAX_TEXT_LENGTH // 8 + 1),
        "Wait(\u00e9)",
        "\x00",
    ],
)
def test_malformed_examples_report_the_parser_message(text: str) -> None:
    with pytest.raises(PlanError):
        parse_plan(text)
    _check_text_step(text)


def test_text_action_space_samples_never_raise() -> None:
    env = _fresh()
    assert isinstance(env.action_space, spaces.Text)
    env.action_space.seed(0)
    for _ in range(20):
        _check_text_step(env.action_space.sample())


def test_valid_text_changes_the_cloud() -> None:
    """A real fix, written as text, is executed (the oracle-style restart clears a crash)."""
    env = TextPlanAction(gym.make(DEFAULT, scenario="process-crash-test", start="incident"))
    env.reset(seed=0)
    node = env.unwrapped.ground_truth()[0]["node"]
    _, reward, terminated, _, info = env.step(f"Diagnose(process_crash, {node}); Restart({node})")
    assert info["plan_error"] is None and info["violations"] == []
    assert info["plan"] == f"Diagnose(process_crash, {node}); Restart({node})"
    while not terminated:
        _, reward, terminated, truncated, info = env.step("Wait(10)")
        assert not truncated
    assert reward > 0


# ---- DiscretePlanAction -----------------------------------------------------------------------
PADDING = "Wait(1)"  # what a node-slot action beyond the topology's nodes decodes to


@pytest.mark.parametrize("env_id", [TINY, DEFAULT, "PASE-OpenStack-Test-v4"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_action_masks_are_exact(env_id: str, seed: int) -> None:
    env = DiscretePlanAction(gym.make(env_id, start="incident"))
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        mask = env.action_masks()
        assert isinstance(env.action_space, spaces.Discrete)
        assert mask.shape == (env.action_space.n,) and mask.dtype == np.bool_
        state = env.unwrapped.episode.state
        plans = [env.decode(a) for a in range(env.n_actions)]
        legal_waits = [a for a in np.flatnonzero(mask) if plans[a].steps[0].name == "Wait"]
        assert len(legal_waits) >= 2, "the waits are always legal"
        padding = {a for a, plan in enumerate(plans) if str(plan) == PADDING}
        spare_slots = env.slots - state.n
        assert len(padding) % max(spare_slots, 1) == 0 and bool(padding) == (spare_slots > 0)
        # symbolic exactness: every action's single call, against the transition's checker
        for a, plan in enumerate(plans):
            assert len(plan) == 1
            violations = check_call(state, plan.steps[0])
            if a in padding:
                assert not mask[a]  # padding is masked out (and harmless if taken)
            else:
                assert mask[a] == (not violations), (a, str(plan), violations)
        # behavioural exactness: step copies with masked-in and masked-out actions
        legal = np.flatnonzero(mask)
        illegal = [a for a in np.flatnonzero(~mask) if a not in padding]
        sample = [
            *rng.choice(legal, size=min(6, legal.size), replace=False),
            *rng.choice(illegal, size=min(6, len(illegal)), replace=False),
        ]
        snapshot = pickle.dumps(env)
        for a in sample:
            copy = pickle.loads(snapshot)
            _, _, _, _, info = copy.step(int(a))
            assert info["plan_error"] is None
            assert (info["violations"] == []) == bool(mask[a]), (int(a), info["plan"])
        # move on with a legal action that is not a wait, so the next check sees a new state
        acting = [a for a in legal if plans[a].steps[0].name != "Wait"]
        _, _, terminated, truncated, _ = env.step(int(rng.choice(acting)))
        if terminated or truncated:
            break


@pytest.mark.parametrize(
    "bad", [-1, "n", 1.0, float("inf"), float("nan"), True, None, "3", np.float32(2)]
)
def test_discrete_actions_outside_the_space_are_malformed_plans(bad: object) -> None:
    env = DiscretePlanAction(gym.make(TINY))
    env.reset(seed=0)
    action = env.n_actions if bad == "n" else bad
    with pytest.raises(PlanError, match="action"):
        env.decode(action)  # type: ignore[arg-type]
    tick = env.unwrapped.episode.state.tick
    _, reward, _, _, info = env.step(action)  # type: ignore[arg-type]
    assert info["plan_error"] is not None and "action" in info["plan_error"]
    assert float(reward) <= -MALFORMED_PENALTY
    assert info["plan"] == "" and env.unwrapped.episode.results == []
    assert env.unwrapped.episode.state.tick > tick  # time still passed: a no-op step


def test_text_wrapper_answers_non_text_with_a_malformed_plan() -> None:
    env = TextPlanAction(gym.make(TINY))
    env.reset(seed=0)
    _, reward, _, _, info = env.step(["Restart(x)"])  # type: ignore[arg-type]
    assert info["plan_error"].startswith("expected plan text")
    assert float(reward) <= -MALFORMED_PENALTY


# ---- stable-baselines3 ------------------------------------------------------------------------
def test_make_sb3_env_stack() -> None:
    env = make_sb3_env()
    assert isinstance(env, SB3Observation)
    assert set(env.observation_space.spaces) == set(SB3_PARTS)
    assert all(box.dtype == np.float32 for box in env.observation_space.spaces.values())
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    inner = env.env
    assert isinstance(inner, DiscretePlanAction)
    np.testing.assert_array_equal(env.action_masks(), inner.action_masks())
    with pytest.raises(ValueError, match="edge_index"):
        SB3Observation(gym.make(TINY, obs_parts=("metrics",)), parts=("metrics", "edge_index"))


@pytest.mark.filterwarnings("ignore:Your observation .* has an unconventional shape")
@pytest.mark.parametrize("env_id", [TINY, DEFAULT])
def test_sb3_env_checker_passes(env_id: str) -> None:
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3_checker.check_env(make_sb3_env(env_id))


@pytest.mark.usefixtures("torch_one_thread")
@pytest.mark.filterwarnings("ignore:Your observation .* has an unconventional shape")
def test_ppo_learns_without_error() -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    env = make_sb3_env()
    model = sb3.PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu")
    model.learn(128)
    assert model.num_timesteps == 128
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_discrete_actions_encode_back_to_their_numbers() -> None:
    """``encode`` is ``decode``'s inverse on every allowed action of a tiny-cloud state, and
    ``locate`` names each number's block."""
    from pase_gym.sim.plan import Call
    from pase_gym.wrappers import DiscretePlanAction, make_sb3_env

    env = make_sb3_env("PASE-OpenStack-Tiny-v4")
    env.reset(seed=4)
    plans = env.env
    assert isinstance(plans, DiscretePlanAction)
    allowed = np.flatnonzero(env.action_masks())
    assert allowed.size > 50
    for a in allowed.tolist():
        (call,) = plans.decode(a).steps
        assert plans.encode(call) == a, (a, str(call))
    where = {plans.locate(int(a))[0] for a in allowed}
    assert where == {"node", "group", "wait"}
    assert plans.encode(Call("Restart", ("no-such-node",))) is None
