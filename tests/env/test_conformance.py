"""Gymnasium conformance of every registered id: determinism (in process, across processes,
in vector envs), rendering, pickling, spaces, the reset contract, episode ends and rewards."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from pase_env_helpers import (
    ROLLOUT_STEPS,
    WAIT10,
    WAIT30,
    assert_frames_equal,
    continue_rollout,
    digest,
    rollout,
    rollout_digest,
)

from pase_gym.env import SIM_ENV_IDS
from pase_gym.env.core import MALFORMED_PENALTY, TIME_PENALTY
from pase_gym.errors import PlanError
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Call, Plan, parse_plan
from pase_gym.sim.roles import ROLES
from pase_gym.sim.transition import check_call, healthy_nodes
from pase_gym.wrappers import TextPlanAction

IDS = SIM_ENV_IDS  # the replay id needs the data set: tests/env/test_replay.py
SEED = 7
HERE = Path(__file__).resolve().parent


# ---- determinism ------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_rollout_in_process(env_id: str) -> None:
    a = rollout(gym.make(env_id), SEED)
    b = rollout(gym.make(env_id), SEED)
    assert_frames_equal(a, b)
    # the same env object, reset again with the seed, replays it too
    env = gym.make(env_id)
    rollout(env, SEED + 100)
    assert_frames_equal(a, rollout(env, SEED))
    # and the fingerprint is sensitive: another seed gives another rollout
    assert digest(a) != digest(rollout(gym.make(env_id), SEED + 1))


_CROSS_PROCESS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pase_env_helpers import rollout_digest
ids, seed = json.loads(sys.argv[2]), int(sys.argv[3])
print(json.dumps({i: rollout_digest(i, seed) for i in ids}))
"""


@pytest.fixture(scope="module")
def other_process_digests() -> dict[str, str]:
    """Rollout digests of every id from a fresh interpreter with another hash seed."""
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    out = subprocess.run(
        [sys.executable, "-c", _CROSS_PROCESS, str(HERE), json.dumps(list(IDS)), str(SEED)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    digests: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return digests


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_rollout_across_processes(
    env_id: str, other_process_digests: dict[str, str]
) -> None:
    assert other_process_digests[env_id] == rollout_digest(env_id, SEED)


def _text_env(env_id: str) -> gym.Env[Any, Any]:
    return TextPlanAction(gym.make(env_id))


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
@pytest.mark.parametrize("env_id", IDS)
def test_vector_envs_match_single_env_rollouts(env_id: str, vector_cls: type) -> None:
    """gymnasium 1.x seeds sub-env ``i`` of ``reset(seed=s)`` with ``s + i``."""
    copies = 2
    venv = vector_cls([lambda: _text_env(env_id) for _ in range(copies)])
    try:
        obs, info = venv.reset(seed=SEED)
        rows = [(obs, None, info)]
        for _ in range(ROLLOUT_STEPS):
            obs, reward, terminated, truncated, info = venv.step(("Wait(10)",) * copies)
            assert not terminated.any() and not truncated.any()
            rows.append((obs, reward, info))
    finally:
        venv.close()
    for i in range(copies):
        single = rollout(_text_env(env_id), SEED + i, action="Wait(10)")
        for k, ((v_obs, v_reward, v_info), frame) in enumerate(zip(rows, single, strict=True)):
            for key, value in frame[0].items():
                np.testing.assert_array_equal(v_obs[key][i], value, err_msg=f"{k}: {key}")
            if v_reward is not None:
                assert v_reward[i] == frame[1]
            assert v_info["description"][i] == frame[4]["description"]
            assert v_info["tick"][i] == frame[4]["tick"]


# ---- rendering --------------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_render_ansi_shows_tick_and_slo_status(env_id: str) -> None:
    env = gym.make(env_id, render_mode="ansi", start="incident")
    _, info = env.reset(seed=SEED)
    text = env.render()
    assert isinstance(text, str)
    assert f"t={info['tick']}s" in text
    assert ("SLOs met" in text) == info["slo_ok"]
    assert ("SLOs VIOLATED" in text) == (not info["slo_ok"])
    _, _, _, _, info = env.step(WAIT10)
    text = env.render()
    assert f"t={info['tick']}s" in text
    assert "last plan: Wait(10)" in text


@pytest.mark.parametrize("env_id", IDS)
def test_render_rgb_array_is_a_uint8_picture(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=SEED)
    frame = env.render()
    assert isinstance(frame, np.ndarray)
    assert frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] >= 16 and frame.shape[1] >= 16
    assert frame.any(), "an all-black picture"


def test_render_rgb_array_changes_with_health() -> None:
    normal = gym.make("PASE-OpenStack-v4", render_mode="rgb_array")
    _, info = normal.reset(seed=SEED)
    assert info["slo_ok"]
    incident = gym.make("PASE-OpenStack-v4", render_mode="rgb_array", start="incident")
    _, info = incident.reset(seed=SEED)
    assert not info["slo_ok"]
    healthy, sick = normal.render(), incident.render()
    assert healthy.shape == sick.shape
    assert not np.array_equal(healthy, sick)


# ---- pickling, spaces, the reset contract -----------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
def test_pickled_env_continues_the_same_trajectory(env_id: str) -> None:
    env = gym.make(env_id, start="incident")
    rollout(env, SEED, steps=2)
    clone = pickle.loads(pickle.dumps(env))
    # a plan that acts, then waits: both copies must agree on everything
    plan = oracle_plan(env.unwrapped.episode.state)
    original = continue_rollout(env, 1, plan) + continue_rollout(env, 3)
    copied = continue_rollout(clone, 1, plan) + continue_rollout(clone, 3)
    assert_frames_equal(original, copied)
    assert env.unwrapped.ground_truth() == clone.unwrapped.ground_truth()


@pytest.mark.parametrize("env_id", IDS)
def test_observations_are_inside_the_observation_space(env_id: str) -> None:
    for start in ("normal", "incident"):
        env = gym.make(env_id, start=start)
        for frame in rollout(env, SEED, steps=3):
            assert env.observation_space.contains(frame[0])
        plan = oracle_plan(env.unwrapped.episode.state)
        obs, *_ = env.step(plan)
        assert env.observation_space.contains(obs)


def test_random_structured_actions_never_raise() -> None:
    """Samples of the raw Dict/Sequence action space either run or are penalised no-ops."""
    env = gym.make("PASE-OpenStack-Train-v4", start="incident")  # padded node slots
    env.reset(seed=SEED)
    env.action_space.seed(SEED)
    errors, steps = 0, 200
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward)
        if info["plan_error"] is not None:
            errors += 1
            assert reward <= -MALFORMED_PENALTY
        if terminated or truncated:
            env.reset()
    assert 0 < errors < steps  # padding slots are malformed, the rest runs


