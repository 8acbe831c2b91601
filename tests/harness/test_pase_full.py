"""PASE's whole loop (``agents/pase_full``): the meta-prompt optimiser (eq. 7, the encoder,
SAC over prompt embeddings, its file), the reason–plan–verify–adapt round on tiny in-process
language models and the shipped world model (fast), the Table 1 variants, the training
command's pieces, and the shipped agent end to end (slow)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.harness.agent import REGISTRY, resolve_agent_class, sibling
from pase_gym.scenarios import list_scenarios
from pase_gym.sim.plan import Plan, parse_plan
from pase_gym.sim.primitives import INERT

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "agents" / "pase_full"
A = sibling(HERE, "agent")
M = A.sibling("mpo")
T = sibling(HERE, "train")


# -- the meta-prompt optimiser ------------------------------------------------------------


def test_eq7_weighs_recovery_resources_and_the_world_models_verdict():
    fast, terms = M.reward(True, 60.0, 1, True)
    assert terms == {"E_rec": 0.9, "E_res": 0.75, "feasible": 1.0}
    assert fast == pytest.approx(M.ALPHA[0] * 0.9 + M.ALPHA[1] * 0.75 + M.ALPHA[2])
    slow, _ = M.reward(True, 300.0, 1, True)
    failed, terms = M.reward(False, None, 1, True)
    assert terms["E_rec"] == 0.0 and failed < slow < fast
    # more calls cost more; a plan the world model rejected earns less; no world model: no term
    assert M.reward(True, 60.0, 4, True)[0] < fast
    assert M.reward(True, 60.0, 1, False)[0] == M.reward(True, 60.0, 1, None)[0] < fast


def test_eq7_pays_nothing_for_a_cheap_plan_that_recovers_nothing():
    # the shortcut: a lone probe or Wait, let through by the world model, never recovers
    inert, terms = M.reward(False, None, 1, True)
    assert terms == {"E_rec": 0.0, "E_res": 0.0, "feasible": 1.0}
    assert inert == pytest.approx(M.ALPHA[2])
    # any recovery the gate let through, however slow or costly, earns more
    for mttr in (1.0, 240.0, 599.0):
        for calls in range(1, M.MAX_CALLS + 1):
            for cheap in range(1, M.MAX_CALLS + 1):
                assert M.reward(True, mttr, calls, True)[0] > M.reward(False, None, cheap, True)[0]


def test_the_encoder_is_a_deterministic_unit_variance_projection():
    x = np.random.default_rng(0).normal(size=(40, 20)) * np.arange(1, 21)
    a, b = M.Encoder(), M.Encoder()
    a.fit(x)
    b.fit(x.copy())
    za = a.project(x)
    assert za.shape == (40, M.OBS_DIM) and za.dtype == np.float32
    np.testing.assert_array_equal(za, b.project(x))
    kept = min(M.OBS_DIM, 20)
    np.testing.assert_allclose(za[:, :kept].std(0), 1.0, atol=1e-3)
    with pytest.raises(M.MpoError, match="not fitted"):
        M.Encoder().project(x)
    with pytest.raises(M.MpoError, match="expected"):
        M.Encoder().fit(x[:1])


def _bandit(mpo: Any, steps: int, rng: np.random.Generator) -> np.ndarray:
    target = np.linspace(-0.8, 0.8, M.ACTION_DIM)
    obs = np.zeros(M.OBS_DIM, np.float32)
    for _ in range(steps):
        a = mpo.act(obs, rng)
        mpo.add(obs, a, -float(np.sum((a - target) ** 2)))
        mpo.update(4)
    return target


def test_sac_moves_the_prompt_towards_what_pays():
    mpo = M.MetaPromptOptimiser(seed=0)
    obs = np.zeros(M.OBS_DIM, np.float32)
    start = mpo.act(obs)
    target = _bandit(mpo, 120, np.random.default_rng(1))
    before = np.sum((start - target) ** 2)
    after = np.sum((mpo.act(obs) - target) ** 2)
    assert after < 0.3 * before
    assert np.all(np.abs(mpo.act(obs)) <= 1.0)
    p = M.MetaPromptOptimiser.prompt_embedding(mpo.act(obs))
    assert p.shape == (M.ACTION_DIM,) and np.abs(p).max() <= M.SCALE


def test_a_saved_optimiser_resumes_exactly(tmp_path):
    rng = np.random.default_rng(2)
    mpo = M.MetaPromptOptimiser(seed=3)
    _bandit(mpo, 20, rng)
    enc = M.Encoder()
    enc.fit(rng.normal(size=(10, 8)))
    path = M.save(tmp_path / "mpo.zip", mpo, enc, {"tau": -0.5}, with_buffer=True)
    again, enc2, header = M.load(path)
    assert header["tau"] == -0.5 and header["seed"] == 3 and again.transitions == 20
    assert M.read_header(path) == header
    obs = rng.normal(size=M.OBS_DIM).astype(np.float32)
    np.testing.assert_array_equal(again.act(obs), mpo.act(obs))
    np.testing.assert_array_equal(enc2.project(np.ones((1, 8))), enc.project(np.ones((1, 8))))
    mpo.update(4)
    again.update(4)  # the same batches and the same torch draws as the run that went on
    np.testing.assert_array_equal(again.act(obs), mpo.act(obs))
    # without the buffer: the policy only
    light, _, _ = M.load(M.save(tmp_path / "light.zip", mpo, enc, {}))
    assert light.transitions == 0
    np.testing.assert_array_equal(light.act(obs), mpo.act(obs))


def test_a_damaged_or_foreign_optimiser_file_is_a_clear_error(tmp_path):
    with pytest.raises(M.MpoError, match="no meta-prompt optimiser file"):
        M.load(tmp_path / "missing.zip")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(M.MpoError, match="not a meta-prompt optimiser file"):
        M.load(junk)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("header.json", json.dumps({"format": "other/9", "obs_dim": 3}))
    with pytest.raises(M.MpoError, match="expected"):
        M.load(foreign)
    with pytest.raises(M.MpoError, match="expected"):
        M.read_header(foreign)
    enc = M.Encoder()
    enc.fit(np.random.default_rng(0).normal(size=(5, 4)))
    good = M.save(tmp_path / "good.zip", M.MetaPromptOptimiser(), enc, {})
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data[: len(data) // 2] if name == "sac.pt" else data)
    with pytest.raises(M.MpoError):
        M.load(broken)
    with pytest.raises(M.MpoError, match="observation"):
        M.MetaPromptOptimiser().act(np.zeros(3))


# -- the loop on tiny models --------------------------------------------------------------


class Counting:
    """The engine, counting its calls and keeping the prompt embeddings it got."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.embeddings: list[Any] = []

    def generate(self, incidents, prompt_embedding=None, temperature=0.0, seed=None):
        self.embeddings.append(None if prompt_embedding is None else np.array(prompt_embedding))
        return self.engine.generate(incidents, prompt_embedding, temperature, seed)

    def plan_batch(self, incidents, prompt_embedding=None, temperature=0.0, seed=None):
        return [g.plan for g in self.generate(incidents, prompt_embedding, temperature, seed)]

    def __getattr__(self, name: str) -> Any:  # model, prompts, constraint, ...
        return getattr(self.engine, name)


