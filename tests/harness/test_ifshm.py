"""IFSHM (``agents/ifshm``): stage one's reader and head, stage two's masks and two-level
distribution, a tiny training run, and the shipped agent."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.core import episode_of
from pase_gym.harness.agent import sibling
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.predicates import violations
from pase_gym.sim.primitives import get_primitive

torch = pytest.importorskip("torch")
pytest.importorskip("sb3_contrib")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "agents" / "ifshm"


def _load(name: str) -> Any:
    return sibling(HERE, name)


A = _load("agent")
P = A.sibling("policy")
S = A.sibling("semantic")
T = _load("train")


def _tiny_reader() -> Any:
    from pase_gym.llm.models import tiny_llama

    model, tokenizer = tiny_llama(seed=0, hidden_size=32, num_layers=2)
    return S.Reader(model, tokenizer, layers=2, max_tokens=64)


def test_the_reader_pools_one_vector_per_description() -> None:
    reader = _tiny_reader()
    e = reader.embed(["a short report", "a longer report about nova-api-1 timing out"])
    assert e.shape == (2, 32) and e.dtype == np.float32 and np.isfinite(e).all()
    # padding does not change a description's embedding
    alone = reader.embed(["a short report"])
    np.testing.assert_allclose(alone[0], e[0], atol=1e-5)


def test_the_semantic_head_learns_separable_classes() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 3
    labels = np.repeat(np.arange(3), 30)
    x = (centres[labels] + rng.normal(size=(90, 32))).astype(np.float32)
    head = S.SemanticHead(32, 3, pca_dims=4)
    head.fit(x, labels, seed=0, epochs=200)
    assert (head.predict(x) == labels).mean() > 0.95
    state = head.state(x[:5])
    assert state.shape == (5, head.state_dim) == (5, 7)
    np.testing.assert_allclose(state[:, :3].sum(1), 1.0, atol=1e-5)


def test_the_reader_refuses_more_layers_than_the_model_has() -> None:
    from pase_gym.llm.models import tiny_llama

    model, tokenizer = tiny_llama(seed=0, num_layers=2)
    with pytest.raises(ValueError, match=r"layers: expected 1\.\.2"):
        S.Reader(model, tokenizer, layers=3)


@pytest.mark.parametrize("scenario", ["db-lock-contention-test", "process-crash-train"])
def test_a_masked_pair_violates_its_preconditions_in_the_simulator(scenario: str) -> None:
    """The masks are sound: a (type, node) pair masked as invalid fails a precondition on the
    simulator's true state (the observation proved it)."""
    env = gym.make("PASE-OpenStack-v4", scenario=scenario, start="incident")
    obs, info = env.reset(seed=1)
    valid = P.valid_actions(obs, info)
    state = episode_of(env).state
    names = list(info["slot_names"])
    checked = 0
    for k, name in enumerate(P.ACTION_TYPES):
        if name in ("Wait", "ScaleOut"):
            continue
        spec = get_primitive(name)
        for slot in np.flatnonzero(~valid[k, : len(names)]):
            call = P.call_of(k, int(slot), obs, info)
            ids = {
                p: state.topo.index[str(a)]
                for p, a in zip(spec.param_names(), call.args, strict=True)
                if p == "node"
            }
            if "node" in ids:
                assert violations(state, spec, ids), f"{call} was masked but is allowed"
                checked += 1
    assert checked > 50
    assert valid[P.WAIT].sum() == 1 and valid[P.WAIT, 0]


def test_every_allowed_pair_is_a_well_formed_call_that_maps_back() -> None:
    env = gym.make("PASE-OpenStack-v4", scenario="default", start="incident")
    obs, info = env.reset(seed=0)
    valid = P.valid_actions(obs, info)
    for k, slot in zip(*np.nonzero(valid), strict=True):
        call = P.call_of(int(k), int(slot), obs, info)
        assert parse_plan(str(call)).steps == (call,)
        if call.name not in ("ScaleOut", "Wait"):
            assert P.action_of(call, obs, info) == k * P.MAX_SLOTS + slot


