"""Gymnasium env benchmarks: env steps per second through each interface and wrapper stack.

Run with ``pytest benchmarks/test_bench_env.py --benchmark-only``;
``--benchmark-disable`` runs every benchmarked function once, as a smoke test.

One round is one ``step`` call (of all four sub-envs for the vector envs). Every configuration
but ``oracle`` waits: the raw env, the text wrapper and the vector envs get ``Wait(5)``, the
discrete wrappers their shortest wait action (``Wait(10)``); ``oracle`` submits the oracle's plan
for the faults still active (a probe, ``Inspect``, once none is), the oracle's plan computed
inside the timed call. The env then monitors for its ``monitor_ticks`` (10). An episode that
ends is reset inside the timed call (for the vector envs, by their own autoreset), so the figure
includes the amortised reset cost. ``extra_info["steps_per_second"]`` is env-steps per second:
the number of env-steps per call divided by the median. ``test_env_reset`` times ``reset()``
alone (a new seed each round, as a learner's resets draw).

``sync_vector4`` is Gymnasium's ``SyncVectorEnv`` of four text-wrapped envs, ``native_vector4``
the env's own vector env (``gym.make_vec(id, num_envs=4)``, :mod:`pase_gym.env.vector`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from pase_gym.env.core import episode_of
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import parse_plan
from pase_gym.wrappers import DiscretePlanAction, TextPlanAction, make_sb3_env

ENV_IDS = ("PASE-OpenStack-v4", "PASE-OpenStack-Tiny-v4")
CONFIGS = ("plan", "oracle", "text", "discrete", "sb3", "sync_vector4", "native_vector4")
ROUNDS = {"sync_vector4": 300, "native_vector4": 300}
RESET_ROUNDS = 300
DEFAULT_ROUNDS = 800
WARMUP_ROUNDS = 10
VECTOR_COPIES = 4
SEED = 0
WAIT_TEXT = "Wait(5)"


def _median(benchmark: Any) -> float | None:
    """Median seconds per call, or ``None`` when benchmarking is disabled (smoke mode)."""
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


def _wait_action(env: gym.Env[Any, Any]) -> int:
    """The discrete index of the shortest wait, checked to be legal now."""
    decode = env.get_wrapper_attr("decode")
    masks = env.get_wrapper_attr("action_masks")()
    plans = {str(decode(a)): a for a in range(int(env.action_space.n))}
    action = plans["Wait(10)"]
    assert masks[action], "the wait action is masked out"
    return action


class OraclePlans:
    """The oracle's plan for the env's running episode, made when the step asks for it."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.env = env

    def plan(self) -> Any:
        plan = oracle_plan(episode_of(self.env).state)
        return plan if len(plan) else parse_plan("Inspect(nova-api-1)")


@dataclass
class Stepper:
    """One configuration: the env, the action it steps and how many env-steps one call makes."""

    env: Any
    action: Any
    steps_per_call: int
    plan: str
    episodes: int = 0
    calls: int = 0
    last_info: Any = None

    def __call__(self) -> None:
        action = self.action.plan() if isinstance(self.action, OraclePlans) else self.action
        _, _, terminated, truncated, info = self.env.step(action)
        self.calls += 1
        self.last_info = info
        if self.steps_per_call == 1 and (terminated or truncated):
            self.env.reset()
            self.episodes += 1
        elif self.steps_per_call > 1:
            self.episodes += int(np.sum(terminated | truncated))