@pytest.mark.parametrize("env_id", IDS)
def test_step_before_reset_raises_reset_needed(env_id: str) -> None:
    base = gym.make(env_id).unwrapped
    with pytest.raises(gym.error.ResetNeeded):
        base.step(WAIT10)
    for method, args in (
        (base.simulate, (WAIT10,)),
        (base.ground_truth, ()),
        (base.node_names, ()),
    ):
        with pytest.raises(gym.error.ResetNeeded):
            method(*args)


# ---- episode ends -----------------------------------------------------------------------------
@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_plan_recovers_and_terminates(env_id: str, seed: int) -> None:
    env = gym.make(env_id, start="incident")
    _, info = env.reset(seed=seed)
    assert not info["slo_ok"], "start='incident' hands over with the SLOs violated"
    plan = oracle_plan(env.unwrapped.episode.state)
    assert isinstance(plan, Plan) and len(plan) > 0
    obs, reward, terminated, truncated, info = env.step(plan)
    assert info["violations"] == [] and info["harmed"] == []
    steps = 1
    while not (terminated or truncated) and steps < 40:
        obs, reward, terminated, truncated, info = env.step(WAIT10)
        steps += 1
    assert terminated and not truncated
    assert reward > 0
    assert info["slo_ok"]
    assert info["tick"] < env.unwrapped.episode.scenario.budget
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", IDS)
def test_only_waiting_truncates_at_the_budget(env_id: str) -> None:
    env = gym.make(env_id, start="incident")
    _, info = env.reset(seed=SEED)
    start = info["tick"]
    budget = env.unwrapped.episode.scenario.budget
    rewards = []
    terminated = truncated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(WAIT30)
        rewards.append(reward)
        assert len(rewards) < env.spec.max_episode_steps, "the budget should end it first"
        assert truncated == (info["tick"] >= budget)
    assert truncated and not terminated
    assert all(r < 0 for r in rewards)
    # waiting costs nothing but time, and the incident stayed open all along
    assert sum(rewards) == pytest.approx(-TIME_PENALTY * (info["tick"] - start))


