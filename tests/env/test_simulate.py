"""``env.unwrapped.simulate(plan)``: a dry run that predicts and leaves the episode alone."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pase_env_helpers import WAIT10, assert_frames_equal, continue_rollout

from pase_gym.env import SIM_ENV_IDS
from pase_gym.episode import Prediction
from pase_gym.errors import PlanError
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Call, Plan

IDS = SIM_ENV_IDS  # the replay id needs the data set: tests/env/test_replay.py
SEED = 3


def _twins(env_id: str) -> tuple[gym.Env, gym.Env]:
    a = gym.make(env_id, start="incident")
    b = gym.make(env_id, start="incident")
    a.reset(seed=SEED)
    b.reset(seed=SEED)
    return a, b


@pytest.mark.parametrize("env_id", IDS)
def test_simulate_leaves_the_episode_untouched(env_id: str) -> None:
    dreamer, twin = _twins(env_id)
    base = dreamer.unwrapped
    tick = base.episode.state.tick
    plan = oracle_plan(base.episode.state)
    for candidate in (plan, WAIT10, "Restart(nova-api-1)", Call("Wait", (5,))):
        prediction = base.simulate(candidate)
        assert isinstance(prediction, Prediction)
        assert isinstance(prediction.recovered, bool)
        assert isinstance(prediction.ticks, int) and prediction.ticks > 0
        assert isinstance(prediction.violations, list) and isinstance(prediction.harmed, list)
    assert base.episode.state.tick == tick
    assert base.episode.results == []
    # the real steps that follow are the ones of an env that never dreamt
    assert_frames_equal(
        continue_rollout(dreamer, 1, plan) + continue_rollout(dreamer, 2),
        continue_rollout(twin, 1, plan) + continue_rollout(twin, 2),
    )


@pytest.mark.parametrize("env_id", IDS)
def test_prediction_for_the_oracle_plan_comes_true(env_id: str) -> None:
    env = gym.make(env_id, start="incident")
    env.reset(seed=SEED)
    plan = oracle_plan(env.unwrapped.episode.state)
    prediction = env.unwrapped.simulate(plan)
    assert prediction.recovered
    assert prediction.violations == [] and prediction.harmed == []
    _, reward, terminated, truncated, info = env.step(plan)
    # the plan itself runs exactly as dreamt (same state, same random stream)
    assert info["plan_ticks"] == prediction.ticks
    assert info["violations"] == prediction.violations
    assert info["harmed"] == prediction.harmed
    assert info["cost"] == pytest.approx(prediction.cost)
    steps = 1
    while not (terminated or truncated) and steps < 40:
        _, reward, terminated, truncated, info = env.step(WAIT10)
        steps += 1
    assert terminated and not truncated and reward > 0


@pytest.mark.parametrize("env_id", ["PASE-OpenStack-v4", "PASE-OpenStack-Tiny-v4"])
def test_prediction_of_a_harmful_or_illegal_plan_matches_the_real_step(env_id: str) -> None:
    env = gym.make(env_id, start="incident")
    env.reset(seed=SEED)
    state = env.unwrapped.episode.state
    truth = {t["node"] for t in env.unwrapped.ground_truth()}
    healthy = next(
        n
        for n in (state.name(int(i)) for i in np.flatnonzero(state.topo.is_process & state.active))
        if n not in truth and state.slo_ok_nodes[state.topo.index[n]]
    )
    plan = Plan((Call("KillProcess", (healthy,)), Call("CleanDisk", (healthy,))))
    prediction = env.unwrapped.simulate(plan)
    assert not prediction.recovered
    assert prediction.harmed == [healthy]
    assert prediction.violations  # CleanDisk of a (killed) service
    assert all(v.startswith(f"step 2 CleanDisk({healthy})") for v in prediction.violations)
    _, _, _, _, info = env.step(plan)
    assert info["harmed"] == prediction.harmed
    assert info["violations"] == prediction.violations
    assert info["plan_ticks"] == prediction.ticks


def test_simulate_rejects_malformed_text() -> None:
    env = gym.make("PASE-OpenStack-Tiny-v4", start="incident")
    env.reset(seed=SEED)
    tick = env.unwrapped.episode.state.tick
    with pytest.raises(PlanError):
        env.unwrapped.simulate("Restart(")
    assert env.unwrapped.episode.state.tick == tick