def _tiny(cls: Any, tau: float | None = None) -> Any:
    from pase_gym.llm.engine import PlanSynthesisEngine
    from pase_gym.llm.models import tiny_llama
    from pase_gym.llm.reader import Reader
    from pase_gym.worldmodel.verifier import load_verifier

    agent = cls(tau=tau)
    if agent.engine_on:
        model, tok = tiny_llama(seed=0)
        agent.engine = Counting(
            PlanSynthesisEngine(
                model, tok, prompt_dim=M.ACTION_DIM, max_new_tokens=80, template=agent.template
            )
        )
    if agent.mpo_on:
        lm, tok = tiny_llama(seed=1)
        enc = M.Encoder(Reader(lm, tok, layers=1, prompt="report: "))
        enc.fit(enc.embed(["a", "bb", "ccc node down", "ddd latency high", "e"]))
        agent.use(M.MetaPromptOptimiser(seed=0), enc, {"tau": -0.9})
    if agent.world_model_on:
        agent.verifier = load_verifier()
    agent._loaded = True
    return agent


def _incident(scenario: str = "process-crash-train", seed: int = 0) -> tuple[Any, Any, Any]:
    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    obs, info = env.reset(seed=seed)
    for _ in range(60):
        if info["alarms"]:
            break
        obs, _, _, _, info = env.step("Wait(10)")
    assert info["alarms"]
    return env, obs, info


