"""Property-based fuzzing of every input a user or an agent hands the project.

Five targets: structured actions, plan text, the dry run ``simulate``, scenario files and
results records. For each, hypothesis draws hostile inputs together with an independent
statement of whether the input is valid (written here, from the documentation, not from the
code under test), and checks:

* no untyped exception: the only exception that escapes is the project's typed error
  (``PlanError``, ``ScenarioError``, ``ResultsError``), and ``env.step`` never raises at all;
* no silently accepted invalid input: what the statement calls invalid is refused, and what
  is accepted satisfies the documented invariants;
* bounded time: each input within hypothesis's ``deadline``.

CI runs :data:`EXAMPLES` inputs per target. The long run of the README sets
``PASE_FUZZ_EXAMPLES`` (20,000 per target: 100,000 inputs)::

    PASE_FUZZ_EXAMPLES=20000 pytest tests/fuzz -p no:cacheprovider --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import math
import os
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.core import MALFORMED_PENALTY, episode_of
from pase_gym.env.spaces import NUMBER_SLOTS, PRIMITIVE_NAMES, RESOURCE_SLOTS
from pase_gym.errors import PlanError, ResultsError, ScenarioError
from pase_gym.harness.records import RunStore, record_key
from pase_gym.harness.runner import Job, run_episode
from pase_gym.scenarios import load_scenario
from pase_gym.scenarios.schema import MAX_SEED
from pase_gym.sim.faults import FAULT_MODELS, fault_names
from pase_gym.sim.plan import MAX_STEPS, parse_plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.topology import MAX_NODES, MIN_NODES, SIZE_PRESETS

EXAMPLES = int(os.environ.get("PASE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5_000,  # ms per input: far above any honest input's cost, far below a hang
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the temporary folder is shared by examples
    ],
    derandomize=EXAMPLES <= 150,  # CI draws the same inputs every run
    database=None,
)
TINY = "PASE-OpenStack-Test-v4"  # padded node slots, so padding is exercised too
MAX_BUILT_NODES = 2_000  # accepted scenarios up to this size are built into an episode


# ---- a live env at an open incident, restored for every example ---------------------------
@lru_cache(maxsize=1)
def _snapshot() -> tuple[bytes, int, int, tuple[str, ...]]:
    env = gym.make(TINY, start="incident")
    env.reset(seed=3)
    base: Any = env.unwrapped
    return pickle.dumps(env), episode_of(env).topology.n, base.shapes.nodes, base.shapes.groups


def _env() -> gym.Env[Any, Any]:
    env: gym.Env[Any, Any] = pickle.loads(_snapshot()[0])
    return env


def _assert_no_op(env: gym.Env[Any, Any], reward: float, info: dict[str, Any]) -> None:
    assert isinstance(info["plan_error"], str) and info["plan_error"]
    assert reward <= -MALFORMED_PENALTY
    assert episode_of(env).results == [] and episode_of(env).diagnoses == []


# ---- 1. structured actions ------------------------------------------------------------------
# Each slot value comes with its kind; the action is valid exactly when the statement below
# (from the action space's documentation) says so.
HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: ("float", v)),
    st.booleans().map(lambda v: ("bool", v)),
    st.none().map(lambda v: ("none", v)),
    st.text(max_size=5).map(lambda v: ("str", v)),
    st.lists(st.integers(0, 3), max_size=3).map(lambda v: ("list", v)),
    st.integers(-(10**30), 10**30).map(lambda v: ("int", v)),
    st.integers(0, 5).map(lambda v: ("int", np.int64(v))),
    st.integers(0, 5).map(lambda v: ("int", np.array(v))),
    st.integers(0, 5).map(lambda v: ("array1", np.array([v]))),
)


@st.composite
def _slot(draw: st.DrawFn, size: int) -> tuple[str, Any]:
    """Mostly in-range integers (so that valid actions are common), one time in eight anything."""
    if draw(st.integers(0, 7)) == 0:
        return draw(HOSTILE)
    value = draw(st.integers(0, max(size - 1, 0)))
    return ("int", value) if draw(st.booleans()) else ("int", np.int64(value))


def _int_in(kind_value: tuple[str, Any], size: int) -> bool:
    kind, value = kind_value
    return kind == "int" and 0 <= int(value) < size


@st.composite
def structured_actions(draw: st.DrawFn) -> tuple[Any, bool]:
    _, n, slots, groups = _snapshot()
    sizes = {
        "primitive": len(PRIMITIVE_NAMES),
        "node": slots,
        "target": slots,
        "group": max(len(groups), 1),
        "number": NUMBER_SLOTS,
        "resource": RESOURCE_SLOTS,
    }
    valid = True
    steps: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 30)) == 0:
            steps.append(draw(st.sampled_from([None, 3, "Wait(5)", [1, 2]])))
            valid = False
            continue
        step: dict[str, Any] = {}
        drawn: dict[str, tuple[str, Any]] = {}
        for key, size in sizes.items():
            if draw(st.integers(0, 9)) > 0:  # a slot is left out one time in ten
                drawn[key] = draw(_slot(size))
                step[key] = drawn[key][1]
        if draw(st.integers(0, 20)) == 0:
            step[draw(st.sampled_from(["junk", "Node", "steps"]))] = 0
            valid = False
        # the statement: every present slot is an int in its range; the primitive's slots
        # are present; node slots name real (not padding) nodes
        valid &= all(_int_in(v, sizes[k]) for k, v in drawn.items())
        if valid and "primitive" in drawn:
            spec = PRIMITIVES[PRIMITIVE_NAMES[int(drawn["primitive"][1])]]
            needed = []
            nodes = iter(("node", "target"))
            for param in spec.params:
                if param.type is ParamType.NODE:
                    needed.append(next(nodes))
                elif param.type is ParamType.GROUP:
                    needed.append("group")
                elif param.type is ParamType.INT:
                    needed.append("number")
                else:
                    needed.append("resource")
            valid &= all(k in drawn for k in needed)
            if valid:
                valid &= all(int(drawn[k][1]) < n for k in ("node", "target") if k in needed)
        else:
            valid = False
        steps.append(step)
    if draw(st.integers(0, 40)) == 0:
        steps = steps * (MAX_STEPS + 1) if steps else [{}] * 1_000_000  # too long
        valid = False
    action: dict[str, Any] = {"steps": draw(st.sampled_from([list, tuple]))(steps)}
    if draw(st.booleans()):
        fault = draw(_slot(len(fault_names()) + 1))
        diagnosis: dict[str, Any] = {"fault": fault[1]}
        valid &= _int_in(fault, len(fault_names()) + 1)
        if draw(st.integers(0, 10)) > 0:
            node = draw(_slot(slots))
            diagnosis["node"] = node[1]
            valid &= _int_in(node, slots) and (fault[1] == 0 or int(node[1]) < n)
        elif valid and int(fault[1]) > 0:
            valid = False  # a diagnosis needs its node
        action["diagnosis"] = diagnosis
    if draw(st.integers(0, 20)) == 0:
        action["extra"] = 1
        valid = False
    return action, valid


@FUZZ
@given(structured_actions())
def test_structured_actions(case: tuple[Any, bool]) -> None:
    action, valid = case
    env = _env()
    obs, reward, _, _, info = env.step(action)
    assert env.observation_space.contains(obs) and math.isfinite(float(reward))
    event("accepted" if info["plan_error"] is None else "refused")
    if valid:
        assert info["plan_error"] is None, info["plan_error"]
    else:
        _assert_no_op(env, float(reward), info)


# ---- 2. plan text ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _fragments() -> list[str]:
    env = pickle.loads(_snapshot()[0])
    names = list(episode_of(env).topology.names[:6])
    return [
        *PRIMITIVES,
        "Diagnose",
        *fault_names()[:4],
        *names,
        "no-such-node",
        "nova-api",
        *"(),;=#'\"\n",
        "600",
        "-1",
        "99999999999999999999",
        "1e3",
        "node=",
        " ",
    ]


@st.composite
def plan_texts(draw: st.DrawFn) -> str:
    """Plans built from the grammar (mostly valid: real nodes, in-range numbers)."""
    names = [n for n in _fragments() if "-" in n and n[-1].isdigit()] + ["no-such-node"]
    calls = []
    if draw(st.booleans()):
        fault = draw(st.sampled_from(list(fault_names())))
        calls.append(f"Diagnose({fault}, {draw(st.sampled_from(names))})")
    for _ in range(draw(st.integers(0, 4))):
        node = draw(st.sampled_from(names))
        calls.append(
            draw(
                st.sampled_from(
                    [
                        f"Wait({draw(st.integers(-5, 700))})",
                        f"Restart({node})",
                        f"Drain({node})",
                        f"Throttle({node}, {draw(st.integers(0, 120))})",
                        f"ScaleOut(nova-api, {draw(st.integers(0, 5))})",
                    ]
                )
            )
        )
    return draw(st.sampled_from(["; ", "\n", ";"])).join(calls)


TEXTS = st.one_of(
    plan_texts(),
    st.text(max_size=80),
    st.lists(st.sampled_from(_fragments()), max_size=16).map("".join),
    st.lists(st.sampled_from(_fragments()), max_size=16).map(" ".join),
    st.binary(max_size=40).map(lambda b: b.decode("utf-8", "replace")),
)


def _text_is_valid(text: str, names: set[str]) -> bool:
    try:
        plan = parse_plan(text)
    except PlanError:
        return False
    return plan.diagnosis is None or plan.diagnosis.node in names


@FUZZ
@given(TEXTS)
def test_plan_text(text: str) -> None:
    env = _env()
    valid = _text_is_valid(text, set(episode_of(env).topology.names))
    obs, reward, _, _, info = env.step(text)
    assert env.observation_space.contains(obs) and math.isfinite(float(reward))
    event("accepted" if valid else "refused")
    if valid:
        assert info["plan_error"] is None
    else:
        _assert_no_op(env, float(reward), info)


# ---- 3. the dry run -------------------------------------------------------------------------
@FUZZ
@given(st.one_of(TEXTS, structured_actions().map(lambda case: case[0])))
def test_simulate(action: Any) -> None:
    env = _env()
    episode = episode_of(env)
    tick, results = episode.state.tick, len(episode.results)
    try:
        prediction = env.unwrapped.simulate(action)  # type: ignore[attr-defined]
    except PlanError:
        event("refused")
    else:
        event("predicted")
        assert isinstance(prediction.recovered, bool)
        assert prediction.ticks >= 0 and math.isfinite(prediction.cost)
        assert episode.state.tick + prediction.ticks <= episode.scenario.budget
    assert episode.state.tick == tick and len(episode.results) == results  # untouched


# ---- 4. scenario files ----------------------------------------------------------------------
BASE_SCENARIO: dict[str, Any] = {
    "name": "fuzzed",
    "split": "test",
    "topology": {"nodes": 30, "seed": 1},
    "workload": {"profile": "deployment", "intensity": 1.0},
    "faults": [{"type": "memory_leak", "onset": [20, 40], "params": {"rate": 0.05}}],
    "recovery": {"hold": 60},
    "budget": 600,
}
PATHS = [
    ("name",),
    ("split",),
    ("topology", "nodes"),
    ("topology", "seed"),
    ("workload", "profile"),
    ("workload", "intensity"),
    ("faults",),
    ("faults", 0, "type"),
    ("faults", 0, "onset"),
    ("faults", 0, "params"),
    ("faults", 0, "params", "rate"),
    ("faults", 0, "role"),
    ("faults", 0, "node"),
    ("recovery", "hold"),
    ("budget",),
    ("junk",),
]
YAML_VALUES = st.one_of(
    st.integers(-(10**25), 10**25),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([".nan", ".inf", "-.inf", "1e308", "-1e308", "~", "true", "[]", "{}"]),
    st.text(max_size=12),
    st.sampled_from(["process_crash", "nova-api", "small", "tiny", "train", "unseen", "DEPL"]),
    st.lists(st.integers(-5, 700), max_size=3),
    st.just({"rate": 0.5}).map(dict),  # a fresh dict each time: later edits must not leak
)
ALIAS_BOMB = "bomb: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"b{i}: &a{i} [{', '.join([f'*a{i - 1}' if i else '*a'] * 9)}]\n" for i in range(9)
)


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    """Put ``value`` at ``path`` if the path still leads somewhere (earlier edits may have
    replaced a parent)."""
    node: Any = data
    try:
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        return


@st.composite
def scenario_texts(draw: st.DrawFn) -> str:
    data = json.loads(json.dumps(BASE_SCENARIO))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(PATHS))
        if draw(st.integers(0, 8)) == 0 and len(path) > 0:
            parent: Any = data
            for part in path[:-1]:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            continue
        _set(data, path, draw(YAML_VALUES))
    text = yaml.safe_dump(data, sort_keys=False)
    text = text.replace("'.nan'", ".nan").replace("'.inf'", ".inf").replace("'-.inf'", "-.inf")
    trick = draw(st.integers(0, 25))
    if trick == 0:
        text += "name: again\n"  # a duplicate key
    elif trick == 1:
        text = ALIAS_BOMB + text
    elif trick == 2:
        text = text[: draw(st.integers(0, len(text)))]  # cut anywhere
    elif trick == 3:
        text = "[" * draw(st.integers(30, 5000)) + text
    return text


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


@FUZZ
@given(scenario_texts())
def test_scenario_files(text: str) -> None:
    path = Path(os.environ.get("PASE_FUZZ_TMP", "/tmp")) / f"pase-fuzz-{os.getpid()}.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        spec = load_scenario(path)
    except ScenarioError as exc:
        event("refused")
        assert str(path) in str(exc)
        return
    event("accepted")
    # the documented bounds hold for everything accepted
    assert _finite(spec.model_dump())
    nodes = spec.topology.nodes
    assert nodes in SIZE_PRESETS if isinstance(nodes, str) else MIN_NODES <= nodes <= MAX_NODES
    assert 0 <= spec.topology.seed <= MAX_SEED
    assert 0 < spec.workload.intensity <= 1.5 and 10 <= spec.budget <= 100_000
    for entry in spec.faults:
        assert 1 <= entry.latest_onset() < spec.budget
        for name, value in entry.params.items():
            declared = [
                FAULT_MODELS[t].PARAMS[name]
                for t in entry.types()
                if name in FAULT_MODELS[t].PARAMS
            ]
            assert declared and all(p.lo <= value <= p.hi for p in declared)
    if isinstance(nodes, int) and nodes > MAX_BUILT_NODES:
        return  # a legal large cloud: building it is measured in benchmarks/, not fuzzed
    try:  # what needs the cloud is checked when an episode is built: typed errors only
        from pase_gym.episode import Episode

        Episode(spec, 0).reset(skip_to_incident=False)
    except ScenarioError:
        event("refused on the built cloud")


# ---- 5. results records ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def _records() -> tuple[str, ...]:
    return tuple(
        json.dumps(run_episode(Job(agent, "t", "process-crash-train", 0)), sort_keys=True)
        for agent in ("random", "oracle")
    )


INT_FIELDS = ("seed", "ticks", "decisions", "plan_steps", "executed_calls", "safe_calls")
FLOAT_FIELDS = ("cost", "return", "compute_s")
BOOL_FIELDS = ("recovered", "uses_ground_truth")
RECORD_VALUES = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def results_files(draw: st.DrawFn) -> tuple[str, bool]:
    """A results file's text and whether it must be refused (``True``: certainly invalid)."""
    records = [json.loads(r) for r in _records()]
    records[1]["seed"] = 1
    records[1]["key"] = record_key(records[1]["agent_spec"], "t", "process-crash-train", 1)
    target = draw(st.sampled_from(records))
    original = set(target)
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from([*sorted(target), "surprise"]))
        if draw(st.integers(0, 6)) == 0:
            target.pop(field, None)
        else:
            target[field] = draw(RECORD_VALUES)
    # certainly invalid: a field missing or unknown, or a value of the wrong type
    invalid = bool(original - set(target)) or "surprise" in target
    for field in INT_FIELDS:
        value = target.get(field, 0)
        invalid |= not isinstance(value, int) or isinstance(value, bool)
    for field in BOOL_FIELDS:
        invalid |= not isinstance(target.get(field, True), bool)
    for field in FLOAT_FIELDS:
        value = target.get(field, 0.0)
        invalid |= not isinstance(value, int | float) or isinstance(value, bool)
    lines = [json.dumps(r, sort_keys=True) for r in records]
    trick = draw(st.integers(0, 12))
    if trick == 0:
        lines.append(lines[0])  # an exact duplicate
        invalid = True
    elif trick == 1:
        lines.insert(1, json.dumps(records[0]).replace("0", "1", 1))  # another record, same key?
    elif trick == 2:
        k = draw(st.integers(1, max(len(lines[1]) - 1, 1)))
        lines[1] = (
            lines[1][:k] + draw(st.sampled_from(["}", "NaN", "\x00", "é", "]"])) + lines[1][k:]
        )
    elif trick == 3:
        lines[0] = lines[0].replace('"cost": ', '"cost": Infinity, "x": ', 1)
        invalid = True
    return "".join(line + "\n" for line in lines), invalid


