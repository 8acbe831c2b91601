"""The registered ids: generated from ENV_TABLE, each one makes, passes the checker, round-trips
through its spec; the constructor's keyword arguments work and bad ones fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import gymnasium as gym
import pytest
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils.env_checker import check_env

import pase_gym
from pase_gym.env import ENTRY_POINT, ENV_TABLE, SIM_ENV_IDS, register_envs
from pase_gym.env.core import PaseOpenStackEnv
from pase_gym.errors import ScenarioError
from pase_gym.scenarios import list_scenarios
from pase_gym.sim.plan import parse_plan

IDS = pase_gym.ENV_IDS


def test_ids_are_generated_from_the_table() -> None:
    assert tuple(v.id for v in ENV_TABLE) == IDS
    assert len(set(IDS)) == len(IDS)
    assert all(i.startswith("PASE-") and i.rsplit("-v", 1)[1].isdigit() for i in IDS)
    registered = sorted(k for k in gym.registry if k.startswith("PASE-"))
    assert registered == sorted(IDS), "an id is registered that ENV_TABLE does not list"
    for variant in ENV_TABLE:
        spec = gym.spec(variant.id)
        assert spec.entry_point == variant.entry_point
        assert spec.kwargs == variant.kwargs
        assert spec.max_episode_steps == variant.max_episode_steps
        assert variant.doc, f"{variant.id} has no doc line"


def test_register_envs_is_idempotent_in_process() -> None:
    before = {i: gym.spec(i) for i in IDS}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        register_envs()
        register_envs()
    assert [str(w.message) for w in caught] == []
    assert all(gym.spec(i) is before[i] for i in IDS), "register_envs() replaced a spec"


# A fresh interpreter imports pase_gym, forgets every pase_gym module and imports it again:
# the second import re-runs registration against a registry that already holds the ids.
_REIMPORT = """
import json, sys, warnings
import gymnasium as gym
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import pase_gym
    first = {i: gym.spec(i) for i in pase_gym.ENV_IDS}
    for name in [m for m in sys.modules if m == "pase_gym" or m.startswith("pase_gym.")]:
        del sys.modules[name]
    import pase_gym
    same = all(gym.spec(i) is first[i] for i in pase_gym.ENV_IDS)
    ids = sorted(k for k in gym.registry if k.startswith("PASE-"))
