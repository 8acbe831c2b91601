"""Helpers shared by the env tests (and imported, verbatim, by the cross-process check).

The module name is unique on purpose: ``tests/`` has no packages, so pytest puts this folder
on ``sys.path`` and the tests import it by its bare name.
"""

from __future__ import annotations

import hashlib
from typing import Any

import gymnasium as gym
import numpy as np

import pase_gym  # registers the ids
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan import Plan, parse_plan

WAIT10 = parse_plan("Wait(10)")
WAIT30 = parse_plan("Wait(30)")
ROLLOUT_STEPS = 4
INFO_KEYS_RESET = frozenset(
    {"description", "tick", "slo_ok", "alarms", "node_names", "slot_names", "probes"}
)
INFO_KEYS_STEP = INFO_KEYS_RESET | {
    "plan",
    "plan_error",
    "violations",
    "harmed",
    "cost",
    "plan_ticks",
    "plan_cut",
}
#: How a fault type could be spelled in text: ``memory_leak``, ``memory leak``, ``memory-leak``.
FAULT_SPELLINGS = tuple(
    sorted({form for f in FAULT_NAMES for form in (f, f.replace("_", " "), f.replace("_", "-"))})
)

Frame = tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]

_ = pase_gym


def rollout(
    env: gym.Env[Any, Any], seed: int, steps: int = ROLLOUT_STEPS, action: Any = WAIT10
) -> list[Frame]:
    """Reset with ``seed`` and step ``action`` ``steps`` times; every frame, reset included."""
    obs, info = env.reset(seed=seed)
    frames: list[Frame] = [(obs, 0.0, False, False, info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append((obs, float(reward), bool(terminated), bool(truncated), info))
    return frames


def continue_rollout(env: gym.Env[Any, Any], steps: int, action: Any = WAIT10) -> list[Frame]:
    """Step an env that is already running ``steps`` more times."""
    frames: list[Frame] = []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append((obs, float(reward), bool(terminated), bool(truncated), info))
    return frames


def digest(frames: list[Frame]) -> str:
    """sha256 of every observation array (dtype, shape, bytes), reward, flag and info value."""
    h = hashlib.sha256()
    for obs, reward, terminated, truncated, info in frames:
        for key in sorted(obs):
            array = np.ascontiguousarray(obs[key])
            h.update(f"{key}:{array.dtype}:{array.shape}".encode())
            h.update(array.tobytes())
        h.update(repr((reward, terminated, truncated)).encode())
        h.update(repr(sorted((k, repr(v)) for k, v in info.items())).encode())
    return h.hexdigest()


def rollout_digest(env_id: str, seed: int, steps: int = ROLLOUT_STEPS) -> str:
    """The digest of a fresh ``gym.make(env_id)`` rolled out with ``Wait(10)`` plans."""
    env = gym.make(env_id)
    try:
        return digest(rollout(env, seed, steps))
    finally:
        env.close()


def assert_frames_equal(a: list[Frame], b: list[Frame]) -> None:
    """Two rollouts are identical: observations bit for bit, rewards, flags and infos."""
    assert len(a) == len(b)
    for i, (fa, fb) in enumerate(zip(a, b, strict=True)):
        obs_a, obs_b = fa[0], fb[0]
        assert obs_a.keys() == obs_b.keys(), f"frame {i}"
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key], err_msg=f"frame {i}: {key}")
            assert obs_a[key].dtype == obs_b[key].dtype
        assert fa[1:4] == fb[1:4], f"frame {i}: reward/terminated/truncated differ"
        assert fa[4] == fb[4], f"frame {i}: info differs"


def text_values(value: Any) -> list[str]:
    """Every string inside an info value (recursing into lists, tuples and dicts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*text_values(k), *text_values(v))]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [s for v in value for s in text_values(v)]
    return [repr(value)]


def as_plan(plan: Plan | str) -> Plan:
    """A :class:`Plan` from text (or the plan itself)."""
    return plan if isinstance(plan, Plan) else parse_plan(plan)
