"""The Deformable DETR-FD baseline (``agents/detr_fd``): deformable sampling, masking and
padding, Hungarian matching and the set loss, a tiny training run whose weights load, clear
errors for missing or broken weights, and the shipped weights acting on clouds of different
sizes, deterministically and without the ground truth."""

from __future__ import annotations

import inspect
import itertools
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.harness.agent import sibling
from pase_gym.harness.runner import Job, run_episode
from pase_gym.sim.faults import faults_for_split
from pase_gym.sim.plan import Plan, parse_plan

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "agents" / "detr_fd"
TYPES = list(faults_for_split("train"))


def _load(name: str) -> Any:
    """A module of agents/detr_fd under the private name its siblings use for it."""
    return sibling(FOLDER, name)


M = _load("model")
A = _load("agent")
T = _load("train")

UNIT = (np.zeros(M.N_METRICS, np.float32), np.ones(M.N_METRICS, np.float32))


@pytest.fixture(autouse=True)
def _one_thread(torch_one_thread: None) -> None:
    """Every test here on one torch thread (``tests/conftest.py``)."""


def _random_obs(rng: np.random.Generator, n_slots: int, n_active: int) -> dict[str, np.ndarray]:
    """An observation-shaped dict: ``n_active`` provisioned slots, the rest padding."""
    mask = np.zeros(n_slots, np.float32)
    mask[:n_active] = 1.0
    nodes = np.zeros((n_slots, M.N_DESCRIPTORS), np.float32)
    nodes[np.arange(n_active), rng.integers(0, M.N_ROLES, n_active)] = 1.0
    nodes[:n_active, M.N_ROLES :] = 1.0
    metrics = np.zeros((n_slots, 8), np.float32)
    metrics[:n_active] = rng.random((n_active, 8))
    window = np.zeros((4, n_slots, 8), np.float32)
    window[1:, :n_active] = rng.random((3, n_active, 8))
    alarms = np.zeros((n_slots, 7), np.float32)
    alarms[rng.integers(0, n_active), rng.integers(0, 7)] = 1.0
    return {
        "metrics": metrics,
        "window": window,
        "alarms": alarms,
        "nodes": nodes,
        "node_mask": mask,
    }


def _tiny_model(**kw: Any) -> Any:
    torch.manual_seed(0)
    settings = {"dim": 16, "queries": 4, "heads": 2, "points": 2, "ffn": 32, "dropout": 0.0}
    return M.DeformableDETRFD(n_types=len(TYPES), **(settings | kw))


# -- deformable sampling -----------------------------------------------------------------------
def test_sampling_at_a_grid_point_reads_that_cell() -> None:
    gen = torch.Generator().manual_seed(0)
    value = torch.randn(2, 3, 5, 7, generator=gen)  # (B, C, time, nodes)
    tt, nn_ = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    t = tt.reshape(1, 5, 7).expand(2, -1, -1)  # (B, Q = 5 rows, P = 7 columns)
    n = nn_.reshape(1, 5, 7).expand(2, -1, -1)
    got = M.sample(value, t, n)  # (B, C, Q, P)
    assert got.shape == (2, 3, 5, 7)
    assert torch.allclose(got, value, atol=1e-6)  # every cell centre reads its own cell
    # one specific point, the right axes: time 3, node 6 is value[..., 3, 6], not [..., 6, 3]
    one = M.sample(value, torch.full((2, 1, 1), 3.0), torch.full((2, 1, 1), 6.0))
    assert torch.allclose(one[..., 0, 0], value[:, :, 3, 6], atol=1e-6)
    # half-way between two nodes is their mean; beyond the last node the border reads zero
    mid = M.sample(value, torch.full((2, 1, 1), 1.0), torch.full((2, 1, 1), 2.5))
    assert torch.allclose(mid[..., 0, 0], value[:, :, 1, 2:4].mean(-1), atol=1e-6)
    out = M.sample(value, torch.full((2, 1, 1), 1.0), torch.full((2, 1, 1), 6.5))
    assert torch.allclose(out[..., 0, 0], 0.5 * value[:, :, 1, 6], atol=1e-6)