print(json.dumps({"warnings": [str(w.message) for w in caught], "ids": ids, "same": same}))
"""


def test_reimport_does_not_reregister() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _REIMPORT], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["warnings"] == []
    assert result["ids"] == sorted(IDS)
    assert result["same"], "a re-import replaced registered specs"


def test_every_id_but_the_replay_one_runs_the_simulator_env() -> None:
    assert set(SIM_ENV_IDS) == {v.id for v in ENV_TABLE if v.entry_point == ENTRY_POINT}
    assert set(IDS) - set(SIM_ENV_IDS) == {"PASE-OpenStack-Replay-v4"}


# the replay id needs the data set: its checks are in tests/env/test_replay.py
@pytest.mark.parametrize("env_id", SIM_ENV_IDS)
def test_id_makes_and_passes_the_gymnasium_checker_without_warnings(env_id: str) -> None:
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, PaseOpenStackEnv)
    assert env.spec is not None and env.spec.id == env_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    env.close()


@pytest.mark.parametrize("render_mode", ["ansi", "rgb_array"])
def test_checker_passes_with_each_render_mode(render_mode: str) -> None:
    env = gym.make("PASE-OpenStack-Tiny-v4", render_mode=render_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


@pytest.mark.parametrize("env_id", SIM_ENV_IDS)
def test_spec_round_trips_through_json(env_id: str) -> None:
    spec = gym.spec(env_id)
    text = spec.to_json()
    again = EnvSpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    env = gym.make(again)
    assert env.spec is not None and env.spec.id == env_id
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


# ---- keyword arguments ----------------------------------------------------------------------
def test_scenario_kwarg_picks_the_scenario() -> None:
    env = gym.make("PASE-OpenStack-v4", scenario="memory-leak-test", start="incident")
    assert [s.name for s in env.unwrapped.specs] == ["memory-leak-test"]
    for seed in range(3):
        env.reset(seed=seed)
        assert {t["fault_type"] for t in env.unwrapped.ground_truth()} == {"memory_leak"}


def test_suite_kwarg_draws_from_the_split() -> None:
    env = gym.make("PASE-OpenStack-Test-v4", suite="unseen", start="incident")
    assert sorted(s.name for s in env.unwrapped.specs) == list_scenarios("unseen")
    seen = set()
    for seed in range(8):
        env.reset(seed=seed)
        seen |= {t["fault_type"] for t in env.unwrapped.ground_truth()}
    assert seen == {"certificate_expiry", "cpu_memory_deadlock"}


def test_suite_kwarg_replaces_the_registered_scenario_when_that_is_cleared() -> None:
    env = gym.make("PASE-OpenStack-v4", scenario=None, suite="unseen")
    assert sorted(s.name for s in env.unwrapped.specs) == list_scenarios("unseen")


def test_suite_kwarg_accepts_a_list_of_names() -> None:
    names = ["process-crash-train", "disk-full-train"]
    env = gym.make("PASE-OpenStack-Train-v4", suite=names)
    assert [s.name for s in env.unwrapped.specs] == names


def test_nodes_kwarg_overrides_the_cloud_size() -> None:
    big = gym.make("PASE-OpenStack-v4", scenario="process-crash-test")
    small = gym.make("PASE-OpenStack-v4", scenario="process-crash-test", nodes="tiny")
    n_big = big.observation_space["metrics"].shape[0]
    n_small = small.observation_space["metrics"].shape[0]
    assert n_small < 60 < n_big
    obs, _ = small.reset(seed=0)
    assert small.observation_space.contains(obs)
    assert len(small.unwrapped.node_names()) == int(obs["node_mask"].sum())
    assert len(small.unwrapped.node_names()) < 40


def test_nodes_override_fails_at_make_or_every_reset_works() -> None:
    try:
        env = gym.make("PASE-OpenStack-v4", nodes="tiny")
    except ScenarioError:
        return  # rejected up front: fine
    for seed in range(40):
        env.reset(seed=seed)


def test_obs_parts_kwarg_selects_the_observation_keys() -> None:
    env = gym.make("PASE-OpenStack-Tiny-v4", obs_parts=("metrics", "events"))
    assert set(env.observation_space.spaces) == {"metrics", "events"}
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"metrics", "events"}
    obs, *_ = env.step(parse_plan("Wait(10)"))
    assert set(obs) == {"metrics", "events"}
    assert env.observation_space.contains(obs)


def test_window_kwarg_sets_the_window_length() -> None:
    env = gym.make("PASE-OpenStack-Tiny-v4", window=7)
    assert env.observation_space["window"].shape[0] == 7


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"obs_parts": ("metrics", "bogus_part")}, ValueError, "bogus_part"),
        ({"obs_parts": ()}, ValueError, "obs_parts"),
        ({"scenario": "no-such-scenario"}, ScenarioError, "no-such-scenario"),
        ({"suite": "test"}, ValueError, "either scenario or suite"),
        ({"scenario": None, "suite": "bogus-split"}, ScenarioError, "bogus-split"),
        ({"scenario": None, "suite": []}, ScenarioError, "at least one scenario"),
        ({"start": "later"}, ValueError, "later"),
        ({"nodes": 3}, ScenarioError, "nodes"),
        ({"nodes": "huge"}, ScenarioError, "huge"),
        ({"window": 0}, ValueError, "window"),
    ],
)
def test_bad_kwargs_raise_clear_errors(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        gym.make("PASE-OpenStack-Tiny-v4", **kwargs)


@pytest.mark.filterwarnings("ignore:.*render_mode")  # gymnasium's own warning, before ours
def test_bad_render_mode_raises_a_clear_error() -> None:
    with pytest.raises(ValueError, match="rainbow"):
        gym.make("PASE-OpenStack-Tiny-v4", render_mode="rainbow")
    with pytest.raises(ValueError, match="'human'"):
        PaseOpenStackEnv(scenario="tiny-mix-train", render_mode="human")