def test_a_plan_below_tau_is_refined_then_replaced_by_a_logged_safe_action():
    agent = _tiny(A.Agent, tau=10.0)  # no plan can clear it
    env, obs, info = _incident()
    plan = agent.act(obs, info)
    assert isinstance(plan, Plan) and plan.diagnosis is not None
    assert all(c.name in INERT for c in plan.steps)  # nothing on the cloud changes
    assert len(agent.engine.embeddings) == 1 + agent.REFINEMENTS
    prompts = agent.engine.embeddings
    assert not np.array_equal(prompts[0], prompts[1])  # refinement asks with a new prompt
    assert len(agent.fallbacks) == 1 and agent.fallbacks[0]["tau"] == 10.0
    assert agent.last_feasibility is None and agent._executed == []
    env.close()


def test_the_best_candidate_runs_when_it_clears_tau_and_its_f_is_reported():
    agent = _tiny(A.Agent, tau=-1e9)
    seen_scores: list[np.ndarray] = []
    agent.observer = lambda cands, scores: seen_scores.append(np.array(scores))
    env, obs, info = _incident()
    plan = agent.act(obs, info)
    assert len(agent.engine.embeddings) == 1 and agent.fallbacks == []
    assert agent.last_feasibility == pytest.approx(float(seen_scores[0].max()))
    assert len(seen_scores[0]) == agent.CANDIDATES
    (step,) = agent._executed
    assert step["calls"] == len(plan.steps) and step["feasible"] is True
    # the same seed gives the same plan; pacing: Wait until a replan is due
    again = _tiny(A.Agent, tau=-1e9)
    assert str(again.act(obs, info)) == str(plan)
    assert str(agent.act(obs, {**info, "tick": info["tick"] + 10})) == "Wait(10)"
    env.close()


def test_direct_variants_run_the_greedy_plan_at_once():
    env, obs, info = _incident()
    nv = _tiny(A.NoVerify, tau=10.0)
    plan = nv.act(obs, info)
    assert len(nv.engine.embeddings) == 1 and nv.fallbacks == []
    assert nv.last_feasibility is not None  # scored for eq. 7, never gated
    assert nv._executed[0]["feasible"] is False
    nw = _tiny(A.NoWorldModel)
    assert nw.verifier is None
    plan = nw.act(obs, info)
    assert isinstance(plan, Plan) and nw.last_feasibility is None
    assert nw._executed[0]["feasible"] is None
    nm = _tiny(A.NoMpo, tau=-1e9)
    nm.act(obs, info)
    assert nm.engine.embeddings == [None] and nm.mpo is None
    assert A.FixedTemplate().template == "full" and not A.FixedTemplate.mpo_on
    assert A.Agent().learns and A.LoraTuning().learns
    assert not any(cls().learns for cls in (A.NoEngine, A.NoMpo, A.FixedTemplate))
    env.close()


def test_without_the_engine_the_world_model_ranks_the_catalogues_actions():
    agent = _tiny(A.NoEngine, tau=-1e9)
    env, obs, info = _incident()
    plan = agent.act(obs, info)
    assert plan.diagnosis is not None
    slot = list(info["slot_names"]).index(plan.diagnosis.node)
    assert np.asarray(obs["alarms"])[slot].sum() > 0  # aimed at an alarmed node
    assert len(plan.steps) == 1 and agent.last_feasibility is not None
    cands = agent._catalogue(obs, info)
    assert len(cands) > 5 and all(len(c.steps) == 1 for c in cands)
    env.close()


def test_description_only_keeps_the_diagnosis_and_takes_the_catalogues_step():
    from pase_gym.harness.one_action import action_for

    agent = _tiny(A.DescriptionOnly, tau=-1e9)
    env, obs, info = _incident()
    plan = agent.act(obs, info)
    d = plan.diagnosis
    assert d is not None and len(plan.steps) == 1
    expected = action_for(d.fault_type, d.node, obs, info)
    assert plan.steps[0] == (expected if expected is not None else parse_plan("Wait(10)").steps[0])
    env.close()


def test_learn_turns_executed_plans_into_transitions_and_reads_only_the_outcome():
    agent = _tiny(A.Agent, tau=-1e9)
    env, obs, info = _incident()
    agent.act(obs, info)
    before = agent.mpo.transitions
    agent.learn({"recovered": True, "mttr": 40.0, "reward": 1.0, "safe": True})
    assert agent.mpo.transitions == before + 1 and agent.online and agent._executed == []
    agent.learn({"recovered": False})  # no plan this episode: nothing to add
    assert agent.mpo.transitions == before + 1
    for bad in ({"recovered": 1}, {}, {"recovered": True, "mttr": "soon"}, None):
        with pytest.raises(ValueError, match="feedback"):
            agent.learn(bad)
    env.close()


