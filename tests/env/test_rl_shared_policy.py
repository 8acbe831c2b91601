"""MaskablePPO with the node-shared policy (``agents/maskable_ppo``) beats always waiting.

A small training budget (the documented command's settings with fewer teacher episodes and
PPO steps) is played against always-wait on the same held-out seeds; the paired difference of
returns must be positive with a 95% bootstrap interval that excludes zero. The wrapper and the
policy are checked on their own too: what the memory adds, and that the logits follow
``DiscretePlanAction``'s layout.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")
torch = pytest.importorskip("torch")

HERE = Path(__file__).resolve().parents[2] / "agents" / "maskable_ppo"
SMALL_BUDGET = 2_048  # PPO env steps after a warm start on DEMONSTRATIONS teacher episodes
DEMONSTRATIONS = 150
EVAL_SEEDS = tuple(range(100_000, 100_030))


def _train_module() -> Any:
    key = "_pase_maskable_ppo_train"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / "train.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def test_the_memory_adds_drift_and_what_was_tried() -> None:
    train = _train_module()
    env = train.make_env()
    obs, _ = env.reset(seed=3)
    assert set(obs) >= {"drift", "tried", "group_tried"}
    assert not obs["drift"].any() and not obs["tried"].any()  # nothing changed, nothing tried
    for key, box in env.observation_space.spaces.items():
        assert obs[key].shape == box.shape, key
    restart = 0  # the first node action's block: Restart, slot 0
    obs, *_ = env.step(restart)
    assert obs["tried"][0, 0] == pytest.approx(0.5) and obs["tried"].sum() == pytest.approx(0.5)
    obs, *_ = env.step(restart)
    obs, *_ = env.step(restart)
    assert obs["tried"][0, 0] == pytest.approx(1.0)  # capped
    env.reset(seed=3)
    assert not env.step(int(env.action_space.n) - 1)[0]["tried"].any()  # a wait tries nothing


def test_the_policy_scores_each_node_action_in_the_flat_tables_order() -> None:
    """Permuting two slots' features permutes their node-action logits, and nothing else of
    a node block: one network scores every node."""
    train = _train_module()
    policy_module = train.policy_module()
    env = train.make_env()
    obs, _ = env.reset(seed=0)
    torch.manual_seed(0)
    layout = env.layout()
    features = policy_module.NodeFeatures(env.observation_space, hidden=16)
    head = policy_module.SharedActionHead(layout, hidden=16)
    batch = {k: torch.as_tensor(v[None], dtype=torch.float32) for k, v in obs.items()}
    swapped = {k: v.clone() for k, v in batch.items()}
    a, b = 1, 2  # two provisioned slots
    for key in ("metrics", "alarms", "nodes", "drift", "tried", "node_mask"):
        swapped[key][:, [a, b]] = swapped[key][:, [b, a]]
    with torch.no_grad():
        logits = head(features(batch))[0].numpy()
        other = head(features(swapped))[0].numpy()
    assert logits.shape == (env.action_space.n,)
    slots, kinds = layout["slots"], layout["node_actions"]
    node = logits[: slots * kinds].reshape(kinds, slots)
    node_swapped = other[: slots * kinds].reshape(kinds, slots)
    np.testing.assert_allclose(node[:, a], node_swapped[:, b], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(node[:, b], node_swapped[:, a], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.usefixtures("torch_one_thread")
def test_a_small_budget_beats_always_waiting() -> None:
    train = _train_module()
    model = train.train(SMALL_BUDGET, seed=0, demonstrations=DEMONSTRATIONS)
    result = train.compare(
        train.play(train.greedy(model), EVAL_SEEDS), train.play(train.always_wait, EVAL_SEEDS)
    )
    print(train.table(result))
    lo, _ = result["difference_95"]
    assert result["difference"] > 0 and lo > 0, result
    assert result["ppo_recovered"] > result["wait_recovered"], result
