"""The scene description is written when first read, and reads the same whenever that is."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the ids)
from pase_gym.env.info import Lazy, LazyInfo
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import parse_plan


def _plans(env: gym.Env[Any, Any], i: int) -> Any:
    state = env.unwrapped.current_episode().state  # type: ignore[attr-defined]
    if i % 3 == 2:
        return oracle_plan(state)
    return parse_plan(("Wait(10)", "Inspect(nova-api-1); Trace(boot)")[i % 2])


def _run(read_at_once: bool, seed: int) -> list[str]:
    env = gym.make("PASE-OpenStack-Train-v4")
    _, info = env.reset(seed=seed)
    infos = [info]
    texts = [info["description"]] if read_at_once else []
    for i in range(12):
        _, _, terminated, truncated, info = env.step(_plans(env, i))
        infos.append(info)
        if read_at_once:
            texts.append(info["description"])
        if terminated or truncated:
            _, info = env.reset()
            infos.append(info)
            if read_at_once:
                texts.append(info["description"])
    if not read_at_once:  # every description read only now, newest first
        texts = [info["description"] for info in reversed(infos)][::-1]
    return texts


@pytest.mark.parametrize("seed", [0, 4])
def test_a_description_read_late_is_the_one_read_at_once(seed: int) -> None:
    at_once, late = _run(True, seed), _run(False, seed)
    assert len(at_once) == len(late) > 12
    assert at_once == late
    assert any("Alarms on" in text for text in late)  # the runs reached an incident


def test_unread_descriptions_are_never_written() -> None:
    env = gym.make("PASE-OpenStack-v4")
    _, info = env.reset(seed=1)
    for _ in range(3):
        _, _, _, _, info = env.step(parse_plan("Wait(10)"))
    assert isinstance(info, LazyInfo) and info.pending() == ["description"]
    assert isinstance(info["description"], str) and info.pending() == []


def _fresh() -> LazyInfo:
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        assert len(calls) == 1, "computed twice"
        return "text"

    return LazyInfo({"description": Lazy(compute), "tick": 3})


@pytest.mark.parametrize(
    "read",
    [
        lambda i: i["description"],
        lambda i: i.get("description"),
        lambda i: dict(i)["description"],
        lambda i: {**i}["description"],
        lambda i: dict(i.items())["description"],
        lambda i: next(iter(i.values())),
        lambda i: i.copy()["description"],
        lambda i: copy.deepcopy(i)["description"],
        lambda i: copy.copy(i)["description"],
        lambda i: pickle.loads(pickle.dumps(i))["description"],
        lambda i: json.loads(json.dumps(i))["description"],
        lambda i: ({} | i)["description"],
        lambda i: (i | {})["description"],
        lambda i: i.pop("description"),
        lambda i: i.setdefault("description", "other"),
        lambda i: "'text'" in repr(i) and "text",
    ],
)
def test_every_way_into_the_dict_gives_the_value_never_the_placeholder(read: Any) -> None:
    info = _fresh()
    assert read(info) == "text"


def test_a_lazy_info_equals_the_plain_dict_and_compares_computed() -> None:
    assert _fresh() == {"description": "text", "tick": 3}
    assert _fresh() == _fresh()
    assert _fresh() != {"description": "other", "tick": 3}
    info = _fresh()
    assert info.get("absent", 7) == 7 and "description" in info and len(info) == 2
    info["description"] = "set by a wrapper"
    assert info["description"] == "set by a wrapper" and info.pending() == []
    assert not any(isinstance(v, Lazy) for v in _fresh().resolve().values())


def test_a_vector_env_hands_out_the_description() -> None:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("PASE-OpenStack-Tiny-v4")] * 2)
    _, infos = envs.reset(seed=0)
    assert all(isinstance(text, str) and text.startswith("t=") for text in infos["description"])
    envs.close()
    assert np.all(infos["_description"])


def test_what_the_sandbox_is_sent_is_plain_data() -> None:
    """The sandbox pickles ``info`` to its agent: the pickle is the plain dict of computed
    values, with no pase-gym object in it (a lazy entry's function holds the observation and,
    through its log lines, the state: that must never cross)."""
    env = gym.make("PASE-OpenStack-Test-v4")
    env.reset(seed=0)
    for _ in range(3):  # gymnasium's passive checker reads the first two steps' infos whole
        _, _, _, _, info = env.step(parse_plan("Wait(10)"))
    assert info.pending() == ["description"]
    data = pickle.dumps(info)
    assert b"pase_gym" not in data and b"Lazy" not in data
    sent = pickle.loads(data)
    assert type(sent) is dict and isinstance(sent["description"], str)
    assert sent == info