def test_the_registry_names_the_loop_and_its_variants():
    assert "pase_full" in REGISTRY
    assert resolve_agent_class("pase_full").__name__ == "Agent"
    names = set(A.VARIANTS)
    assert names == {
        "pase_full",
        "pase_no_engine",
        "pase_no_world_model",
        "pase_no_mpo",
        "pase_description_only",
        "pase_no_verify",
        "pase_fixed_template",
    }
    assert not hasattr(A.Agent, "bind_ground_truth")


# -- the training command's pieces --------------------------------------------------------


def test_tau_is_the_threshold_that_best_separates_good_candidates():
    samples = [(-0.1, True), (-0.2, True), (-0.8, False), (-1.5, False), (-0.3, False)]
    tau, stats = T.choose_tau(samples)
    assert -0.3 <= tau < -0.2 and stats["balanced_accuracy"] == 1.0
    tau, _ = T.choose_tau([(-0.5, True), (-0.1, True)])
    assert tau < -0.5  # all good: every candidate clears it
    with pytest.raises(ValueError):
        T.choose_tau([])


def test_training_episodes_are_seeded_train_split_episodes():
    plan = T.episodes_plan(0, 20, 10)
    assert plan == T.episodes_plan(0, 20, 10) and plan != T.episodes_plan(1, 20, 10)
    assert [p for p, _, _ in plan] == ["warmup"] * 20 + ["joint"] * 10
    train = set(list_scenarios("train"))
    assert all(s in train for _, s, _ in plan)
    assert len({(s, seed) for _, s, seed in plan}) == len(plan)


# -- the shipped agent --------------------------------------------------------------------


@pytest.mark.slow
def test_the_shipped_loop_plans_verifies_and_acts_on_a_test_incident():
    from pase_gym.harness.runner import Job, _agent, run_episode

    if not (HERE / "mpo.zip").is_file():
        pytest.fail("agents/pase_full/mpo.zip is missing: python agents/pase_full/train.py")
    job = Job("pase_full", "t", "memory-leak-test", 0, "cpu", isolation="in-process")
    agent = _agent("pase_full", "cpu", "in-process")  # the object the run will use
    before = len(agent.fallbacks)
    record = run_episode(job)
    assert record["agent"] == "pase_full" and record["agent_errors"] == 0
    assert record["diagnosis"] is not None
    plans = [parse_plan(p) for p in record["trace"] if p is not None]
    acted = [p for p in plans if p.steps and p.steps[0].name not in INERT]
    assert acted, "the loop executed no plan"
    scores = [f for f in record["feasibility"] if f is not None]
    assert len(scores) == len(acted)  # each executed plan carries its F, above tau
    assert all(f > agent.tau for f in scores)
    probes = [p for p in plans if p.steps and p.steps[0].name == "Inspect"]
    assert len(probes) == len(agent.fallbacks) - before  # each fallback is a logged probe


# -- Fig. 3's strategies ------------------------------------------------------------------

S = A.sibling("strategies")
F3 = sibling(HERE, "fig3")


def _toy(strategy: Any, episodes: int) -> tuple[float, float]:
    """Distance of the acting prompt to a target before and after ``episodes`` of a bandit
    whose reward is minus that distance."""
    target = np.linspace(-0.8, 0.8, M.ACTION_DIM)
    obs = np.zeros(M.OBS_DIM, np.float32)
    rng = np.random.default_rng(5)
    before = float(np.sum((strategy.act(obs) - target) ** 2))
    for _ in range(episodes):
        a = strategy.act(obs, rng)
        assert a.shape == (M.ACTION_DIM,) and np.all(np.abs(a) <= 1.0)
        strategy.add(obs, a, -float(np.sum((a - target) ** 2)))
        strategy.update(4)
    return before, float(np.sum((strategy.act(obs) - target) ** 2))


@pytest.mark.parametrize("name", ["ppo", "reinforce", "es"])
def test_the_learning_strategies_move_the_prompt_towards_what_pays(name: str) -> None:
    strategy = S.build(name, None, seed=0)
    before, after = _toy(strategy, 48)
    assert after < 0.8 * before
    assert strategy.transitions == 48 and strategy.seconds >= 0.0