def test_the_two_level_distribution_is_type_times_node_over_allowed_pairs() -> None:
    policy = P.build_policy(state_dim=7, hidden=16)
    b = 3
    rng = np.random.default_rng(0)
    valid = np.zeros((b, P.K, P.MAX_SLOTS), dtype=np.float32)
    valid[:, P.WAIT, 0] = 1
    valid[:, 1, :40] = rng.random((b, 40)) > 0.5
    valid[:, 4, 10:12] = 1
    obs = {
        "node": torch.as_tensor(rng.normal(size=(b, P.MAX_SLOTS, P.NODE_DIM)), dtype=torch.float32),
        "mask": torch.ones(b, P.MAX_SLOTS),
        "valid": torch.as_tensor(valid.reshape(b, -1)),
        "semantic": torch.as_tensor(rng.normal(size=(b, 7)), dtype=torch.float32),
        "globals": torch.zeros(b, P.GLOBAL_DIM),
    }
    with torch.no_grad():
        dist = policy.get_distribution(obs, action_masks=obs["valid"].numpy() > 0.5)
        probs = dist.distribution.probs.reshape(b, P.K, P.MAX_SLOTS).numpy()
    np.testing.assert_allclose(probs.sum((1, 2)), 1.0, atol=1e-5)
    assert probs[valid == 0].max() < 1e-6
    per_type = probs.sum(2)
    assert (per_type[:, [0, 1, 4]] > 0).all() and per_type[:, [2, 3, 5]].max() < 1e-6


def test_a_tiny_training_run_writes_weights_that_load_and_act(tmp_path: Path) -> None:
    out = tmp_path / "w.pt"
    argv = [
        "--scenarios", "process-crash-train,cpu-hog-train", "--no-augment",
        "--episodes-per-scenario", "2", "--ppo-steps", "16", "--clone-epochs", "3",
        "--no-validate", "--device", "cpu", "--threads", "1", "--quiet", "--out", str(out),
    ]  # fmt: skip
    assert T.main(argv, reader=_tiny_reader()) == 0
    record = json.loads(out.with_name("w.pt.json").read_text())
    assert record["types"] == ["cpu_hog", "process_crash"]
    assert record["data"]["decisions_train"] > 0 and record["reader"]["layers"] == 2
    core = A.Core.load(out)
    core.reader = _tiny_reader()
    agent = A.Agent(weights=out)
    agent.core = core
    env = gym.make("PASE-OpenStack-v4", scenario="process-crash-train", start="incident")
    obs, info = env.reset(seed=0)
    agent.reset(0)
    plan = agent.act(obs, info)
    assert len(plan.steps) == 1
    assert plan.diagnosis is None or plan.diagnosis.fault_type in record["types"]