def test_max_episode_steps_truncates() -> None:
    env = gym.make("PASE-OpenStack-Tiny-v4", max_episode_steps=3, start="incident")
    env.reset(seed=SEED)
    flags = [env.step(WAIT10)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


# ---- rewards ----------------------------------------------------------------------------------
def _healthy_scalable_group(env: gym.Env[Any, Any]) -> tuple[str, int]:
    """The scalable non-compute group with the most healthy active members, and its size."""
    state = env.unwrapped.episode.state
    topo = state.topo
    healthy = healthy_nodes(state)
    best: tuple[int, str, int] = (0, "", 0)
    for gid, group in enumerate(topo.groups):
        members = topo.group_members[gid]
        active = members[state.active[members]]
        if group != "compute" and ROLES[group].scalable:
            best = max(best, (int(healthy[active].sum()), group, int(active.size)))
    assert best[0] > 0, "no scalable group has a healthy member"
    return best[1], best[2]


def _healthy_processes(env: gym.Env[Any, Any], count: int) -> list[str]:
    state = env.unwrapped.episode.state
    healthy = healthy_nodes(state)
    names = []
    for node in np.flatnonzero(healthy & state.topo.is_process):
        name = state.name(int(node))
        if not check_call(state, Call("Restart", (name,))):
            names.append(name)
        if len(names) == count:
            return names
    raise AssertionError("not enough healthy processes")


def _seed_with_healthy_nodes(env_id: str) -> int:
    """The first seed whose incident leaves healthy processes around (some faults, such as a
    partition of the tiny cloud's only controller, leave nearly nothing healthy to harm)."""
    for seed in range(20):
        env = gym.make(env_id, start="incident")
        env.reset(seed=seed)
        state = env.unwrapped.episode.state
        if int((healthy_nodes(state) & state.topo.is_process).sum()) >= 10:
            return seed
    raise AssertionError("every incident leaves fewer than 10 healthy processes")


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("kind", ["scale_in_to_zero", "restart_healthy"])
def test_destructive_plan_harms_and_scores_below_waiting(env_id: str, kind: str) -> None:
    seed = _seed_with_healthy_nodes(env_id)
    waiting = gym.make(env_id, start="incident")
    acting = gym.make(env_id, start="incident")
    waiting.reset(seed=seed)
    acting.reset(seed=seed)
    if kind == "scale_in_to_zero":
        group, size = _healthy_scalable_group(acting)
        plan = Plan((Call("ScaleIn", (group, size)),))
    else:
        plan = Plan(tuple(Call("Restart", (n,)) for n in _healthy_processes(acting, 2)))
    _, wait_reward, *_ = waiting.step(Plan((Call("Wait", (10,)),)))
    _, reward, _, _, info = acting.step(plan)
    assert info["violations"] == []
    assert info["harmed"], f"{plan} harmed nobody"
    assert reward < wait_reward
    if kind == "restart_healthy":
        assert set(info["harmed"]) == {str(c.args[0]) for c in plan.steps}
    else:
        state = acting.unwrapped.episode.state
        topo = state.topo
        assert not state.active[topo.group_members[topo.group_index[group]]].any()


@pytest.mark.parametrize("env_id", IDS)
def test_malformed_text_is_a_penalised_no_op(env_id: str) -> None:
    text = "Restart(nova-api-1"
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    bad = gym.make(env_id, start="incident")
    noop = gym.make(env_id, start="incident")
    _, info0 = bad.reset(seed=SEED)
    noop.reset(seed=SEED)
    obs, reward, terminated, truncated, info = bad.step(text)
    obs_noop, reward_noop, *_ = noop.step("")  # an empty plan: nothing runs, time passes
    assert info["plan_error"] == str(caught.value)
    assert info["plan"] == ""
    assert "violations" not in info and "cost" not in info
    elapsed = info["tick"] - info0["tick"]
    assert elapsed == bad.unwrapped.monitor_ticks
    assert reward == pytest.approx(-MALFORMED_PENALTY - TIME_PENALTY * elapsed)
    assert reward == pytest.approx(reward_noop - MALFORMED_PENALTY)
    assert not terminated and not truncated
    for key in obs:
        np.testing.assert_array_equal(obs[key], obs_noop[key])


def test_non_text_action_through_text_wrapper_is_a_plan_error() -> None:
    env = TextPlanAction(gym.make("PASE-OpenStack-Tiny-v4"))
    env.reset(seed=SEED)
    _, reward, _, _, info = env.step(12345)
    assert info["plan_error"] is not None
    assert reward <= -MALFORMED_PENALTY
