"""Conformance checks of an env id (or a scenario file on the env): small, named, shipped.

``pase-gym check-env PASE-OpenStack-v4 [--scenario FILE.yaml]`` runs :data:`CHECKS` in
order, in the style of Gymnasium's env checker: each check is a function that raises
:class:`~pase_gym.errors.EnvCheckError` with a message saying what was expected and what was
found. Scenario authors run them on a new file before sending it; the test suite runs them on
every registered id.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from pase_gym.env.core import episode_of
from pase_gym.errors import EnvCheckError, PaseGymError
from pase_gym.sim.oracle import oracle_plan

logger = logging.getLogger(__name__)

Factory = Callable[[], gym.Env[Any, Any]]
WAIT = "Wait(10)"
ROLLOUT_STEPS = 4


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check."""

    name: str
    ok: bool
    message: str = ""


def _digest(frames: list[tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for obs, reward, terminated, truncated, info in frames:
        for key in sorted(obs):
            h.update(key.encode())
            h.update(np.ascontiguousarray(obs[key]).tobytes())
        h.update(repr((float(reward), bool(terminated), bool(truncated))).encode())
        h.update(str(info.get("description", "")).encode())
    return h.hexdigest()


def _rollout(env: gym.Env[Any, Any], seed: int, steps: int = ROLLOUT_STEPS) -> str:
    obs, info = env.reset(seed=seed)
    frames: list[tuple[Any, ...]] = [(obs, 0.0, False, False, info)]
    for _ in range(steps):
        frames.append(env.step(WAIT))
    return _digest(frames)


def check_spaces(make: Factory, seed: int) -> None:
    """The spaces are declared, and reset's and step's observations lie inside them."""
    env = make()
    if not isinstance(env.observation_space, gym.spaces.Space):
        raise EnvCheckError("observation_space must be a gymnasium Space")
    obs, _ = env.reset(seed=seed)
    if not env.observation_space.contains(obs):
        bad = [k for k in obs if not env.observation_space[k].contains(obs[k])]  # type: ignore[index]
        raise EnvCheckError(f"reset's observation is outside observation_space in {bad}")
    obs, *_ = env.step(WAIT)
    if not env.observation_space.contains(obs):
        raise EnvCheckError("step's observation is outside observation_space")
    sample = env.action_space.sample()
    env.step(sample)  # a sampled structured action is always accepted (a plan or a no-op)


def check_reset_contract(make: Factory, seed: int) -> None:
    """``step`` before ``reset`` raises ResetNeeded; ``info`` carries the scene description."""
    env = make()
    try:
        env.step(WAIT)
    except gym.error.ResetNeeded:
        pass
    else:
        raise EnvCheckError("step() before reset() must raise gymnasium.error.ResetNeeded")
    _, info = env.reset(seed=seed)
    if not isinstance(info.get("description"), str) or not info["description"]:
        raise EnvCheckError("reset's info must carry the scene description (info['description'])")


def check_step_contract(make: Factory, seed: int) -> None:
    """``step`` returns (obs, float reward, bool terminated, bool truncated, info)."""
    env = make()
    env.reset(seed=seed)
    result = env.step(WAIT)
    if len(result) != 5:
        raise EnvCheckError(f"step must return 5 values, found {len(result)}")
    _, reward, terminated, truncated, info = result
    if not np.isfinite(float(reward)):
        raise EnvCheckError(f"the reward must be finite, found {reward!r}")
    if not isinstance(terminated, bool) or not isinstance(truncated, bool):
        raise EnvCheckError("terminated and truncated must be bools")
    if not isinstance(info, dict):
        raise EnvCheckError("info must be a dict")


def check_determinism(make: Factory, seed: int) -> None:
    """The same seed gives the same rollout, bit for bit; another seed gives another one."""
    first = _rollout(make(), seed)
    if _rollout(make(), seed) != first:
        raise EnvCheckError(f"two envs reset with seed {seed} diverged on a Wait-only rollout")
    env = make()
    _rollout(env, seed + 1)
    if _rollout(env, seed) != first:
        raise EnvCheckError("resetting a used env with the same seed did not replay the rollout")


def check_pickle(make: Factory, seed: int) -> None:
    """A pickled env continues the same trajectory as the original."""
    env = make()
    env.reset(seed=seed)
    env.step(WAIT)
    clone = pickle.loads(pickle.dumps(env))
    a = _digest([env.step(WAIT) for _ in range(2)])
    b = _digest([clone.step(WAIT) for _ in range(2)])
    if a != b:
        raise EnvCheckError("a pickled copy of the env diverged from the original")


def check_malformed_plan(make: Factory, seed: int) -> None:
    """Malformed plan text is a penalised no-op with the error in ``info['plan_error']``."""
    env = make()
    env.reset(seed=seed)
    _, reward, _, _, info = env.step("Restart(")
    if not info.get("plan_error"):
        raise EnvCheckError("a malformed plan must report its PlanError in info['plan_error']")
    if float(reward) >= 0:
        raise EnvCheckError(f"a malformed plan must be penalised, found reward {reward}")


def check_waiting_does_not_recover(make: Factory, seed: int) -> None:
    """Only waiting never counts as recovery: the episode truncates at its budget."""
    env = make()
    env.reset(seed=seed)
    budget = episode_of(env).scenario.budget
    for _ in range(budget // 10 + 2):
        _, _, terminated, truncated, _ = env.step("Wait(60)")
        if terminated:
            raise EnvCheckError("the episode terminated (recovered) while the agent only waited")
        if truncated:
            return
    raise EnvCheckError(f"waiting past the budget ({budget} s) did not truncate the episode")


def check_oracle_recovers(make: Factory, seed: int) -> None:
    """The ground-truth runbooks recover the episode within its budget (it is solvable)."""
    env = make()
    env.reset(seed=seed)
    episode = episode_of(env)
    handled: set[int] = set()
    for _ in range(episode.scenario.budget // 10 + 2):
        plan = oracle_plan(episode.state, skip=handled)
        handled.update(id(f) for f in episode.state.faults if f.active)
        _, _, terminated, truncated, _ = env.step(plan if plan.steps else WAIT)
        if terminated:
            return
        if truncated:
            break
    raise EnvCheckError("the oracle's runbooks did not recover the episode within the budget")


def check_gymnasium(make: Factory, seed: int) -> None:
    """Gymnasium's own env checker passes (render checks left to the render tests)."""
    import warnings

    from gymnasium.utils.env_checker import check_env

    env = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its style warnings are not failures
        check_env(env.unwrapped, skip_render_check=True)


CHECKS: tuple[Callable[[Factory, int], None], ...] = (
    check_spaces,
    check_reset_contract,
    check_step_contract,
    check_determinism,
    check_pickle,
    check_malformed_plan,
    check_waiting_does_not_recover,
    check_oracle_recovers,
    check_gymnasium,
)
"""Every check, in the order :func:`run_checks` runs them."""


def run_checks(
    env_id: str, *, seed: int = 0, names: tuple[str, ...] | None = None, **kwargs: Any
) -> list[CheckResult]:
    """Run the checks on ``gym.make(env_id, **kwargs)``; one result per check.

    A check that fails (or raises any error from inside the env) is reported, not raised, so
    that one run lists every problem.
    """
    import pase_gym  # noqa: F401  (registers the env ids)

    def make() -> gym.Env[Any, Any]:
        return gym.make(env_id, **kwargs)

    try:  # a bad id is a usage error, raised before any check runs (a bad scenario raises
        make()  # its own ScenarioError)
    except gym.error.Error as exc:
        known = ", ".join(i for i in gym.registry if i.startswith("PASE-"))
        raise EnvCheckError(f"cannot make {env_id!r}: {exc}; expected one of {known}") from None
    results = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        if names is not None and name not in names:
            continue
        try:
            check(make, seed)
        except EnvCheckError as exc:
            results.append(CheckResult(name, False, str(exc)))
        except (PaseGymError, gym.error.Error, AssertionError, ValueError, TypeError) as exc:
            results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
        else:
            results.append(CheckResult(name, True))
    return results
