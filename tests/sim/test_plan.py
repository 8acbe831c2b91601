"""Tests of the plan grammar, the structured plan form and their error reports."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pase_gym.errors import PlanError
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan import (
    MAX_NAME_LENGTH,
    MAX_STEPS,
    MAX_TEXT_LENGTH,
    PLAN_GRAMMAR,
    Call,
    Diagnosis,
    Plan,
    format_plan,
    parse_plan,
)
from pase_gym.sim.primitives import PRIMITIVES, Param, ParamType

CANONICAL = "Diagnose(memory_leak, nova-compute-3); Restart(nova-compute-3); ScaleOut(compute, 1)"
EXPECTED = Plan(
    (Call("Restart", ("nova-compute-3",)), Call("ScaleOut", ("compute", 1))),
    Diagnosis("memory_leak", "nova-compute-3"),
)


def plan_error(text: object) -> PlanError:
    """The PlanError that parsing ``text`` raises (and nothing else)."""
    with pytest.raises(PlanError) as info:
        parse_plan(text)  # type: ignore[arg-type]
    err = info.value
    assert type(err) is PlanError
    assert isinstance(err, ValueError)
    return err


def structured_error(obj: object) -> PlanError:
    """The PlanError that ``Plan.from_structured(obj)`` raises."""
    with pytest.raises(PlanError) as info:
        Plan.from_structured(obj)
    err = info.value
    assert type(err) is PlanError
    assert isinstance(err, ValueError)
    return err


# --- examples -------------------------------------------------------------------------------


def test_canonical_example() -> None:
    plan = parse_plan(CANONICAL)
    assert plan == EXPECTED
    assert str(plan) == CANONICAL == format_plan(plan)
    assert len(plan) == 2
    assert plan.diagnosis == Diagnosis("memory_leak", "nova-compute-3")
    assert plan.steps[1].spec() is PRIMITIVES["ScaleOut"]
    assert plan.steps[1].kwargs() == {"group": "compute", "count": 1}
    assert plan.to_structured() == {
        "diagnosis": {"fault_type": "memory_leak", "node": "nova-compute-3"},
        "steps": [
            {"primitive": "Restart", "args": {"node": "nova-compute-3"}},
            {"primitive": "ScaleOut", "args": {"group": "compute", "count": 1}},
        ],
    }
    assert Plan.from_structured(json.loads(json.dumps(plan.to_structured()))) == plan


@pytest.mark.parametrize(
    "text",
    [
        "Diagnose(fault_type=memory_leak, node=nova-compute-3)\n"
        "Restart(node=nova-compute-3)\nScaleOut(count=1, group=compute)",
        "Diagnose(memory_leak, node='nova-compute-3'); Restart(\"nova-compute-3\");"
        " ScaleOut('compute', \"1\");",
        "# the runbook\n  Diagnose( memory_leak ,nova-compute-3 )  # blame it\n\n"
        "Restart(nova-compute-3) ;;\r\n\tScaleOut(compute, +1)\n# done\n",
        "\n\nDiagnose(memory_leak,nova-compute-3);Restart(nova-compute-3);ScaleOut(compute,01);\n",
    ],
)
def test_equivalent_spellings(text: str) -> None:
    assert parse_plan(text) == EXPECTED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wait(30)", [Call("Wait", (30,))]),
        (
            "ResizeResource(nova-api-1, memory, 2)",
            [Call("ResizeResource", ("nova-api-1", "memory", 2))],
        ),
        ("Reroute(web, source=web-0, target=web-1)", [Call("Reroute", ("web", "web-0", "web-1"))]),
        (
            "Failover(cinder-volume.localhost@lvm)",
            [Call("Failover", ("cinder-volume.localhost@lvm",))],
        ),
        ("Throttle(mysql:3306, percent=10)", [Call("Throttle", ("mysql:3306", 10))]),
        ("", []),
        ("  ;\n # nothing here\n;", []),
    ],
)
def test_examples(text: str, expected: list[Call]) -> None:
    plan = parse_plan(text)
    assert plan == Plan(tuple(expected))
    assert parse_plan(str(plan)) == plan


def test_diagnosis_only() -> None:
    plan = parse_plan("Diagnose(disk_full, 3par)")
    assert plan == Plan((), Diagnosis("disk_full", "3par"))
    assert len(plan) == 0 and str(plan) == "Diagnose(disk_full, 3par)"


def test_value_objects() -> None:
    assert str(Call("Wait", (30,))) == "Wait(30)"
    assert (
        str(Diagnosis("memory_leak", "nova-compute-3")) == "Diagnose(memory_leak, nova-compute-3)"
    )
    from_list = Plan([Call("Wait", (1,))])  # type: ignore[arg-type]
    assert from_list.steps == (Call("Wait", (1,)),)
    assert len(Plan.empty()) == 0 and str(Plan.empty()) == ""
    assert "Diagnose" in PLAN_GRAMMAR and "identifier" in PLAN_GRAMMAR
    bad_values: list[Callable[[], object]] = [
        lambda: Call("Restrat", ("x",)),
        lambda: Call("Wait", (0,)),
        lambda: Call("Wait", (True,)),
        lambda: Call("Wait", ["1"]),  # type: ignore[arg-type]
        lambda: Call("Restart", ("123",)),
        lambda: Diagnosis("nope", "x"),
        lambda: Plan(("Wait(1)",)),  # type: ignore[arg-type]
        lambda: Plan((Call("Wait", (1,)),) * (MAX_STEPS + 1)),
        lambda: Plan((), "memory_leak"),  # type: ignore[arg-type]
    ]
    for bad in bad_values:
        with pytest.raises(PlanError):
            bad()


def test_length_limits() -> None:
    longest = "n" * MAX_NAME_LENGTH
    plan = Plan(
        (Call("Reroute", (longest, longest, longest)),) * MAX_STEPS,
        Diagnosis("cpu_memory_deadlock", longest),
    )
    assert len(str(plan)) <= MAX_TEXT_LENGTH
    assert parse_plan(str(plan)) == plan
    assert Plan.from_structured(plan.to_structured()) == plan
    text = "Wait(1)\n" * (MAX_STEPS + 1)
    err = plan_error(text)
    assert err.position == text.index("Wait", 8 * MAX_STEPS) and "too long" in str(err)
    err = plan_error(" " * (MAX_TEXT_LENGTH + 1))
    assert err.position == MAX_TEXT_LENGTH and err.found == f"{MAX_TEXT_LENGTH + 1} characters"
    err = structured_error({"steps": [{"primitive": "Wait", "args": {"ticks": 1}}] * 65})
    assert err.position == MAX_STEPS
    err = plan_error(f"Restart({'n' * (MAX_NAME_LENGTH + 1)})")
    assert err.position == 8 and "invalid node name" in str(err)


# --- text errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "expected", "found", "message"),
    [
        ("restart(x)", 0, "a primitive name", "'restart'", "did you mean Restart?"),
        ("Restrat(x)", 0, "a primitive name", "'Restrat'", "did you mean Restart?"),
        ("Frobnicate(x)", 0, "a primitive name", "'Frobnicate'", "unknown primitive"),
        ("Restart(x); Diagnose(memory_leak, x)", 12, "a primitive name", "'Diagnose'", "first"),
        ("Diagnose(cpu_hog, x)\nDiagnose(cpu_hog, x)", 21, "a primitive", "'Diagnose'", "only one"),
        ("Diagnose(memleak, x)", 9, "memory_leak", "'memleak'", "did you mean memory_leak?"),
        ("Diagnose(fault_type=nope, node=x)", 20, "one of process_crash", "'nope'", "fault type"),
        ("Restart(x", 9, "')' or ','", "end of input", "syntax error"),
        ("Restart(x\nWait(3)", 9, "')' or ','", "end of line", "syntax error"),
        ("Restart x", 8, "'('", "'x'", "syntax error"),
        ("Restart(x) Wait(3)", 11, "';' or a new line", "'Wait'", "syntax error"),
        ("Restart(x, y)", 11, "at most 1", "'y'", "too many arguments"),
        ("Restart()", 8, "a node name", "')'", "missing argument 'node'"),
        ("ScaleOut(compute, 9)", 18, "an int in [1, 8]", "'9'", "'count' out of range"),
        ("Wait(0)", 5, "an int in [1, 600]", "'0'", "'ticks' out of range"),
        ("Wait(-5)", 5, "an int in [1, 600]", "'-5'", "out of range"),
        ("Wait(" + "9" * 5000 + ")", 5, "an int in [1, 600]", "'999", "out of range"),
        ("Wait(thirty)", 5, "an int in [1, 600]", "'thirty'", "must be an integer"),
        ("ResizeResource(x, memroy, 2)", 18, "one of cpu", "'memroy'", "did you mean memory?"),
        ("ResizeResource(x, 1, 2)", 18, "one of cpu, memory, disk", "integer 1", "not an integer"),
        ("Restart(3)", 8, "a node name", "integer 3", "must be a name, not an integer"),
        ("Restart('3')", 8, "a node name", "integer 3", "must be a name, not an integer"),
        ("Restart('nova-compute-3)", 8, "a closing \"'\"", "end of input", "unterminated quote"),
        ('Restart("x\nWait(3)', 8, "a closing '\"'", "end of line", "unterminated quote"),
        ("Restart(x $)", 10, "')' or ','", "'$'", "syntax error"),
        ("$Restart(x)", 0, "a primitive name", "'$'", "syntax error"),
        ("Restart(x)\n€", 11, "a primitive name", "'€'", "syntax error"),
        ("Restart(,x)", 8, "an argument", "','", "empty argument"),
        ("ScaleOut(compute,)", 17, "an argument", "')'", "empty argument"),
        ("Restart('')", 8, "an integer or identifier", "\"''\"", "empty argument"),
        ("Restart('nova compute')", 8, "an integer or identifier", "\"'nova compute'\"", "invalid"),
        ("Wait(+x)", 5, "an integer or identifier", "'+x'", "invalid value"),
        ("Restart(nod=x)", 8, "one of node", "'nod'", "unknown keyword"),
        ("Restart(node=x, node=y)", 16, "one of node", "'node'", "given twice"),
        ("ScaleOut(compute, group=web)", 18, "one of group, count", "'group'", "given twice"),
        ("ScaleOut(count=1, compute)", 18, "param=value", "'compute'", "positional argument after"),
        ("Restart(node=)", 13, "an argument", "')'", "empty argument"),
        ("Wait(1) # fine\n(", 15, "a primitive name", "'('", "syntax error"),
    ],
)  # fmt: skip
def test_text_errors(text: str, position: int, expected: str, found: str, message: str) -> None:
    err = plan_error(text)
    assert err.position == position
    assert err.expected is not None and expected in err.expected
    assert err.found is not None and err.found.startswith(found)
    assert message in str(err)
    assert f"at position {position}" in str(err)


@pytest.mark.parametrize("value", [None, 3, b"Wait(1)", ["Wait(1)"], EXPECTED])
def test_non_str_input(value: object) -> None:
    err = plan_error(value)
    assert err.position is None
    assert err.expected == "a str"
    assert "must be a str" in str(err)


# --- structured errors ----------------------------------------------------------------------

_OK = {"primitive": "Wait", "args": {"ticks": 1}}


def _steps(*steps: object, **extra: object) -> dict[str, object]:
    return {"steps": list(steps), **extra}


def _step(primitive: object, **args: object) -> dict[str, object]:
    return {"primitive": primitive, "args": args}


@pytest.mark.parametrize(
    ("obj", "position", "expected", "found", "message"),
    [
        (["Wait(1)"], None, "a dict", "a list", "plan must be a mapping"),
        (_steps(extra=1), None, "'steps', 'diagnosis'", "'extra'", "unknown key"),
        ({"diagnosis": None}, None, "keys 'steps'", "no such key", "missing key 'steps'"),
        ({"steps": "Wait(1)"}, None, "a list", "'Wait(1)'", "'steps' must be a list"),
        (_steps(_OK, 7), 1, "a dict", "7", "steps[1] must be a mapping"),
        (_steps({"primitive": "Wait"}), 0, "'primitive', 'args'", "no such key", "key 'args'"),
        (_steps({**_OK, "why": "x"}), 0, "'primitive', 'args'", "'why'", "unknown key"),
        (_steps(_OK, _step("wait")), 1, "a primitive name", "'wait'", "did you mean Wait?"),
        (_steps(_step(None)), 0, "a primitive name", "None", "unknown primitive"),
        (_steps(_step("Diagnose")), 0, "a primitive name", "'Diagnose'", "'diagnosis' key"),
        (_steps({**_OK, "args": [1]}), 0, "a dict with keys 'ticks'", "a list", "args must be"),
        (_steps(_step("Wait", tick=1)), 0, "'ticks'", "'tick'", "did you mean ticks?"),
        (_steps(_step("Wait")), 0, "an int in [1, 600]", "none", "missing argument 'ticks'"),
        (
            _steps(_step("Wait", ticks="30")),
            0,
            "an int in [1, 600]",
            "'30'",
            "steps[0] (Wait): argument 'ticks' must be an integer",
        ),
        (_steps(_step("Wait", ticks=True)), 0, "an int", "a bool", "must be an integer"),
        (_steps(_step("Wait", ticks=30.0)), 0, "an int", "a float", "must be an integer"),
        (
            _steps(_OK, _OK, _step("ScaleOut", group="c", count=9)),
            2,
            "an int in [1, 8]",
            "9",
            "steps[2] (ScaleOut): argument 'count' out of range",
        ),
        (
            _steps(_step("ResizeResource", node="x", resource="ram", amount=1)),
            0,
            "one of cpu, memory, disk",
            "'ram'",
            "unknown resource",
        ),
        (_steps(_step("Restart", node="a b")), 0, "a node name", "'a b'", "invalid node name"),
        (_steps(_step("Restart", node=3)), 0, "a node name", "3", "invalid node name"),
        (_steps(_step("ScaleOut", group="", count=1)), 0, "a group name", "''", "group name"),
        (
            _steps(diagnosis="memory_leak"),
            None,
            "'fault_type', 'node'",
            "'memory_leak'",
            "diagnosis must be a mapping",
        ),
        (
            _steps(diagnosis={"fault_type": "oom", "node": "x"}),
            None,
            "one of process_crash",
            "'oom'",
            "unknown fault type",
        ),
        (
            _steps(diagnosis={"fault_type": "cpu_hog"}),
            None,
            "'fault_type', 'node'",
            "no such key",
            "missing key 'node'",
        ),
    ],
)
def test_structured_errors(
    obj: object, position: int | None, expected: str, found: str, message: str
) -> None:
    err = structured_error(obj)
    assert err.position == position
    assert err.expected is not None and expected in err.expected
    assert err.found is not None and err.found.startswith(found)
    assert message in str(err)


def test_structured_accepts_value_objects() -> None:
    obj = {"diagnosis": EXPECTED.diagnosis, "steps": [EXPECTED.steps[0], _OK]}
    plan = Plan.from_structured(obj)
    assert plan == Plan((EXPECTED.steps[0], Call("Wait", (1,))), EXPECTED.diagnosis)
    assert Plan.from_structured({"steps": ()}) == Plan.empty()


# --- property-based -------------------------------------------------------------------------

_START = string.ascii_letters + string.digits + "_"
node_names = st.one_of(
    st.sampled_from(["nova-compute-3", "cinder-volume.localhost@lvm", "mysql:3306", "3par", "_"]),
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(_START),
        st.text(_START + ".@:-", max_size=MAX_NAME_LENGTH - 1),
    ).filter(lambda name: not name.isdigit()),
)


def values(param: Param) -> st.SearchStrategy[Any]:
    """Valid values of ``param``."""
    if param.type is ParamType.INT:
        return st.integers(param.lo, param.hi)
    if param.type is ParamType.RESOURCE:
        return st.sampled_from(param.choices)
    return node_names


def _calls_of(name: str) -> st.SearchStrategy[Call]:
    args = st.tuples(*(values(p) for p in PRIMITIVES[name].params))
    return args.map(lambda a: Call(name, a))


calls = st.sampled_from(sorted(PRIMITIVES)).flatmap(_calls_of)
diagnoses = st.builds(Diagnosis, st.sampled_from(FAULT_NAMES), node_names)
plans = st.builds(Plan, st.lists(calls, max_size=8).map(tuple), st.none() | diagnoses)


def check_parse(text: str) -> None:
    """``parse_plan`` returns a plan that round-trips, or raises a complete PlanError."""
    try:
        plan = parse_plan(text)
    except PlanError as err:
        assert type(err) is PlanError
        assert err.position is not None and 0 <= err.position <= len(text)
        assert err.expected and err.found
        return
    assert isinstance(plan, Plan)
    assert parse_plan(str(plan)) == plan


@settings(max_examples=300, deadline=None)
@given(plans)
def test_round_trips(plan: Plan) -> None:
    assert parse_plan(str(plan)) == plan
    assert Plan.from_structured(plan.to_structured()) == plan
    assert Plan.from_structured(json.loads(json.dumps(plan.to_structured()))) == plan
    assert format_plan(plan) == str(plan)
    assert len(plan) == len(plan.steps)


def _spell(statement: str, params: tuple[str, ...], args: tuple[Any, ...], data: Any) -> str:
    """``statement`` written with random keyword arguments, quotes and blanks."""
    n_positional = data.draw(st.integers(0, len(args)))
    keyword = data.draw(st.permutations(range(n_positional, len(args))))
    pad = st.sampled_from(["", " ", "  ", "\t"])
    parts = []
    for i in [*range(n_positional), *keyword]:
        quote = data.draw(st.sampled_from(["", "'", '"']))
        value = f"{quote}{args[i]}{quote}"
        parts.append(value if i < n_positional else f"{params[i]}{data.draw(pad)}={value}")
    inner = ",".join(data.draw(pad) + part + data.draw(pad) for part in parts)
    return f"{data.draw(pad)}{statement}{data.draw(pad)}({inner}){data.draw(pad)}"


@settings(max_examples=200, deadline=None)
@given(plans, st.data())
def test_free_spellings_parse_to_the_same_plan(plan: Plan, data: Any) -> None:
    statements = []
    if plan.diagnosis is not None:
        diag = plan.diagnosis
        statements.append(
            _spell("Diagnose", ("fault_type", "node"), (diag.fault_type, diag.node), data)
        )
    for step in plan.steps:
        statements.append(_spell(step.name, step.spec().param_names(), step.args, data))
    seps = st.sampled_from([";", "\n", " ; ", ";\n\n", "  # note\n", "\r\n", ";;"])
    text = "".join(s + data.draw(seps) for s in statements)
    assert parse_plan(data.draw(seps) + text) == plan


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    check_parse(text)


_PIECES = [
    "(", ")", ";", ",", "=", "\n", " ", "'", '"', "#", "$", "é", "+", "-", "0", "7", "600",
    "99999999999999999999999", "Restart", "Diagnose", "ScaleOut", "Wait", "ResizeResource",
    "memory_leak", "memory", "node", "count", "ticks", "nova-compute-3", "compute", "x",
]  # fmt: skip


@settings(max_examples=700, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_grammar_shaped_text(text: str) -> None:
    check_parse(text)


@settings(max_examples=400, deadline=None)
@given(
    plans,
    st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "replace"]),
            st.integers(0, 10_000),
            st.sampled_from("();,=\n '\"#$0-9a_.@é"),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_plan_text(plan: Plan, edits: list[tuple[str, int, str]]) -> None:
    text = str(plan)
    for op, where, char in edits:
        i = where % (len(text) + 1)
        if op == "insert":
            text = text[:i] + char + text[i:]
        elif text:
            i = min(i, len(text) - 1)
            text = text[:i] + ("" if op == "delete" else char) + text[i + 1 :]
    check_parse(text)


_KEYS = st.sampled_from(
    ["diagnosis", "steps", "primitive", "args", "fault_type", "node", "group", "count", "ticks"]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["Wait", "Restart", "ScaleOut", "memory_leak", "compute", "cpu", *PRIMITIVES]),
)
junk = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def check_structured(obj: object) -> None:
    """``Plan.from_structured`` returns a plan or raises PlanError, nothing else."""
    try:
        plan = Plan.from_structured(obj)
    except PlanError as err:
        assert type(err) is PlanError
        assert err.expected and err.found
        return
    assert Plan.from_structured(plan.to_structured()) == plan
    assert parse_plan(str(plan)) == plan


@settings(max_examples=300, deadline=None)
@given(junk)
def test_junk_structured(obj: object) -> None:
    check_structured(obj)


def _containers(obj: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair inside a nested structure of dicts and lists."""
    found: list[tuple[Any, Any]] = []
    keys = obj.keys() if isinstance(obj, dict) else range(len(obj)) if isinstance(obj, list) else []
    for key in list(keys):
        found.append((obj, key))
        found.extend(_containers(obj[key]))
    return found


@settings(max_examples=300, deadline=None)
@given(plans, st.data())
def test_mutated_structured(plan: Plan, data: Any) -> None:
    obj = plan.to_structured()
    for _ in range(data.draw(st.integers(1, 3))):
        slots = _containers(obj)
        if not slots:
            break
        container, key = data.draw(st.sampled_from(slots))
        op = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            container[key] = data.draw(junk)
        elif op == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[data.draw(_KEYS)] = data.draw(junk)
        else:
            container.append(data.draw(junk))
    check_structured(obj)
