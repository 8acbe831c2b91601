"""Demonstrations for a warm start: the oracle's runbooks as one-call discrete actions.

From scratch, MaskablePPO on the tiny cloud never sees a recovery: a uniformly random allowed
action recovers none of 40 episodes (about 230 allowed actions a step, most of them harmful),
so the +10 of a recovery never reaches the gradient. The warm start imitates a teacher first:

* :class:`Teacher` plays the oracle's runbook (:func:`pase_gym.sim.oracle.oracle_plan`, which
  reads the simulator's ground truth) one call per step, through the same flat action table
  the policy uses (``DiscretePlanAction.encode`` maps each call to its action number). It is
  used for training only; the trained policy reads nothing but the public observation.
* :func:`collect` records (observation, mask, teacher action) along the teacher's episodes.
* :func:`clone` fits the policy's action distribution to them (masked cross-entropy), then
  PPO takes over with the env's reward.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pase_gym.env.core import episode_of
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Call

Sample = tuple[dict[str, np.ndarray], np.ndarray, int]


class Teacher:
    """The oracle's runbook, one call per step, as action numbers of the env's flat table."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.plans = env.plans  # the DiscretePlanAction under RecoveryMemory
        self._queue: deque[Call] = deque()
        self._handled: set[int] = set()

    def reset(self) -> None:
        self._queue.clear()
        self._handled = set()

    def act(self) -> int:
        """The next call of the runbook (``Wait(10)`` when nothing is left to do)."""
        state = episode_of(self.env).state
        if not self._queue:
            plan = oracle_plan(state, skip=self._handled)
            if plan.steps:
                self._handled.update(id(f) for f in state.faults if f.active)
                self._queue.extend(plan.steps)
        masks = self.env.action_masks()
        while self._queue:
            action = self.plans.encode(self._queue.popleft())
            if action is not None and masks[action]:
                return action
        return self.plans.encode(Call("Wait", (10,)))  # type: ignore[return-value]


def collect(
    make_env: Callable[[], Any], seeds: Sequence[int], on_episode: Callable[[], None] | None = None
) -> tuple[list[Sample], float]:
    """(observation, mask, action) along the teacher's episodes, and its share recovered."""
    env = make_env()
    teacher = Teacher(env)
    samples: list[Sample] = []
    recovered = 0
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        teacher.reset()
        done = False
        while not done:
            action = teacher.act()
            samples.append((obs, env.action_masks().copy(), action))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        recovered += bool(episode_of(env).report().recovered)
        if on_episode is not None:
            on_episode()
    return samples, recovered / max(len(seeds), 1)


def clone(model: Any, samples: list[Sample], epochs: int, batch_size: int, seed: int) -> float:
    """Fit ``model``'s policy to the samples (masked cross-entropy); the last epoch's loss."""
    import torch

    policy = model.policy
    keys = list(samples[0][0])
    obs = {
        k: torch.as_tensor(np.stack([s[0][k] for s in samples]), dtype=torch.float32) for k in keys
    }
    masks = np.stack([s[1] for s in samples])
    actions = torch.as_tensor([s[2] for s in samples])
    rng = np.random.default_rng(seed)
    loss_value = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(samples))
        losses = []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = {k: v[idx] for k, v in obs.items()}
            dist = policy.get_distribution(batch, action_masks=masks[idx])
            loss = -dist.log_prob(actions[idx]).mean()
            policy.optimizer.zero_grad()
            loss.backward()
            policy.optimizer.step()
            losses.append(float(loss.detach()))
        loss_value = float(np.mean(losses))
    return loss_value
