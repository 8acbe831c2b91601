"""LoRA fine-tuning of the plan synthesis engine, on the tiny in-process LLaMA (fast): the
demonstrations, the training loop, the adapters on disk and the command line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft", reason="fine-tuning needs peft (pip install 'pase-gym[llm]')")

from pase_gym.errors import FinetuneError
from pase_gym.llm.adapters import ADAPTER_META, load_adapter, save_adapter
from pase_gym.llm.demonstrations import Demonstration, collect_demonstrations, encode_examples
from pase_gym.llm.training import (
    TrainConfig,
    _batch,
    _lower_states,
    _top_loss,
    add_lora,
    train_lora,
)
from pase_gym.scenarios import load_scenario
from pase_gym.sim.plan import parse_plan

NODES = ("controller-1", "nova-api-1", "nova-api-2", "rabbitmq-1", "mysql-1")
DESCRIPTION = (
    "t=38s. Cloud of 5 active nodes. Alarms on 1 node(s): nova-api-2: HighErrorRate 0.91. "
    "Affected components: nova-api-2 (nova-api on controller-1; depends on mysql, rabbitmq). "
    "Recent logs: nova-api-2: AccessRefused."
)

DEMOS = [
    Demonstration(
        "x", 0, DESCRIPTION, NODES, "Diagnose(config_drift, nova-api-2); Restart(nova-api-2)"
    ),
    Demonstration(
        "x",
        1,
        DESCRIPTION.replace("AccessRefused", "Out of memory"),
        NODES,
        "Diagnose(memory_leak, nova-api-2); Rollback(nova-api-2); Restart(nova-api-2)",
    ),
]


def _fresh():
    from pase_gym.llm.models import tiny_llama

    return tiny_llama(seed=0)


def test_demonstrations_are_oracle_plans_at_the_first_alarm():
    demos = collect_demonstrations(
        "train", seeds=[0, 1], scenarios=["process-crash-train", "disk-full-train"]
    )
    assert len(demos) == 4
    for d in demos:
        assert load_scenario(d.scenario).split == "train"
        plan = parse_plan(d.plan)
        assert plan.diagnosis is not None and plan.steps
        assert plan.diagnosis.node in d.node_names
        assert "Alarms on" in d.description  # taken when an alarm was raised
    crash = [d for d in demos if d.scenario == "process-crash-train"]
    assert all(parse_plan(d.plan).diagnosis.fault_type == "process_crash" for d in crash)  # type: ignore[union-attr]


def test_examples_put_the_loss_on_the_plan_and_eos_only():
    _, tok = _fresh()
    (ids, labels), _ = encode_examples(tok, DEMOS)
    assert len(ids) == len(labels)
    target = [t for t in labels if t != -100]
    assert target[-1] == tok.eos_token_id
    assert tok.decode(target[:-1]) == DEMOS[0].plan
    n_prompt = labels.index(target[0])
    assert all(t == -100 for t in labels[:n_prompt]) and ids[n_prompt:] == target


def test_top_layer_loss_equals_the_full_forward_loss():
    import torch

    model, tok = _fresh()
    model = add_lora(model, TrainConfig(top_layers=1, rank=4))
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # make the adapter non-zero, so it matters
            torch.nn.init.normal_(p, std=0.5)
    examples = encode_examples(tok, DEMOS)
    states = _lower_states(model, examples, cut=1)
    with torch.no_grad():
        fast = _top_loss(model, states, [y for _, y in examples], cut=1)
        ids, labels, mask = _batch(examples, 0, "cpu")
        full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert float(fast) == pytest.approx(float(full), rel=1e-4)


@pytest.mark.parametrize("top_layers", [1, None])
def test_training_lowers_the_loss_and_only_touches_the_adapter(top_layers):
    import torch

    model, tok = _fresh()
    with torch.no_grad():  # a random tiny head's logits are too small to fit anything; widen it
        model.get_output_embeddings().weight.mul_(50)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(steps=25, batch_size=2, lr=1e-2, rank=4, top_layers=top_layers, warmup=2)
    seen = []
    tuned, result = train_lora(model, tok, DEMOS, config, lambda s, n, loss: seen.append(s))
    assert seen == list(range(1, 26)) and len(result.losses) == 25
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert result.trainable_params > 0 and result.seconds > 0
    trainable = [n for n, p in tuned.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    after = {
        k.replace(".base_layer", ""): v
        for k, v in tuned.get_base_model().state_dict().items()
        if "lora_" not in k
    }
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], v) for k, v in before.items())  # base weights frozen


def test_adapter_round_trips_through_save_and_load(tmp_path):
    import torch

    model, tok = _fresh()
    tuned, result = train_lora(
        model, tok, DEMOS, TrainConfig(steps=3, batch_size=2, rank=4, top_layers=1)
    )
    ids = torch.tensor([encode_examples(tok, DEMOS[:1])[0][0]])
    with torch.no_grad():
        want = tuned(input_ids=ids).logits
    path = save_adapter(tuned, tmp_path / "adapter", {"note": "test", **result.as_dict()})
    meta = json.loads((path / ADAPTER_META).read_text())
    assert meta["note"] == "test" and meta["config"]["template"] == "compact"
    assert meta["prompt_versions"]["compact"]
    fresh, _ = _fresh()
    loaded = load_adapter(fresh, path)
    with torch.no_grad():
        got = loaded(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    base, _ = _fresh()
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=ids).logits, want, atol=1e-3)


def test_bad_settings_and_broken_adapters_give_typed_errors(tmp_path):
    model, tok = _fresh()
    with pytest.raises(FinetuneError, match="no demonstrations"):
        train_lora(model, tok, [], TrainConfig(steps=1))
    with pytest.raises(FinetuneError, match="steps"):
        train_lora(model, tok, DEMOS, TrainConfig(steps=0, top_layers=1))
    with pytest.raises(FinetuneError, match="top_layers"):
        train_lora(model, tok, DEMOS, TrainConfig(steps=1, top_layers=99))
    with pytest.raises(FinetuneError, match="no LoRA adapter"):
        load_adapter(_fresh()[0], tmp_path)
    tuned, result = train_lora(
        _fresh()[0], tok, DEMOS, TrainConfig(steps=1, batch_size=2, rank=4, top_layers=1)
    )
    path = save_adapter(tuned, tmp_path / "a", result.as_dict())
    meta = json.loads((path / ADAPTER_META).read_text())
    meta["prompt_versions"]["compact"] = "pse-c0"
    (path / ADAPTER_META).write_text(json.dumps(meta))
    with pytest.raises(FinetuneError, match="retrain"):
        load_adapter(_fresh()[0], path)
