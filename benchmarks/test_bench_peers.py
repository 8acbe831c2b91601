"""The peer the speed targets name, timed in the same run: NASim's benchmark scenarios.

NASim (network attack simulation, ``pip install nasim``, in the ``bench`` extra) is the fast
graph simulator our env is compared with: its ``tiny`` and ``medium`` scenarios, one random
action per step (drawn before the timer, outside the call), reset when an episode ends. Compare
``extra_info["steps_per_second"]`` with the env's in the same run
(``benchmarks/README.md``); skipped when NASim is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

ROUNDS = 3000
WARMUP_ROUNDS = 50
SEED = 0


def _median(benchmark: Any) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


@pytest.mark.parametrize("scenario", ["tiny", "medium"])
def test_nasim_steps_per_second(benchmark: Any, scenario: str) -> None:
    """One ``env.step`` of NASim's ``scenario`` benchmark (flat action space)."""
    nasim = pytest.importorskip("nasim")
    benchmark.group = "peer_step:nasim"
    env = nasim.make_benchmark(scenario, seed=SEED)
    env.reset(seed=SEED)
    actions = iter(np.random.default_rng(SEED).integers(env.action_space.n, size=10**6).tolist())
    ended = [0]

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(next(actions))
        if terminated or truncated:
            env.reset()
            ended[0] += 1

    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    benchmark.extra_info["scenario"] = scenario
    benchmark.extra_info["episodes_ended"] = ended[0]
    median = _median(benchmark)
    if median is not None:
        benchmark.extra_info["steps_per_second"] = round(1.0 / median, 1)
