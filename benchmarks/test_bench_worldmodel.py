"""World-model benchmarks: time per plan of each verifier of Fig. 6, at batch 1 and batched.

Run with ``pytest benchmarks/test_bench_worldmodel.py --benchmark-only
--benchmark-json=speed.json``, then ``pase-worldmodel report --speed speed.json`` puts the
figures in Fig. 6's table. One round scores the plans of one batch, encoding included (a
verifier is handed observations and plans, not tensors): ``batch1`` one plan, ``batched`` 256
plans of one to five calls proposed for one observation of the ``default`` scenario (the
candidates the data set's sources make). ``exact`` is the true simulator's dry run, one plan
after another. ``extra_info["plans"]`` is the batch size: the report divides the median by it.

The NSWM is the shipped one; the other learned rows time an untrained model of the same
architecture and size (the time does not depend on the weights).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from pase_gym.env.core import episode_of
from pase_gym.sim.plan import Plan

torch = pytest.importorskip("torch")

from pase_gym.worldmodel.collect import Budget, candidate_plans  # noqa: E402
from pase_gym.worldmodel.view import Seen  # noqa: E402

BATCH = 256
ROUNDS = {1: 200, BATCH: 20}
EXACT_ROUNDS = {1: 100, BATCH: 3}
MAX_CALLS = 5
VERIFIERS = ("symbolic", "mlp", "nswm", "lstm", "transformer", "ensemble", "exact")


@pytest.fixture(scope="module")
def scene() -> tuple[Any, Seen, list[Plan]]:
    env = gym.make("PASE-OpenStack-v4", start="incident")
    obs, info = env.reset(seed=0)
    seen = Seen.of(obs, info)
    episode = episode_of(env)
    rng = np.random.default_rng(0)
    plans: list[Plan] = []
    while len(plans) < BATCH:
        for _, plan in candidate_plans(episode.state, seen, rng, Budget()):
            if 0 < len(plan.steps) <= MAX_CALLS and len(plans) < BATCH:
                plans.append(plan)
    return env, seen, plans


def _verifier(name: str, env: Any) -> Any:
    from pase_gym.worldmodel.models import build
    from pase_gym.worldmodel.train import VARIANT_SPEC
    from pase_gym.worldmodel.verifier import (
        ExactVerifier,
        LearnedVerifier,
        SymbolicVerifier,
        load_verifier,
    )

    if name == "symbolic":
        return SymbolicVerifier()
    if name == "exact":
        return ExactVerifier(episode_of(env))
    if name == "nswm":
        return load_verifier()
    torch.manual_seed(0)
    architecture, symbolic, members = VARIANT_SPEC[name]
    models = [build(architecture, symbolic) for _ in range(members)]
    return LearnedVerifier(models, fusion=symbolic, name=name)


@pytest.mark.parametrize("plans", [1, BATCH], ids=["batch1", "batched"])
@pytest.mark.parametrize("name", VERIFIERS)
def test_verifier_time_per_plan(
    benchmark: Any, scene: tuple[Any, Seen, list[Plan]], name: str, plans: int
) -> None:
    """``verifier.score([seen] * plans, plans)`` for one batch."""
    env, seen, all_plans = scene
    benchmark.group = f"worldmodel:{'batch1' if plans == 1 else 'batched'}"
    verifier = _verifier(name, env)
    batch = all_plans[:plans]
    views = [seen] * plans
    rounds = (EXACT_ROUNDS if name == "exact" else ROUNDS)[plans]
    scores = benchmark.pedantic(verifier.score, args=(views, batch), rounds=rounds, warmup_rounds=1)
    assert scores.shape == (plans,) and np.isfinite(scores).all()
    benchmark.extra_info["verifier"] = name
    benchmark.extra_info["plans"] = plans