@FUZZ
@given(results_files())
def test_results_records(case: tuple[str, bool]) -> None:
    text, invalid = case
    path = Path(os.environ.get("PASE_FUZZ_TMP", "/tmp")) / f"pase-fuzz-{os.getpid()}.jsonl"
    path.write_text(text, encoding="utf-8")
    try:
        records = RunStore(path).load()
    except ResultsError as exc:
        event("refused")
        assert str(exc).startswith(f"{path}:")
        return
    event("accepted")
    assert not invalid, "an invalid results file was accepted"
    for rec in records.values():  # what is accepted is what the documentation promises
        assert rec["key"] == record_key(
            rec["agent_spec"], rec["suite"], rec["scenario"], rec["seed"]
        )
        assert (rec["mttr"] is None) != rec["recovered"]
        assert rec["mttr"] is None or 0 <= rec["mttr"] <= rec["ticks"]
        assert 0 <= rec["safe_calls"] <= rec["executed_calls"]
        assert all(math.isfinite(rec[f]) for f in FLOAT_FIELDS)  # type: ignore[literal-required]
        for f in INT_FIELDS:
            assert type(rec[f]) is int  # type: ignore[literal-required]


def test_the_fuzz_targets_reach_both_outcomes() -> None:
    """The generators make valid inputs too, not only refusals (else a target proves little)."""
    env = _env()
    _, _, _, _, info = env.step(
        {"steps": [{"primitive": PRIMITIVE_NAMES.index("Wait"), "number": 4}]}
    )
    assert info["plan_error"] is None
    path = Path(os.environ.get("PASE_FUZZ_TMP", "/tmp")) / f"pase-fuzz-{os.getpid()}-ok.yaml"
    path.write_text(yaml.safe_dump(BASE_SCENARIO), encoding="utf-8")
    assert load_scenario(path).faults[0].params == {"rate": 0.05}
    path = path.with_suffix(".jsonl")
    path.write_text("".join(r + "\n" for r in _records()[:1]), encoding="utf-8")
    assert len(RunStore(path).load()) == 1


@pytest.fixture(autouse=True)
def _tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASE_FUZZ_TMP", str(tmp_path))