def test_random_search_acts_with_the_best_prompt_it_tried() -> None:
    rs = S.build("random_search", None, seed=0)
    obs = np.zeros(M.OBS_DIM, np.float32)
    rng = np.random.default_rng(0)
    tried = []
    for r in (0.1, 0.9, 0.4):
        a = rs.act(obs, rng)
        assert np.array_equal(rs.act(obs, rng), a)  # one trial per episode
        rs.add(obs, a, r)
        rs.update(1)
        tried.append(a)
    np.testing.assert_array_equal(rs.act(obs), tried[1])


def test_spsa_steps_along_the_better_side() -> None:
    g = S.build("gradient", None, seed=0)
    obs = np.zeros(M.OBS_DIM, np.float32)
    rng = np.random.default_rng(0)
    plus = g.act(obs, rng)
    g.add(obs, plus, 1.0)
    g.update(1)
    minus = g.act(obs, rng)
    np.testing.assert_allclose(plus + minus, 0.0, atol=1e-6)  # a +- c d around a = 0
    g.add(obs, minus, 0.0)
    g.update(1)
    moved = g.act(obs)
    assert np.all(np.sign(moved) == np.sign(plus))  # towards the side that paid
    with pytest.raises(ValueError, match="unknown strategy"):
        S.build("annealing", None)


def _tiny_engine() -> Any:
    from pase_gym.llm.engine import PlanSynthesisEngine
    from pase_gym.llm.models import tiny_llama

    model, tok = tiny_llama(seed=0)
    return PlanSynthesisEngine(model, tok, prompt_dim=M.ACTION_DIM, max_new_tokens=80)


def test_lora_tuning_starts_as_the_engine_and_raises_the_plans_that_paid() -> None:
    from pase_gym.llm.incident import Incident

    engine = _tiny_engine()
    _, _, info = _incident()
    incident = Incident(info["description"], tuple(info["slot_names"] or info["node_names"]))
    greedy = engine.generate([incident])[0]
    lora = S.build("lora", None, seed=0)
    lora.attach(engine)
    assert lora.prompt_embedding(lora.act(np.zeros(M.OBS_DIM, np.float32))) is None
    again = engine.generate([incident])[0]
    assert again.text == greedy.text and again.tokens == greedy.tokens  # a zero adapter
    assert len(greedy.tokens) == greedy.n_tokens > 0
    good, bad = engine.generate([incident] * 2, temperature=[1.5, 1.5], seed=3)
    assert good.tokens != bad.tokens
    with torch.no_grad():
        before = [float(lora.log_prob(incident, g.tokens)) for g in (good, bad)]
    assert all(b < 0 for b in before)
    for _ in range(3):
        lora.add_generation(incident, good.tokens, 1.0)
        lora.add_generation(incident, bad.tokens, 0.0)
        lora.add(np.zeros(M.OBS_DIM, np.float32), np.zeros(M.ACTION_DIM, np.float32), 0.0)
        lora.update(1)
    with torch.no_grad():
        after = [float(lora.log_prob(incident, g.tokens)) for g in (good, bad)]
    assert after[0] > before[0] and after[0] - before[0] > after[1] - before[1]
    assert lora.transitions == 3 and lora.seconds > 0
    with pytest.raises(ValueError, match="already attached"):
        lora.attach(engine)
    lora.detach()  # the engine decodes as before again
    assert engine.generate([incident])[0].tokens == greedy.tokens


def test_the_loop_hands_a_lora_strategy_its_executed_plans() -> None:
    agent = _tiny(A.LoraTuning, tau=-1e9)
    agent.mpo = S.build("lora", None, seed=0)
    agent.mpo.attach(agent.engine)
    env, obs, info = _incident()
    agent.act(obs, info)
    assert agent.engine.embeddings[-1] is None  # no prompt embedding: the engine's own prompt
    (step,) = agent._executed
    assert step["tokens"] and step["incident"].description == info["description"]
    weights = [p.detach().clone() for p in agent.mpo.peft.parameters() if p.requires_grad]
    agent.learn({"recovered": True, "mttr": 40.0})
    assert agent.mpo.batch == [] and agent.mpo.baseline is not None
    # the first update has no advantage (its own mean is the baseline); the second has one
    agent.reset(1)
    other, obs, info = _incident(seed=1)
    agent.act(obs, info)
    assert len(agent._executed) == 1
    agent.learn({"recovered": False})
    moved = [p for p in agent.mpo.peft.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(weights, moved, strict=True))
    env.close()
    other.close()


