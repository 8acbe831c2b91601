"""Tests of the public names of ``pase_gym``: they exist at the top level and behave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pase_gym

PUBLIC = (
    "Call",
    "Diagnosis",
    "Episode",
    "PaseGymError",
    "Plan",
    "PlanError",
    "ScenarioError",
    "list_faults",
    "list_primitives",
    "list_scenarios",
    "load_scenario",
    "parse_plan",
)

PRIMITIVE_NAMES = (
    "Wait",
    "Restart",
    "KillProcess",
    "ScaleOut",
    "ScaleIn",
    "Reroute",
    "Isolate",
    "Migrate",
    "Rollback",
    "ResizeResource",
    "FlushQueue",
    "Failover",
    "Throttle",
    "Drain",
    "CleanDisk",
    "RenewCertificate",
    "FlushCache",
    "Inspect",
    "QueryLogs",
    "Trace",
)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_is_exported(name: str) -> None:
    assert name in pase_gym.__all__
    assert getattr(pase_gym, name) is not None


def test_every_name_in_all_resolves() -> None:
    for name in pase_gym.__all__:
        assert hasattr(pase_gym, name), name


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError):
        pase_gym.NoSuchThing  # noqa: B018


def test_version_is_a_string() -> None:
    assert isinstance(pase_gym.__version__, str)
    assert pase_gym.__version__.count(".") >= 1


# -- plans ---------------------------------------------------------------------------------


def test_parse_plan_returns_a_plan_whose_str_round_trips() -> None:
    text = (
        "Diagnose(process_hang, nova-compute-3); KillProcess(nova-compute-3); "
        "Restart(nova-compute-3)"
    )
    plan = pase_gym.parse_plan(text)
    assert isinstance(plan, pase_gym.Plan)
    assert str(plan) == text
    assert pase_gym.parse_plan(str(plan)) == plan
    assert plan.diagnosis == pase_gym.Diagnosis("process_hang", "nova-compute-3")
    assert plan.steps == (
        pase_gym.Call("KillProcess", ("nova-compute-3",)),
        pase_gym.Call("Restart", ("nova-compute-3",)),
    )
    assert len(plan) == 2


def test_parse_plan_normalises_spacing_and_separators() -> None:
    plan = pase_gym.parse_plan("Restart( nova-api-1 )\nScaleOut(group=compute, count=2);")
    assert str(plan) == "Restart(nova-api-1); ScaleOut(compute, 2)"
    assert pase_gym.parse_plan(str(plan)) == plan


def test_a_plan_built_from_parts_prints_as_plan_text() -> None:
    plan = pase_gym.Plan(
        (pase_gym.Call("Rollback", ("l3-agent-2",)), pase_gym.Call("Restart", ("l3-agent-2",))),
        pase_gym.Diagnosis("memory_leak", "l3-agent-2"),
    )
    expected = "Diagnose(memory_leak, l3-agent-2); Rollback(l3-agent-2); Restart(l3-agent-2)"
    assert str(plan) == expected
    assert pase_gym.parse_plan(str(plan)) == plan


def test_structured_form_round_trips_through_json() -> None:
    plan = pase_gym.parse_plan("Diagnose(cpu_hog, compute-2); Throttle(nova-api, 50)")
    data = json.loads(json.dumps(plan.to_structured()))
    assert pase_gym.Plan.from_structured(data) == plan


def test_plan_error_is_a_value_error_with_position_expected_found() -> None:
    assert issubclass(pase_gym.PlanError, ValueError)
    assert issubclass(pase_gym.PlanError, pase_gym.PaseGymError)
    with pytest.raises(pase_gym.PlanError) as info:
        pase_gym.parse_plan("Restart(x")
    err = info.value
    assert err.position == 9
    assert err.expected is not None and ")" in err.expected
    assert err.found == "end of input"
    with pytest.raises(ValueError):
        pase_gym.parse_plan("Reboot(x)")


@pytest.mark.parametrize("bad", [None, 42, b"Restart(x)"])
def test_parse_plan_refuses_non_text_with_a_plan_error(bad: object) -> None:
    with pytest.raises(pase_gym.PlanError):
        pase_gym.parse_plan(bad)  # type: ignore[arg-type]


def test_bad_call_refuses_with_a_plan_error() -> None:
    with pytest.raises(pase_gym.PlanError):
        pase_gym.Call("Reboot", ("x",))
    with pytest.raises(pase_gym.PlanError):
        pase_gym.Diagnosis("meteor_strike", "x")


# -- catalogues ----------------------------------------------------------------------------


def test_list_faults_has_18_described_fault_types() -> None:
    faults = pase_gym.list_faults()
    assert len(faults) == 18
    assert len({f["name"] for f in faults}) == 18
    assert json.loads(json.dumps(faults)) == faults
    families = set()
    for fault in faults:
        for key in ("name", "family", "splits", "target", "description", "signature", "recovery"):
            assert key in fault, (fault.get("name"), key)
        for key in ("name", "family", "target", "description", "recovery"):
            assert isinstance(fault[key], str) and fault[key], (fault["name"], key)
        splits = fault["splits"]
        assert isinstance(splits, list) and splits
        assert set(splits) <= {"train", "test", "unseen"}
        signature = fault["signature"]
        assert isinstance(signature, list) and signature
        assert all(isinstance(term, str) and term for term in signature)
        families.add(fault["family"])
    assert len(families) == 9


def test_list_faults_splits_follow_the_families() -> None:
    by_name = {f["name"]: f for f in pase_gym.list_faults()}
    assert by_name["certificate_expiry"]["splits"] == ["unseen"]
    assert by_name["cpu_memory_deadlock"]["splits"] == ["unseen"]
    for name, fault in by_name.items():
        if name not in ("certificate_expiry", "cpu_memory_deadlock"):
            assert fault["splits"] == ["train", "test"], name
    # one family, one set of splits
    splits_of_family: dict[object, object] = {}
    for fault in by_name.values():
        assert splits_of_family.setdefault(fault["family"], fault["splits"]) == fault["splits"]


def test_list_faults_returns_a_fresh_copy() -> None:
    first = pase_gym.list_faults()
    first[0]["name"] = "changed"
    first.pop()
    assert len(pase_gym.list_faults()) == 18
    assert pase_gym.list_faults()[0]["name"] != "changed"


def test_list_primitives_has_the_20_documented_primitives() -> None:
    prims = pase_gym.list_primitives()
    assert [p["name"] for p in prims] == list(PRIMITIVE_NAMES)
    assert json.loads(json.dumps(prims)) == prims


@pytest.mark.parametrize("index", range(len(PRIMITIVE_NAMES)))
def test_each_primitive_is_fully_described(index: int) -> None:
    prim = pase_gym.list_primitives()[index]
    for key in ("name", "params", "preconditions", "duration", "cost", "safety"):
        assert key in prim, (prim["name"], key)
    assert prim["safety"] in ("safe", "risky", "destructive")
    cost = prim["cost"]
    assert isinstance(cost, int | float) and cost >= 0
    params = prim["params"]
    assert isinstance(params, list)
    names = []
    for param in params:
        assert param["type"] in ("node", "group", "int", "resource"), param
        if param["type"] == "int":
            lo, hi = param["range"]
            assert lo <= hi
        if param["type"] == "resource":
            assert param["choices"]
        names.append(param["name"])
    assert len(set(names)) == len(names)
    # the duration is a number of ticks or the name of the int parameter that sets it
    duration = prim["duration"]
    if isinstance(duration, str):
        assert duration in [p["name"] for p in params if p["type"] == "int"]
    else:
        assert isinstance(duration, int) and duration >= 0
    preconditions = prim["preconditions"]
    assert isinstance(preconditions, list)
    assert all(isinstance(pre, str) and pre for pre in preconditions)
    assert prim["signature"] == (
        f"{prim['name']}(" + ", ".join(f"{p['name']}: {p['type']}" for p in params) + ")"
    )


def test_every_safety_class_is_used() -> None:
    assert {p["safety"] for p in pase_gym.list_primitives()} == {"safe", "risky", "destructive"}


# -- scenarios -----------------------------------------------------------------------------


def test_load_scenario_takes_a_name_a_path_or_a_mapping(tmp_path: Path) -> None:
    spec = pase_gym.load_scenario("default")
    assert spec.name == "default"
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nsplit: test\nfaults:\n  - type: disk_full\n", encoding="utf-8")
    assert pase_gym.load_scenario(path).name == "mine"
    assert pase_gym.load_scenario(str(path)).name == "mine"
    mapping = {"name": "mine", "split": "test", "faults": [{"type": "disk_full"}]}
    assert pase_gym.load_scenario(mapping) == pase_gym.load_scenario(path)


def test_list_scenarios_is_exported_and_filters() -> None:
    names = pase_gym.list_scenarios()
    assert "default" in names
    unseen = pase_gym.list_scenarios("unseen")
    assert unseen and set(unseen) < set(names)


def test_scenario_error_is_a_value_error_raised_for_bad_scenarios() -> None:
    assert issubclass(pase_gym.ScenarioError, ValueError)
    assert issubclass(pase_gym.ScenarioError, pase_gym.PaseGymError)
    with pytest.raises(pase_gym.ScenarioError) as info:
        pase_gym.load_scenario({"name": "x", "split": "train"})
    assert info.value.key == "faults"
    with pytest.raises(pase_gym.ScenarioError):
        pase_gym.load_scenario("no-such-scenario")


def test_episode_runs_a_plan_from_parse_plan() -> None:
    from pase_gym.episode import Episode

    assert pase_gym.Episode is Episode
    episode = Episode("process-crash-train", seed=0)
    episode.reset()
    (truth,) = episode.ground_truth()
    assert truth["fault_type"] == "process_crash"
    node = truth["node"]
    episode.step(pase_gym.parse_plan(f"Diagnose(process_crash, {node}); Restart({node})"))
    assert episode.run_until_recovered()
    report = episode.report()
    assert report.recovered and report.diagnosis_correct and report.localization_correct
