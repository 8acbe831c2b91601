"""The native vector env: each cloud is the single env with the same seed, bit for bit, and the
whole is what a SyncVectorEnv of them returns, under Gymnasium 1.x's autoreset conventions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import pase_gym  # noqa: F401  (registers the ids)
from pase_gym.env.info import LazyInfo
from pase_gym.env.vector import PaseVectorEnv

ENV_ID = "PASE-OpenStack-Tiny-v4"
N = 3
STEPS = 14
LIMIT = 4  # a short time limit, so that episodes end and autoreset runs


def _actions(space: gym.Space[Any], seed: int) -> list[Any]:
    space.seed(seed)
    return [space.sample() for _ in range(STEPS)]


def _same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype != object:
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_make_vec_builds_the_native_vector_env_by_default() -> None:
    envs = gym.make_vec(ENV_ID, num_envs=2)
    assert isinstance(envs.unwrapped, PaseVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.unwrapped.max_episode_steps == gym.spec(ENV_ID).max_episode_steps
    assert envs.observation_space == gym.vector.utils.batch_space(envs.single_observation_space, 2)
    envs.close()


@pytest.mark.parametrize("seed", [0, 7])
def test_each_cloud_is_the_single_env_with_its_seed(seed: int) -> None:
    envs = gym.make_vec(ENV_ID, num_envs=N, max_episode_steps=LIMIT)
    singles = [gym.make(ENV_ID, max_episode_steps=LIMIT) for _ in range(N)]
    obs, infos = envs.reset(seed=seed)
    done = np.zeros(N, dtype=bool)
    for i, single in enumerate(singles):
        o, info = single.reset(seed=seed + i)
        _same(o, {k: v[i] for k, v in obs.items()}, f"reset[{i}].obs")
        assert infos["description"][i] == info["description"]
    ends = 0
    for t, action in enumerate(_actions(envs.action_space, seed)):
        obs, rewards, terms, truncs, infos = envs.step(action)
        per_env = list(gym.vector.utils.iterate(envs.action_space, action))
        for i, single in enumerate(singles):
            if done[i]:  # NEXT_STEP: this step resets the cloud, reward 0, flags down
                o, info = single.reset()
                r, term, trunc = 0.0, False, False
            else:
                o, r, term, trunc, info = single.step(per_env[i])
            where = f"step {t} cloud {i}"
            _same(o, {k: v[i] for k, v in obs.items()}, where)
            assert (rewards[i], terms[i], truncs[i]) == (r, term, trunc), where
            assert infos["description"][i] == info["description"], where
            assert infos["tick"][i] == info["tick"], where
        done = terms | truncs
        ends += int(done.sum())
    assert ends >= N  # every cloud went through an autoreset


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_it_returns_what_a_sync_vector_env_returns(mode: str) -> None:
    kwargs = {"num_envs": N, "max_episode_steps": LIMIT}
    native = PaseVectorEnv(scenario="tiny-mix-train", autoreset_mode=mode, **kwargs)
    sync = gym.vector.SyncVectorEnv(
        [lambda: gym.make(ENV_ID, max_episode_steps=LIMIT)] * N,
        autoreset_mode=AutoresetMode(mode),
    )
    _same(native.reset(seed=3), sync.reset(seed=3), "reset")
    for t, action in enumerate(_actions(native.action_space, 3)):
        a, b = native.step(action), sync.step(action)
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"step {t} item {k}")
        if mode == "SameStep" and b[2].any() | b[3].any():
            assert "final_obs" in a[4] and "final_info" in a[4]


def test_descriptions_are_written_only_when_read() -> None:
    envs = PaseVectorEnv(N, scenario="tiny-mix-train")
    _, infos = envs.reset(seed=0)
    _, _, _, _, infos = envs.step(envs.action_space.sample())
    assert isinstance(infos, LazyInfo) and infos.pending() == ["description"]
    assert all(infos["_description"])
    assert [type(text) for text in infos["description"]] == [str] * N
    assert infos.pending() == []


def test_disabled_autoreset_needs_an_explicit_reset() -> None:
    envs = PaseVectorEnv(2, max_episode_steps=1, autoreset_mode="Disabled", scenario="default")
    envs.reset(seed=0)
    action = envs.action_space.sample()
    _, _, _, truncs, _ = envs.step(action)
    assert truncs.all()
    with pytest.raises(gym.error.ResetNeeded, match="reset_mask"):
        envs.step(action)
    envs.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(gym.error.ResetNeeded):  # cloud 1 is still over
        envs.step(action)
    envs.reset(options={"reset_mask": np.array([False, True])})
    envs.step(action)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs must be a positive integer"),
        ({"num_envs": True}, "num_envs must be a positive integer"),
        ({"num_envs": 2, "max_episode_steps": 0}, "max_episode_steps"),
        ({"num_envs": 2, "autoreset_mode": "Sometimes"}, "autoreset_mode must be one of"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PaseVectorEnv(scenario="tiny-mix-train", **kwargs)


def test_bad_seeds_and_masks_are_clear_errors() -> None:
    envs = PaseVectorEnv(2, scenario="tiny-mix-train")
    with pytest.raises(ValueError, match="expected 2 seeds"):
        envs.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": [1, 0]})


def test_a_list_of_plans_steps_each_cloud_with_its_own() -> None:
    envs = PaseVectorEnv(2, scenario="tiny-mix-train")
    singles = [gym.make(ENV_ID) for _ in range(2)]
    envs.reset(seed=5)
    for i, single in enumerate(singles):
        single.reset(seed=5 + i)
    plans = ["Wait(10)", "Inspect(nova-api-1)"]
    obs, rewards, _, _, infos = envs.step(plans)
    for i, single in enumerate(singles):
        o, r, _, _, info = single.step(plans[i])
        _same(o, {k: v[i] for k, v in obs.items()}, f"cloud {i}")
        assert rewards[i] == r and infos["plan"][i] == info["plan"] == plans[i]
    with pytest.raises(ValueError, match="expected 2 actions"):
        envs.step(["Wait(10)"])