def test_deformable_attention_reads_the_cells_its_offsets_name() -> None:
    torch.manual_seed(0)
    attn = M.DeformableAttention(dim=8, heads=2, points=2)
    with torch.no_grad():
        attn.value.weight.copy_(torch.eye(8))
        attn.out.weight.copy_(torch.eye(8))
        attn.out.bias.zero_()
    feat = torch.randn(1, 8, 5, 6)  # (B, D, T, N)
    query = torch.zeros(1, 1, 8)  # zero query: offsets and weights are the initial biases
    got = attn(query, feat, torch.tensor([[4.0]]), torch.tensor([[2.0]]))
    # head 0: node 2 at times 4 and 3; head 1: node 3 at times 4 and 3; equal weights
    want = torch.cat(
        [feat[0, :4, 3:5, 2].mean(-1), feat[0, 4:, 3:5, 3].mean(-1)]
    )  # each head reads its own quarter of the channels
    assert torch.allclose(got[0, 0], want, atol=1e-6)


# -- shapes, masking, padding ------------------------------------------------------------------
def test_forward_shapes_and_padding_masks() -> None:
    rng = np.random.default_rng(0)
    series = [M.Series.from_obs(_random_obs(rng, 12, 7)), M.Series.from_obs(_random_obs(rng, 9, 9))]
    batch = M.collate(series, *UNIT)
    assert batch.x.shape == (2, 12, 5, M.N_STEP)
    model = _tiny_model().eval()
    with torch.no_grad():
        out = model(batch)
    assert out.type_logits.shape == (2, 4, len(TYPES) + 1)
    assert out.node_logp.shape == (2, 4, 12)
    assert bool(torch.isneginf(out.node_logp[0, :, 7:]).all())  # padding is never pointed at
    assert bool(torch.isneginf(out.node_logp[1, :, 9:]).all())  # nor the batch's own padding
    assert bool(torch.isfinite(out.node_logp[0, :, :7]).all())
    assert torch.allclose(out.node_logp.exp().sum(-1), torch.ones(2, 4), atol=1e-5)
    assert bool((out.reference[0] < 7).all())  # reference points on provisioned slots only
    n_params = sum(p.numel() for p in M.DeformableDETRFD(n_types=16).parameters())
    assert n_params * 4 < 1_000_000  # well under 1 MB of float32 weights


def test_padding_a_batch_does_not_change_an_example() -> None:
    rng = np.random.default_rng(1)
    small = M.Series.from_obs(_random_obs(rng, 10, 8))
    wide = M.Series.from_obs(_random_obs(rng, 30, 25))
    model = _tiny_model().eval()
    with torch.no_grad():
        alone = model(M.collate([small], *UNIT))
        padded = model(M.collate([small, wide], *UNIT))
    assert torch.allclose(alone.type_logits[0], padded.type_logits[0], atol=1e-5)
    assert torch.allclose(alone.node_logp[0], padded.node_logp[0, :, :10], atol=1e-5)


def test_decoding_is_type_consistent_and_uses_the_most_confident_query() -> None:
    env = gym.make("PASE-OpenStack-v4", scenario="default", start="incident")
    obs, _ = env.reset(seed=0)
    series = M.Series.from_obs(obs)
    n = len(series.mask)
    logits = np.zeros((3, len(TYPES) + 1))
    logits[:, -1] = 5.0  # every query: "no object" ...
    logits[1, -1] = -5.0  # ... except query 1
    logits[1, TYPES.index("cpu_hog")] = 3.0
    node_logp = np.full((3, n), -10.0)
    service = int(np.flatnonzero(M.eligible_slots(series.nodes, series.mask, "process_crash"))[0])
    host = int(np.flatnonzero(M.eligible_slots(series.nodes, series.mask, "cpu_hog"))[0])
    node_logp[1, service] = 0.0  # the pointer prefers a service, the type says host
    node_logp[1, host] = -1.0
    t, slot, query = M.decode(logits, node_logp, TYPES, series.nodes, series.mask)
    assert (TYPES[t], slot, query) == ("cpu_hog", host, 1)
    t, slot, query = M.decode(logits, node_logp, TYPES, series.nodes, series.mask, joint=False)
    assert (TYPES[t], slot, query) == ("cpu_hog", service, 1)