def test_missing_or_corrupt_weights_say_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(A.WeightsError, match=re.escape("run python agents/ifshm/train.py")):
        A.Core.load(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(A.WeightsError, match=re.escape(str(bad))):
        A.Core.load(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else/1"}, other)
    with pytest.raises(A.WeightsError, match="expected an IFSHM checkpoint"):
        A.Core.load(other)


def test_it_never_reads_the_ground_truth() -> None:
    assert not getattr(A.Agent, "uses_ground_truth", False)
    assert not hasattr(A.Agent, "bind_ground_truth")
    for module in (A, P, S):
        source = inspect.getsource(module)
        assert "unwrapped" not in source and "ground_truth(" not in source


def test_the_shipped_weights_are_small_and_documented() -> None:
    weights = HERE / "weights.pt"
    assert weights.stat().st_size < 2_000_000
    record = json.loads((HERE / "weights.pt.json").read_text())
    assert record["command"].startswith("python agents/ifshm/train.py")
    assert len(record["types"]) == 16
    assert record["stage_one_accuracy"]["validation"] is not None


@pytest.mark.slow
def test_the_shipped_agent_acts_once_per_decision_and_repeats_itself() -> None:
    """On the real language model: waits before the alarm, one call per decision, the first
    acting one diagnosed, at most MAX_DECISIONS decisions, and the same plans twice."""

    def play() -> list[str]:
        env = gym.make("PASE-OpenStack-v4", scenario="process-crash-test")
        obs, info = env.reset(seed=0)
        agent.reset(0)
        plans, done = [], False
        while not done:
            plan = agent.act(obs, info)
            if not obs["alarms"].sum():
                assert str(plan) == "Wait(10)"
            assert len(plan.steps) == 1
            plans.append(str(plan))
            obs, _, terminated, truncated, info = env.step(plan)
            done = terminated or truncated
        return plans

    agent = A.Agent(threads=1)
    first = play()
    assert first == play()
    acting = [p for p in first if p != "Wait(10)"]
    assert acting and "Diagnose(" in acting[0]
    assert sum("Diagnose(" in p for p in first) == 1
    assert agent.memory.decisions <= A.Agent.MAX_DECISIONS


def test_reading_with_no_virtual_tokens_is_reading_without_them() -> None:
    reader = _tiny_reader()
    texts = ["a short report", "nova-api-1 times out"]
    plain = reader.embed(texts)
    with_none = reader.embed_with(texts, torch.zeros(0, reader.dim)).detach().numpy()
    np.testing.assert_allclose(with_none, plain, atol=1e-5)
    reader.soft = reader.initial_soft(2)
    assert not np.allclose(reader.embed(texts), plain)  # the virtual tokens are read


def _adapting_agent(tmp_path: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """An IFSHM agent over a tiny language model, a head and an untrained policy."""
    reader = _tiny_reader()
    head = S.SemanticHead(reader.dim, 2, pca_dims=2)
    rng = np.random.default_rng(0)
    head.fit(rng.normal(size=(20, reader.dim)).astype(np.float32), np.arange(20) % 2, epochs=5)
    policy = P.build_policy(head.state_dim, hidden=16)
    core = A.Core(
        head,
        policy,
        np.zeros(P.NODE_DIM, np.float32),
        np.ones(P.NODE_DIM, np.float32),
        ["cpu_hog", "process_crash"],
        {"model": "tiny"},
        reader=reader,
    )
    agent = A.Agent(weights=tmp_path / "unused.pt")
    agent.core = core
    agent.TUNE_STEPS, agent.TUNE_LR = 8, 0.05
    env = gym.make("PASE-OpenStack-v4", scenario="process-crash-train", start="incident")
    obs, info = env.reset(seed=0)
    return agent, obs, info


def test_prompt_tuning_starts_after_failures_and_favours_what_recovered(tmp_path: Path) -> None:
    agent, obs, info = _adapting_agent(tmp_path)
    core = agent.core
    for _ in range(A.Agent.ADAPT_TRIGGER - 1):
        agent.learn({"recovered": False, "reward": -3.0})
        assert not agent.tuning
    agent.learn({"recovered": False, "reward": -3.0})
    assert agent.tuning and core.reader.soft is not None

    def decision(action: int) -> dict[str, Any]:
        embedding = core.read([info["description"]])[0]
        x = core.inputs(obs, info, agent.memory, embedding)
        return {"description": info["description"], "x": x, "action": action}

    x0 = decision(0)["x"]
    allowed = np.flatnonzero(x0["valid"] > 0.5)
    good, bad = int(allowed[1]), int(allowed[-1])
    before = core.probabilities(decision(good)["x"])[good]
    agent._episode = [decision(good)]
    agent.learn({"recovered": True, "reward": 10.0})
    assert agent.tune_steps == 0  # one tuned episode: no contrast yet
    agent._episode = [decision(bad)]
    agent.learn({"recovered": False, "reward": -5.0})
    assert agent.tune_steps == agent.TUNE_STEPS
    after = core.probabilities(decision(good)["x"])[good]
    assert after > before
    # the model, the head and the policy were not changed: only the virtual tokens
    assert all(not p.requires_grad for p in core.policy.parameters())


def test_tuning_stops_once_the_rolling_rate_holds_and_feedback_is_checked(
    tmp_path: Path,
) -> None:
    agent, _, _ = _adapting_agent(tmp_path)
    for _ in range(A.Agent.ADAPT_TRIGGER):
        agent.learn({"recovered": False, "reward": -3.0})
    assert agent.tuning
    for _ in range(A.Agent.ADAPT_WINDOW):
        agent.learn({"recovered": True, "reward": 5.0})
    assert not agent.tuning
    with pytest.raises(ValueError, match="'recovered'"):
        agent.learn({"reward": 1.0})
    agent.forget_adaptation()
    assert agent.core.reader.soft is None and not agent._history


@pytest.mark.slow
def test_by_path_in_the_sandbox_it_writes_the_registry_agents_record() -> None:
    """The harness's guard applies: run by path, the agent acts in the sandbox (a separate
    process that holds no simulator), and its episode is the in-process agent's."""
    from pase_gym.harness.runner import Job, run_episode

    skip = ("compute_s", "key", "agent_spec", "agent", "isolation")
    trusted = run_episode(Job("ifshm", "test", "cpu-hog-test", 0))
    sandboxed = run_episode(Job(str(HERE / "agent.py"), "test", "cpu-hog-test", 0))
    assert sandboxed["isolation"] == "process" and trusted["isolation"] == "in-process"
    assert {k: v for k, v in trusted.items() if k not in skip} == {
        k: v for k, v in sandboxed.items() if k not in skip
    }
