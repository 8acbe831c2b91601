"""The native vector env: ``gym.make_vec("PASE-OpenStack-v4", num_envs=N)``.

:class:`PaseVectorEnv` runs ``N`` clouds behind one :class:`gymnasium.vector.VectorEnv`,
with Gymnasium 1.x's autoreset conventions (``NEXT_STEP`` by default, ``SAME_STEP`` and
``DISABLED`` on request) and the registered time limit. Every sub-env is the single env
seeded as :class:`gymnasium.vector.SyncVectorEnv` seeds it (``seed + i``), step for step and
bit for bit (``tests/env/test_vector.py``).

What it does that a ``SyncVectorEnv`` of the same envs does not: the observations are written
into one set of batched arrays allocated once, and the scene descriptions stay unwritten until
``infos["description"]`` is read (a ``SyncVectorEnv`` reads every key of every sub-env's info,
so it writes all of them). The clouds are still simulated one after another: stepping them in
one set of state arrays is the next step of the fast core.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, create_empty_array, iterate

from .core import PaseOpenStackEnv
from .info import Lazy, LazyInfo

LAZY_KEYS = ("description",)
"""Info keys whose batched array is built only when read."""


class PaseVectorEnv(VectorEnv[Any, Any, Any]):
    """``num_envs`` pase-gym clouds as one vector env (see the module docstring).

    Args:
        num_envs: how many clouds.
        max_episode_steps: truncate an episode after this many steps (what the registered
            ``TimeLimit`` does for the single env); ``None`` for no limit.
        autoreset_mode: ``NEXT_STEP`` (default), ``SAME_STEP`` or ``DISABLED``.
        **kwargs: the single env's arguments (``scenario``, ``suite``, ``nodes``, ...).
    """

    metadata = {  # noqa: RUF012
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": PaseOpenStackEnv.metadata["render_modes"],
    }

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, found {num_envs!r}")
        if max_episode_steps is not None and (
            not isinstance(max_episode_steps, int) or max_episode_steps < 1
        ):
            raise ValueError(
                f"max_episode_steps must be a positive integer or None, found {max_episode_steps!r}"
            )
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            modes = [m.value for m in AutoresetMode]
            raise ValueError(
                f"autoreset_mode must be one of {modes}, found {autoreset_mode!r}"
            ) from None
        self.envs = [PaseOpenStackEnv(**kwargs) for _ in range(num_envs)]
        first = self.envs[0]
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.render_mode = first.render_mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        # a Dict space's batch is a dict of arrays
        batch = create_empty_array(self.single_observation_space, num_envs, fn=np.zeros)
        assert isinstance(batch, dict)
        self._obs: dict[str, np.ndarray] = batch
        self._rewards = np.zeros(num_envs, dtype=np.float64)
        self._terminations = np.zeros(num_envs, dtype=np.bool_)
        self._truncations = np.zeros(num_envs, dtype=np.bool_)
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)
        self._elapsed = np.zeros(num_envs, dtype=np.int64)

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every cloud (or those of ``options["reset_mask"]``); an int ``seed`` seeds
        cloud ``i`` with ``seed + i``, as ``SyncVectorEnv`` does."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        elif isinstance(seed, Sequence):
            seeds = list(seed)
        else:
            raise ValueError(f"seed must be an int, a list of ints or None, found {seed!r}")
        if len(seeds) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} seeds (one per cloud), found {len(seeds)}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), "
                    f"found {mask.dtype} {mask.shape}"
                )
        infos: list[tuple[int, dict[str, Any]]] = []
        for i, env in enumerate(self.envs):
            if mask is not None and not mask[i]:
                continue
            obs, info = env.reset(seed=seeds[i], options=options or None)
            self._write(i, obs)
            self._elapsed[i] = 0
            self._autoreset[i] = False
            self._terminations[i] = self._truncations[i] = False
            infos.append((i, info))
        return self._batched_obs(), self._batched_infos(infos)

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every cloud (resetting, instead, those whose episode ended at the last step
        under ``NEXT_STEP``).

        ``actions`` is a batch of :attr:`action_space`, or a list or tuple of one action per
        cloud in any form the single env takes (plan text, a ``Plan``, a structured action).
        """
        if isinstance(actions, list | tuple):  # one action per cloud, in any form it takes
            if len(actions) != self.num_envs:
                raise ValueError(
                    f"expected {self.num_envs} actions (one per cloud), found {len(actions)}"
                )
            per_env = list(actions)
        else:
            per_env = list(iterate(self.action_space, actions))
        infos: list[tuple[int, dict[str, Any]]] = []
        finals: list[tuple[int, dict[str, Any]]] = []
        for i, (env, action) in enumerate(zip(self.envs, per_env, strict=True)):
            if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset[i]:
                obs, info = env.reset()
                self._elapsed[i] = 0
                self._rewards[i] = 0.0
                self._terminations[i] = self._truncations[i] = False
            else:
                if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset[i]:
                    raise gym.error.ResetNeeded(
                        f"cloud {i}'s episode has ended: reset it (options={{'reset_mask': ...}}) "
                        "before stepping it again (autoreset_mode DISABLED)"
                    )
                obs, reward, terminated, truncated, info = env.step(action)
                self._elapsed[i] += 1
                if (
                    self.max_episode_steps is not None
                    and self._elapsed[i] >= self.max_episode_steps
                ):
                    truncated = True
                self._rewards[i] = reward
                self._terminations[i] = terminated
                self._truncations[i] = truncated
                if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
                    finals.append((i, {"final_obs": obs, "final_info": info}))
                    obs, info = env.reset()
                    self._elapsed[i] = 0
            self._write(i, obs)
            infos.append((i, info))
        self._autoreset = self._terminations | self._truncations
        batched = self._batched_infos(infos)
        for i, final in finals:
            batched = self._add_info(batched, final, i)
        return (
            self._batched_obs(),
            self._rewards.copy(),
            self._terminations.copy(),
            self._truncations.copy(),
            batched,
        )

    def render(self) -> tuple[Any, ...] | None:
        """Every cloud's render (``None`` without a ``render_mode``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode=...")
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Close every cloud."""
        for env in self.envs:
            env.close()

    # -- helpers ----------------------------------------------------------------------------
    def _write(self, i: int, obs: dict[str, np.ndarray]) -> None:
        for key, array in self._obs.items():
            array[i] = obs[key]

    def _batched_obs(self) -> dict[str, np.ndarray]:
        return {key: array.copy() for key, array in self._obs.items()}

    def _batched_infos(self, infos: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        """The sub-envs' infos batched as ``SyncVectorEnv`` batches them, the lazy keys left
        unwritten until read."""
        batched: dict[str, Any] = {}
        lazy: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for i, info in infos:
            eager = {}
            for key in info.keys():  # noqa: SIM118 (iterating keys never computes a value)
                if key in LAZY_KEYS:
                    lazy.setdefault(key, []).append((i, info))
                else:
                    eager[key] = info[key]
            batched = self._add_info(batched, eager, i)
        out = LazyInfo({})
        for key, entries in lazy.items():  # first, where the sub-envs' infos have them
            out[key] = Lazy(functools.partial(self._lazy_array, entries, key))
            mask = np.zeros(self.num_envs, dtype=np.bool_)
            mask[[i for i, _ in entries]] = True
            out[f"_{key}"] = mask
        out.update(batched)
        return out

    def _lazy_array(self, entries: list[tuple[int, dict[str, Any]]], key: str) -> np.ndarray:
        array = np.full(self.num_envs, fill_value=None, dtype=object)
        for i, info in entries:
            array[i] = info[key]
        return array

    def __repr__(self) -> str:
        return f"PaseVectorEnv(num_envs={self.num_envs}, {self.envs[0].specs[0].name!r})"