# -- Hungarian matching and the loss -----------------------------------------------------------
def test_matching_gives_each_fault_its_own_query_at_the_lowest_cost() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        q, g = int(rng.integers(2, 6)), int(rng.integers(1, 3))
        type_prob = rng.dirichlet(np.ones(len(TYPES) + 1), q)
        node_prob = rng.dirichlet(np.ones(9), q)
        target = [(int(rng.integers(len(TYPES))), int(rng.integers(9))) for _ in range(g)]
        pairs = M.match(type_prob, node_prob, target)
        assert sorted(c for _, c in pairs) == list(range(g))  # every fault matched once
        assert len({r for r, _ in pairs}) == g  # to distinct queries
        cost = sum(-type_prob[r, target[c][0]] - node_prob[r, target[c][1]] for r, c in pairs)
        best = min(
            sum(-type_prob[r, t] - node_prob[r, s] for r, (t, s) in zip(rows, target, strict=True))
            for rows in itertools.permutations(range(q), g)
        )
        assert cost == pytest.approx(best)
    # both faults prefer query 0: the second one still gets a query of its own
    type_prob = np.full((3, len(TYPES) + 1), 0.01)
    type_prob[0, [0, 1]] = 0.9
    type_prob[2, 1] = 0.5
    node_prob = np.full((3, 4), 0.25)
    assert sorted(M.match(type_prob, node_prob, [(0, 1), (1, 2)])) == [(0, 0), (2, 1)]


def test_the_set_loss_decreases_on_a_fixed_tiny_batch() -> None:
    rng = np.random.default_rng(3)
    series = [M.Series.from_obs(_random_obs(rng, 12, 10)) for _ in range(4)]
    for i, s in enumerate(series):  # make the root stand out so there is something to learn
        s.x[i + 1, -1] += 3.0
    targets = [[(0, 1)], [(3, 2)], [(5, 3), (7, 8)], [(15, 4)]]
    batch = M.collate(series, *UNIT)
    model = _tiny_model()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(60):
        loss, matches = M.set_loss(model(batch), targets)
        for pairs, target in zip(matches, targets, strict=True):
            assert len(pairs) == len(target) == len({q for q, _ in pairs})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    with torch.no_grad():
        out = model(batch)
        _, matches = M.set_loss(out, targets)
    for i, (pairs, target) in enumerate(zip(matches, targets, strict=True)):
        for query, g in pairs:  # each matched query now names its fault: type and node
            assert int(out.type_logits[i, query].argmax()) == target[g][0]
            assert int(out.node_logp[i, query].argmax()) == target[g][1]


# -- training ----------------------------------------------------------------------------------
def test_a_tiny_training_run_writes_weights_that_load_and_act(tmp_path: Path) -> None:
    out = tmp_path / "w.pt"
    meta = T.train(
        episodes=2,
        epochs=2,
        seed=0,
        device="cpu",
        out=out,
        snapshots=2,
        scenarios=["process-crash-train", "cpu-hog-train"],
        augment=False,
        dim=16,
        queries=4,
        progress=False,
    )
    assert out.is_file()
    saved = json.loads((tmp_path / "w.pt.json").read_text())
    assert saved["fault_types"] == TYPES
    assert saved["accuracy"]["train"]["n"] == meta["examples"]["train"] > 0
    assert saved["command"].startswith("python agents/detr_fd/train.py")
    agent = A.Agent(device="cpu", weights=out)
    env = gym.make("PASE-OpenStack-v4", scenario="cpu-hog-train", start="incident")
    obs, info = env.reset(seed=0)
    agent.reset(0)
    plan = agent.act(obs, info)
    assert isinstance(plan, Plan)
    assert parse_plan(str(plan)) == plan
    assert plan.diagnosis is not None and len(plan) == 1
    assert agent.last_prediction is not None and agent.last_prediction[0] in TYPES


def test_training_refuses_a_scenario_outside_the_train_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train split"):
        T.train(
            episodes=1,
            epochs=1,
            out=tmp_path / "w.pt",
            scenarios=["process-crash-test"],
            progress=False,
        )


# -- weights -----------------------------------------------------------------------------------
def _alarmed() -> tuple[dict[str, Any], dict[str, Any]]:
    env = gym.make("PASE-OpenStack-v4", scenario="process-crash-train", start="incident")
    obs, info = env.reset(seed=0)
    assert obs["alarms"].sum() > 0
    return obs, info


def test_missing_weights_name_the_path_and_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "weights.pt"
    agent = A.Agent(weights=missing)  # loading is lazy: nothing fails yet
    with pytest.raises(M.WeightsNotFoundError) as err:
        agent.act(*_alarmed())
    assert isinstance(err.value, FileNotFoundError)
    assert str(missing) in str(err.value)
    assert "python agents/detr_fd/train.py" in str(err.value)


@pytest.mark.parametrize("content", ["garbage", "foreign", "truncated"])
def test_broken_weights_name_the_path_and_the_command(tmp_path: Path, content: str) -> None:
    path = tmp_path / "weights.pt"
    if content == "garbage":
        path.write_bytes(b"this is not a checkpoint")
    elif content == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    else:
        path.write_bytes((FOLDER / "weights.pt").read_bytes()[:5000])
    with pytest.raises(M.WeightsError) as err:
        A.Agent(weights=path).act(*_alarmed())
    assert not isinstance(err.value, FileNotFoundError)
    assert str(path) in str(err.value)
    assert "python agents/detr_fd/train.py" in str(err.value)


