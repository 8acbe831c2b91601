"""A short MaskablePPO run from scratch on the tiny cloud beats the random masked agent (and is
compared with always waiting, which it does not beat from scratch).

Only generic PPO hyperparameters are set (rollout length, batch size, learning rate, entropy
bonus, network size); nothing about the env is special-cased. Both agents are scored on the
same evaluation seeds, which training never resets to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pase_gym.wrappers import action_table, make_sb3_env

sb3_contrib = pytest.importorskip("sb3_contrib")
get_action_masks = pytest.importorskip("sb3_contrib.common.maskable.utils").get_action_masks

ENV_ID = "PASE-OpenStack-Tiny-v4"
TRAIN_STEPS = 8192
EVAL_SEEDS = tuple(range(1000, 1020))
HYPERPARAMETERS: dict[str, Any] = {
    "n_steps": 256,
    "batch_size": 64,
    "learning_rate": 3e-4,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [64, 64]},
}

Policy = Callable[[Any, dict[str, np.ndarray]], int]


def _mean_return(policy: Policy, seeds: tuple[int, ...] = EVAL_SEEDS) -> float:
    env = make_sb3_env(ENV_ID)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(env, obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


@pytest.mark.slow
@pytest.mark.usefixtures("torch_one_thread")
@pytest.mark.filterwarnings("ignore:Your observation .* has an unconventional shape")
def test_maskable_ppo_beats_the_random_masked_agent() -> None:
    rng = np.random.default_rng(0)

    def random_masked(env: Any, obs: dict[str, np.ndarray]) -> int:
        return int(rng.choice(np.flatnonzero(env.action_masks())))

    random_mean = _mean_return(random_masked)
    waits = action_table()[2]

    def always_wait(env: Any, obs: dict[str, np.ndarray]) -> int:
        # the waits close the flat table; wait as long as the env monitors after each plan
        return int(env.action_space.n) - len(waits) + waits.index(10)

    wait_mean = _mean_return(always_wait)

    model = sb3_contrib.MaskablePPO(
        "MultiInputPolicy", make_sb3_env(ENV_ID), seed=0, device="cpu", **HYPERPARAMETERS
    )
    model.learn(TRAIN_STEPS)

    def trained(env: Any, obs: dict[str, np.ndarray]) -> int:
        action, _ = model.predict(obs, deterministic=True, action_masks=get_action_masks(env))
        return int(action)

    trained_mean = _mean_return(trained)
    print(
        f"MaskablePPO {trained_mean:.2f} vs random masked {random_mean:.2f}, "
        f"always waiting {wait_mean:.2f}"
    )
    assert trained_mean > random_mean, (trained_mean, random_mean)
    # From scratch, MaskablePPO does not beat always-wait: 8,192 steps on env v3 leave it at
    # -29.5 against -29.1 (on v2, 4,096 and 50,000 steps: -34.6 and -30.6), because a random
    # allowed action never recovers an episode. On v3 the random masked agent also draws many
    # probes (safe, but they cost time), so 4,096 steps were no longer enough to beat it
    # (-55.8 against -38.8). agents/maskable_ppo warm-starts from the
    # oracle's runbooks and beats it (tests/env/test_rl_shared_policy.py).