def _build(env_id: str, config: str) -> Stepper:
    if config == "plan":
        env = gym.make(env_id)
        env.reset(seed=SEED)
        return Stepper(env, parse_plan(WAIT_TEXT), 1, WAIT_TEXT)
    if config == "oracle":
        env = gym.make(env_id)
        env.reset(seed=SEED)
        return Stepper(env, OraclePlans(env), 1, "oracle")
    if config == "native_vector4":
        native = gym.make_vec(env_id, num_envs=VECTOR_COPIES)
        native.reset(seed=SEED)
        return Stepper(native, [WAIT_TEXT] * VECTOR_COPIES, VECTOR_COPIES, WAIT_TEXT)
    if config == "text":
        env = TextPlanAction(gym.make(env_id))
        env.reset(seed=SEED)
        return Stepper(env, WAIT_TEXT, 1, WAIT_TEXT)
    if config == "discrete":
        env = DiscretePlanAction(gym.make(env_id))
        env.reset(seed=SEED)
        return Stepper(env, _wait_action(env), 1, "Wait(10)")
    if config == "sb3":
        env = make_sb3_env(env_id)
        env.reset(seed=SEED)
        return Stepper(env, _wait_action(env), 1, "Wait(10)")
    factories: list[Callable[[], gym.Env[Any, Any]]] = [
        lambda: TextPlanAction(gym.make(env_id)) for _ in range(VECTOR_COPIES)
    ]
    venv = gym.vector.SyncVectorEnv(factories)
    venv.reset(seed=SEED)
    return Stepper(venv, (WAIT_TEXT,) * VECTOR_COPIES, VECTOR_COPIES, WAIT_TEXT)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_steps_per_second(benchmark: Any, env_id: str, config: str) -> None:
    """Env-steps per second of ``env_id`` through the ``config`` interface."""
    benchmark.group = f"env_step:{env_id}"
    stepper = _build(env_id, config)
    benchmark.pedantic(
        stepper, rounds=ROUNDS.get(config, DEFAULT_ROUNDS), warmup_rounds=WARMUP_ROUNDS
    )
    # Guard against measuring the wrong thing: the plan parsed and ran, without violations.
    info = stepper.last_info
    if config.endswith("vector4"):
        assert all(e is None for e in info["plan_error"]), info["plan_error"]
        assert list(info["plan"]) == [stepper.plan] * VECTOR_COPIES
    elif config == "oracle":
        assert info["plan_error"] is None and info["violations"] == [], info["violations"]
        # the oracle's plans end episodes (one call, in smoke mode, may not)
        assert stepper.episodes > 0 or _median(benchmark) is None
    else:
        assert info["plan_error"] is None and info["violations"] == []
        assert info["plan"] == stepper.plan
    stepper.env.close()
    benchmark.extra_info["env_id"] = env_id
    benchmark.extra_info["plan"] = stepper.plan
    benchmark.extra_info["env_steps_per_call"] = stepper.steps_per_call
    benchmark.extra_info["episodes_ended"] = stepper.episodes
    median = _median(benchmark)
    if median is not None:
        benchmark.extra_info["steps_per_second"] = round(stepper.steps_per_call / median, 1)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_reset(benchmark: Any, env_id: str) -> None:
    """``env.reset()`` of the raw env (its default ``start="normal"``: build and calibrate the
    cloud, schedule the faults, 10 ticks of warm-up, the first observation)."""
    benchmark.group = f"env_reset:{env_id}"
    env = gym.make(env_id)
    env.reset(seed=SEED)
    seeds = iter(range(1, 10**6))
    obs, info = benchmark.pedantic(
        lambda: env.reset(seed=next(seeds)), rounds=RESET_ROUNDS, warmup_rounds=WARMUP_ROUNDS
    )
    assert obs["node_mask"].any() and info["tick"] == 10  # the warm-up ran
    env.close()
    benchmark.extra_info["env_id"] = env_id
    median = _median(benchmark)
    if median is not None:
        benchmark.extra_info["resets_per_second"] = round(1.0 / median, 1)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_action_masks(benchmark: Any, env_id: str) -> None:
    """``DiscretePlanAction.action_masks()`` after the first step (what sb3-contrib's
    MaskablePPO asks before every step)."""
    benchmark.group = f"action_masks:{env_id}"
    env = DiscretePlanAction(gym.make(env_id))
    env.reset(seed=SEED)
    env.step(_wait_action(env))
    masks = benchmark.pedantic(
        env.get_wrapper_attr("action_masks"), rounds=DEFAULT_ROUNDS, warmup_rounds=WARMUP_ROUNDS
    )
    assert masks.dtype == np.bool_ and masks.any() and not masks.all()
    env.close()
    benchmark.extra_info["env_id"] = env_id
    benchmark.extra_info["actions"] = int(masks.size)