def test_the_shipped_weights_are_small_and_documented() -> None:
    weights = FOLDER / "weights.pt"
    assert weights.is_file() and weights.stat().st_size < 1_000_000
    meta = json.loads((FOLDER / "weights.pt.json").read_text())
    assert meta["command"].startswith("python agents/detr_fd/train.py")
    assert meta["fault_types"] == TYPES
    assert meta["examples"]["train"] > 0 and meta["examples"]["validation"] > 0
    model, types, mean, std = M.load_checkpoint(weights)
    assert types == TYPES and mean.shape == std.shape == (M.N_METRICS,)
    assert model.config == meta["config"]
    # far above chance (1/16); v3+ observations make some types ambiguous without a probe
    assert 0.7 < meta["accuracy"]["validation"]["type_joint"] < 1.0
    assert 0.7 < meta["accuracy"]["validation"]["node_joint"] <= 1.0


# -- the shipped agent -------------------------------------------------------------------------
def _episode(scenario: str, seed: int) -> tuple[list[Plan], list[bool]]:
    """The plans a fresh shipped agent sends over one episode, and whether alarms were up."""
    agent = A.Agent()
    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    obs, info = env.reset(seed=seed)
    agent.reset(seed)
    plans, alarmed, done = [], [], False
    while not done:
        plan = agent.act(obs, info)
        assert parse_plan(str(plan)) == plan
        plans.append(plan)
        alarmed.append(bool(obs["alarms"].sum() > 0))
        obs, _, terminated, truncated, info = env.step(plan)
        done = terminated or truncated
    return plans, alarmed


@pytest.mark.parametrize(
    ("scenario", "slots"), [("process-crash-train", 49), ("cpu-hog-test", 225)]
)
def test_the_shipped_agent_waits_then_acts_once(scenario: str, slots: int) -> None:
    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    obs, _ = env.reset(seed=0)
    assert obs["node_mask"].size == slots and obs["node_mask"].sum() < slots  # padding exists
    plans, alarmed = _episode(scenario, 0)
    first = alarmed.index(True)
    assert all(str(p) == "Wait(10)" for p in plans[:first])  # waits while no alarm
    acting = plans[first]
    assert acting.diagnosis is not None
    assert len(acting) == 1 and acting.steps[0].name != "Wait"  # one recovery call
    later = [c for p in plans[first + 1 :] for c in p.steps if c.name != "Wait"]
    assert len(later) <= 1  # at most one follow-up action
    assert all(p.diagnosis is None for p in plans[first + 1 :])
    assert _episode(scenario, 0) == (plans, alarmed)  # deterministic


def test_the_shipped_agent_runs_in_the_harness_by_path() -> None:
    job = Job(str(FOLDER / "agent.py"), "test", "cpu-hog-test", 0, isolation="in-process")
    record = run_episode(job)
    assert record["agent_errors"] == 0
    assert record["uses_ground_truth"] is False
    assert record["diagnosis"] == "cpu_hog"
    assert record["diagnosed_node"] in record["fault_nodes"]
    assert record["plan_steps"] == 1  # one action


def test_it_never_reads_the_ground_truth() -> None:
    assert "uses_ground_truth" not in vars(A.Agent)
    assert not getattr(A.Agent, "uses_ground_truth", False)
    assert not hasattr(A.Agent, "bind_ground_truth")
    for module in (A, M):
        source = inspect.getsource(module)
        assert "unwrapped" not in source and "ground_truth(" not in source


def test_device_auto_maps_to_an_available_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert A.Agent(device="auto").device == expected
    with pytest.raises(ValueError):
        A.Agent(device="tpu")


def test_by_path_in_the_sandbox_it_writes_the_registry_agents_record() -> None:
    """Run by path, the agent acts in the sandbox and its episode is the in-process one's."""
    skip = ("compute_s", "key", "agent_spec", "agent", "isolation")
    trusted = run_episode(Job("detr_fd", "test", "process-hang-test", 1))
    sandboxed = run_episode(Job(str(FOLDER / "agent.py"), "test", "process-hang-test", 1))
    assert sandboxed["isolation"] == "process" and trusted["isolation"] == "in-process"
    assert {k: v for k, v in trusted.items() if k not in skip} == {
        k: v for k, v in sandboxed.items() if k not in skip
    }