def test_fig3_measures_reward_convergence_gap_and_compute() -> None:
    rows = [{"position": i, "safe": s} for i, s in enumerate([True, False] + [True] * 6)]
    info = {
        "rewards": [1.0, 0.0, 0.2, 0.6, 0.8, 0.8, 0.8, 0.8],
        "rows": rows,
        "learn_seconds": 3.0,
        "wall_seconds": 16.0,
        "fallbacks": 2,
    }
    m = F3.metrics(info, switch=2)
    assert m["final_reward"] == pytest.approx(0.76)
    assert m["convergence_episodes"] == 1
    assert m["generalisation_gap"] == pytest.approx((0.5 - 0.76) / 0.5)
    assert m["seconds_per_episode"] == 2.0 and m["fallbacks"] == 2
    assert set(A.STRATEGY_AGENTS) == set(S.STRATEGIES)


def _fig3_info(stream: Any, strategy: str, reward: float) -> dict:
    rows = [{"position": i, "safe": True} for i in range(stream.episodes)]
    return {
        "strategy": strategy,
        "rows": rows,
        "rewards": [reward] * stream.episodes,
        "learn_seconds": 1.0,
        "wall_seconds": 2.0 * stream.episodes,
        "fallbacks": 0,
        "stream": stream.name,
        "switch": stream.switch,
        "episodes": stream.episodes,
        "seed": stream.seed,
    }


def test_fig3_publishes_the_strategies_run_so_far_and_says_not_run_for_the_rest(
    tmp_path: Path,
) -> None:
    from pase_gym.harness.adaptation import stream_of

    stream = stream_of("deadlock")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "es.json").write_text(json.dumps(_fig3_info(stream, "es", 0.5)))
    infos = F3.read_runs(runs, S.STRATEGIES, stream)
    assert list(infos) == ["es"]
    text = F3.publish(infos, S.STRATEGIES, stream, tmp_path / "out")
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if "|" in line}
    assert "0.500" in lines["es"] and "not run" not in lines["es"]
    assert all("not run" in lines[name] for name in S.STRATEGIES if name != "es")
    saved = json.loads((tmp_path / "out" / "fig3.json").read_text())
    assert saved["strategies"]["sac"] is None
    assert saved["strategies"]["es"]["final_reward"] == 0.5
    assert (tmp_path / "out" / "fig3.png").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a Fig. 3 run file"),
        ("[1, 2]", "expected a JSON object"),
        ('{"strategy": "es"}', "missing rows"),
    ],
)
def test_fig3_refuses_a_broken_run_file(tmp_path: Path, content: str, message: str) -> None:
    from pase_gym.harness.adaptation import stream_of

    (tmp_path / "es.json").write_text(content)
    with pytest.raises(F3.RunFileError, match=message):
        F3.read_runs(tmp_path, S.STRATEGIES, stream_of("deadlock"))


def test_fig3_refuses_a_run_of_another_strategy_or_with_bad_numbers(tmp_path: Path) -> None:
    from pase_gym.harness.adaptation import stream_of

    stream = stream_of("deadlock")
    (tmp_path / "ppo.json").write_text(json.dumps(_fig3_info(stream, "sac", 0.1)))
    with pytest.raises(F3.RunFileError, match="a run of 'sac', not of 'ppo'"):
        F3.read_runs(tmp_path, S.STRATEGIES, stream)
    info = _fig3_info(stream, "ppo", 0.1)
    info["rewards"][3] = float("nan")
    (tmp_path / "ppo.json").write_text(json.dumps(info))
    with pytest.raises(F3.RunFileError, match="malformed"):
        F3.read_runs(tmp_path, S.STRATEGIES, stream)
    info = _fig3_info(stream, "ppo", 0.1)
    info["rows"][0] = {"position": 0}
    (tmp_path / "ppo.json").write_text(json.dumps(info))
    with pytest.raises(F3.RunFileError, match="malformed"):
        F3.read_runs(tmp_path, S.STRATEGIES, stream)


def test_fig3_refuses_another_streams_run(tmp_path: Path) -> None:
    from pase_gym.harness.adaptation import stream_of

    short = stream_of("deadlock", episodes=10, switch=4)
    (tmp_path / "sac.json").write_text(json.dumps(_fig3_info(short, "sac", 0.1)))
    with pytest.raises(F3.RunFileError, match="another stream"):
        F3.read_runs(tmp_path, S.STRATEGIES, stream_of("deadlock"))
    assert F3.main(["--strategies", "sac", "--runs", str(tmp_path), "--out", str(tmp_path)]) == 2
