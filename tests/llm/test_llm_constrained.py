"""The plan recogniser and the token constraint."""

from __future__ import annotations

import random

import pytest

from pase_gym.llm.constrained import (
    ConstraintError,
    PlanRecognizer,
    TokenConstraint,
    groups_from_nodes,
)
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan import parse_plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType

NODES = ("controller-1", "nova-api-1", "nova-api-2", "nova-api-10", "rabbitmq-1", "mysql-1")
DESCRIPTION = (
    "t=38s. Cloud of 6 active nodes. Alarms on 1 node(s): nova-api-2: HighErrorRate 0.91. "
    "Affected components: nova-api-2 (nova-api on controller-1; depends on mysql, rabbitmq). "
    "Recent logs: nova-api-2: AccessRefused."
)

VALID = [
    "Diagnose(memory_leak, nova-api-10); Restart(nova-api-10)",
    "Diagnose(cpu_hog, nova-api-1); ScaleOut(nova-api, 3); Wait(600); Restart(nova-api-1)",
    "Diagnose(disk_full, mysql-1); ResizeResource(mysql-1, disk, 4)",
    "Diagnose(queue_backlog, rabbitmq-1); Reroute(nova-api, nova-api-1, nova-api-2)",
]


def random_plan(rng: random.Random, nodes, groups, max_calls: int = 4) -> str:
    """A random plan of the constrained language, built independently of the recogniser."""
    parts = [f"Diagnose({rng.choice(FAULT_NAMES)}, {rng.choice(nodes)})"]
    for _ in range(rng.randint(1, max_calls)):
        spec = rng.choice(list(PRIMITIVES.values()))
        args = []
        for p in spec.params:
            if p.type is ParamType.INT:
                args.append(str(rng.randint(p.lo, p.hi)))
            elif p.type is ParamType.RESOURCE:
                args.append(rng.choice(p.choices))
            elif p.type is ParamType.GROUP:
                args.append(rng.choice(groups))
            else:
                args.append(rng.choice(nodes))
        parts.append(f"{spec.name}({', '.join(args)})")
    return "; ".join(parts)


def test_groups_from_nodes():
    assert groups_from_nodes(NODES) == ["controller", "nova-api", "rabbitmq", "mysql"]


@pytest.mark.parametrize("text", VALID)
def test_every_prefix_of_a_valid_plan_is_accepted(text):
    rec = PlanRecognizer(NODES)
    for i in range(len(text)):
        assert rec.is_prefix(text[:i]), text[:i]
        assert not rec.recognizes(text[:i]) or text[i:].startswith(";"), text[:i]
    assert rec.recognizes(text)
    parse_plan(text)


def test_random_plans_are_recognised():
    rng = random.Random(0)
    groups = groups_from_nodes(NODES)
    rec = PlanRecognizer(NODES)
    for _ in range(300):
        text = random_plan(rng, NODES, groups)
        assert rec.recognizes(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Diagnose(memory_leek, nova-api-1); Restart(nova-api-1)",  # unknown fault type
        "Diagnose(memory_leak, nova-api-3); Restart(nova-api-1)",  # unknown node
        "Diagnose(memory_leak, nova-api-1); Reboot(nova-api-1)",  # unknown primitive
        "Diagnose(memory_leak, nova-api-1); Wait(0)",  # out of range
        "Diagnose(memory_leak, nova-api-1); Wait(601)",
        "Diagnose(memory_leak, nova-api-1); ScaleOut(nova-api-1, 2)",  # node, not group
        "Diagnose(memory_leak, nova-api-1);Restart(nova-api-1)",  # not canonical spacing
        "Restart(nova-api-1)",  # diagnosis required
        "Diagnose(memory_leak, nova-api-1); Restart(nova-api-1, 2)",  # too many arguments
        "Diagnose(memory_leak, nova-api-1); ResizeResource(mysql-1, gpu, 1)",
        "Diagnose(memory_leak, nova-api-1)" + "; Wait(1)" * 5,  # more than 4 calls
    ],
)
def test_invalid_continuations_are_rejected(text):
    rec = PlanRecognizer(NODES)
    assert not rec.recognizes(text)
    # the first offending character is where the prefix stops being valid
    good = max(i for i in range(len(text) + 1) if rec.is_prefix(text[:i]))
    assert good < len(text) or not rec.recognizes(text)


def test_end_only_after_enough_calls():
    rec = PlanRecognizer(NODES, min_calls=1)
    assert not rec.recognizes("Diagnose(memory_leak, nova-api-1)")
    assert PlanRecognizer(NODES, min_calls=0).recognizes("Diagnose(memory_leak, nova-api-1)")


def test_optional_diagnosis():
    rec = PlanRecognizer(NODES, require_diagnosis=False)
    assert rec.recognizes("Drain(nova-api-1)")
    assert rec.recognizes("Diagnose(cpu_hog, mysql-1); Drain(nova-api-1)")


def test_completion_is_shortest_valid_plan():
    rec = PlanRecognizer(NODES)
    for prefix in ["", "Diagnose(mem", "Diagnose(memory_leak, nova-api-1); Scale"]:
        state = rec.feed_text(rec.initial(), prefix)
        assert state is not None
        text = prefix + rec.complete(state)
        assert rec.recognizes(text)
        parse_plan(text)


def test_bad_inputs_raise_typed_errors():
    with pytest.raises(ConstraintError):
        PlanRecognizer([])
    with pytest.raises(ConstraintError):
        PlanRecognizer(NODES, primitives=["Reboot"])


def test_token_constraint_allows_exactly_the_valid_tokens(tiny):
    _, tokenizer = tiny
    con = TokenConstraint(PlanRecognizer(NODES), tokenizer)
    state = con.state_of("Diagnose(memory_leak, nova-api-1")
    assert state is not None
    allowed = set(con.allowed(state))
    for i, s in enumerate(con.strings):
        ok = s is not None and con.recognizer.feed_text(state, s) is not None
        assert (i in allowed) == ok, (i, s)
    assert not set(con.eos) & allowed  # the plan is not complete yet
    done = con.state_of("Diagnose(memory_leak, nova-api-1); Restart(nova-api-1)")
    assert done is not None
    assert set(con.eos) <= set(con.allowed(done))


def test_prefix_allowed_tokens_fn_with_generate(tiny):
    import torch

    model, tokenizer = tiny
    con = TokenConstraint(PlanRecognizer(NODES, max_calls=2), tokenizer, model)
    prompt = tokenizer(["Plan:"], return_tensors="pt")
    n = prompt["input_ids"].shape[1]
    out = model.generate(
        **prompt,
        max_new_tokens=200,
        do_sample=False,
        prefix_allowed_tokens_fn=con.prefix_allowed_tokens_fn([n]),
        pad_token_id=tokenizer.pad_token_id,
    )
    ids = [int(x) for x in out[0, n:] if int(x) not in con.eos and int(x) != tokenizer.pad_token_id]
    text = "".join(con.strings[i] or "" for i in ids)
    assert con.recognizer.is_prefix(text)
    assert torch.is_tensor(out)
