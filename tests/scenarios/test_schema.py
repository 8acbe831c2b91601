"""Tests of the scenario schema: what a scenario file may say and how a bad one is reported.

Every broken file must raise :class:`ScenarioError` (also a ``ValueError``) whose message names
the file and the dotted key of the problem, so that a user can fix it without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pase_gym.errors import PaseGymError, ScenarioError
from pase_gym.scenarios import load_scenario, parse_scenario
from pase_gym.scenarios.schema import ScenarioSpec, schema_json
from pase_gym.sim.faults import FAULT_NAMES

VALID = """\
name: my-scenario
split: train
faults:
  - type: process_crash
"""

TOP_LEVEL_KEYS = (
    "budget",
    "description",
    "faults",
    "name",
    "recovery",
    "reference",
    "split",
    "topology",
    "workload",
)


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ScenarioError:
    """The ScenarioError that loading ``path`` raises (and nothing else)."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def assert_names(err: ScenarioError, path: Path, key: str) -> None:
    """``err`` names the file and the dotted key, as attributes and in its message."""
    message = str(err)
    assert err.source == str(path)
    assert message.startswith(f"{path}: ")
    assert key in message, message


# -- a valid file --------------------------------------------------------------------------


def test_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    spec = load_scenario(write(tmp_path, VALID))
    assert isinstance(spec, ScenarioSpec)
    assert spec.name == "my-scenario"
    assert spec.split == "train"
    assert spec.topology.nodes == "small"
    assert spec.workload.profile == "deployment"
    assert spec.recovery.hold == 60
    assert spec.budget == 600
    assert spec.reference is None
    (fault,) = spec.faults
    assert fault.types() == ["process_crash"]
    assert fault.onset == 30
    assert fault.node is None and fault.role is None


def test_full_file_round_trips_every_field(tmp_path: Path) -> None:
    text = """\
name: full
description: "every key set"
split: test
topology: {nodes: 40, seed: 7}
workload: {profile: STO, intensity: 0.5}
faults:
  - type: [memory_leak, cpu_hog]
    role: nova-api
    onset: [10, 20]
  - type: dns_failure
    node: compute-1
    onset: 15
recovery: {hold: 30}
budget: 300
reference: {seed: 3, plan: "Restart(nova-api-1)", mttr: 12}
"""
    spec = load_scenario(write(tmp_path, text))
    assert spec.description == "every key set"
    assert spec.split == "test"
    assert (spec.topology.nodes, spec.topology.seed) == (40, 7)
    assert (spec.workload.profile, spec.workload.intensity) == ("STO", 0.5)
    assert spec.faults[0].types() == ["memory_leak", "cpu_hog"]
    assert spec.faults[0].role == "nova-api"
    assert spec.faults[0].onset == (10, 20)
    assert spec.faults[0].latest_onset() == 20
    assert spec.faults[1].node == "compute-1"
    assert spec.recovery.hold == 30
    assert spec.budget == 300
    assert spec.reference is not None
    assert (spec.reference.seed, spec.reference.plan, spec.reference.mttr) == (
        3,
        "Restart(nova-api-1)",
        12,
    )


@pytest.mark.parametrize("profile", ["deployment", "network", "storage", "DEPL", "NET", "STO"])
def test_every_documented_workload_profile_is_accepted(tmp_path: Path, profile: str) -> None:
    spec = load_scenario(write(tmp_path, VALID + f"workload: {{profile: {profile}}}\n"))
    assert spec.workload.profile == profile


@pytest.mark.parametrize("size", ["tiny", "small", "medium", "large", 16, 20000])
def test_size_presets_and_node_count_bounds_are_accepted(tmp_path: Path, size: object) -> None:
    spec = load_scenario(write(tmp_path, VALID + f"topology: {{nodes: {size}}}\n"))
    assert spec.topology.nodes == size


def test_a_mapping_is_validated_like_a_file() -> None:
    spec = parse_scenario(
        {"name": "m", "split": "unseen", "faults": [{"type": "cpu_memory_deadlock"}]}
    )
    assert spec.split == "unseen"
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": "m", "split": "unseen"})
    assert info.value.source == "<mapping>"
    assert info.value.key == "faults"


# -- broken files: the error names the file and the key ------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "fragments"),
    [
        pytest.param(
            VALID + "colour: red\n",
            "colour",
            ["unknown key", *TOP_LEVEL_KEYS],
            id="unknown-top-level-key",
        ),
        pytest.param(
            VALID + "topology:\n  size: 3\n",
            "topology.size",
            ["unknown key", "nodes", "seed"],
            id="unknown-nested-key",
        ),
        pytest.param(
            VALID + "workload: {profile: network, speed: 2}\n",
            "workload.speed",
            ["unknown key", "intensity", "profile"],
            id="unknown-workload-key",
        ),
        pytest.param(
            VALID.replace("  - type: process_crash\n", "  - type: process_crash\n    when: 3\n"),
            "faults.0.when",
            ["unknown key", "onset", "node", "role", "type"],
            id="unknown-fault-key",
        ),
        pytest.param("name: x\nsplit: train\n", "faults", ["missing"], id="missing-faults"),
        pytest.param(
            "name: x\nfaults:\n  - type: process_crash\n", "split", ["missing"], id="missing-split"
        ),
        pytest.param(
            "split: train\nfaults:\n  - type: process_crash\n", "name", ["missing"], id="no-name"
        ),
        pytest.param(
            VALID.replace("split: train", "split: prod"),
            "split",
            ["train", "test", "unseen"],
            id="bad-split",
        ),
        pytest.param(
            VALID.replace("name: my-scenario", "name: My Scenario!"),
            "name",
            [],
            id="bad-name",
        ),
        pytest.param(
            "name: x\nsplit: train\nfaults: []\n", "faults", ["at least 1"], id="no-faults"
        ),
        pytest.param(
            VALID.replace("process_crash", "meteor_strike"),
            "faults.0.type",
            ["meteor_strike", "process_crash", "cpu_memory_deadlock"],
            id="unknown-fault-type",
        ),
        pytest.param(
            VALID.replace("process_crash", "[process_crash, meteor_strike]"),
            "faults.0.type",
            ["meteor_strike"],
            id="unknown-fault-type-in-list",
        ),
        pytest.param(
            VALID.replace("process_crash", "[]"),
            "faults.0.type",
            ["at least one"],
            id="empty-fault-type-list",
        ),
        pytest.param(
            VALID + "    onset: [50, 20]\n", "faults.0.onset", ["[lo, hi]"], id="onset-reversed"
        ),
        pytest.param(VALID + "    onset: 0\n", "faults.0.onset", [">= 1"], id="onset-zero"),
        pytest.param(
            VALID + "    node: nova-api-1\n    role: nova-api\n",
            "faults.0",
            ["either node or role"],
            id="node-and-role",
        ),
        pytest.param(
            VALID + "    role: toaster\n",
            "faults.0.role",
            ["toaster", "nova-api", "compute"],
            id="unknown-role",
        ),
        pytest.param(
            VALID + "topology: {nodes: 5}\n",
            "topology.nodes",
            ["[16, 20000]", "tiny", "large", "found 5"],
            id="too-few-nodes",
        ),
        pytest.param(
            VALID + "topology: {nodes: 20001}\n",
            "topology.nodes",
            ["[16, 20000]", "found 20001"],
            id="too-many-nodes",
        ),
        pytest.param(
            VALID + "topology: {seed: -1}\n", "topology.seed", [], id="negative-layout-seed"
        ),
        pytest.param(
            VALID + "workload: {profile: gaming}\n",
            "workload.profile",
            ["gaming", "deployment", "network", "storage", "DEPL"],
            id="bad-profile",
        ),
        pytest.param(
            VALID + "workload: {intensity: 0}\n", "workload.intensity", [], id="zero-intensity"
        ),
        pytest.param(VALID + "recovery: {hold: -5}\n", "recovery.hold", ["1"], id="negative-hold"),
        pytest.param(VALID + "budget: 5\n", "budget", ["10"], id="tiny-budget"),
        pytest.param(
            VALID + "reference: {seed: 0, plan: x}\n",
            "reference.mttr",
            ["missing"],
            id="reference-without-mttr",
        ),
    ],
)
def test_broken_field_names_file_and_key(
    tmp_path: Path, body: str, key: str, fragments: list[str]
) -> None:
    path = write(tmp_path, body)
    err = load_error(path)
    assert isinstance(err, ValueError)
    assert isinstance(err, PaseGymError)
    assert err.key == key
    assert_names(err, path, f"{key}: ")
    for fragment in fragments:
        assert fragment in str(err), str(err)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        pytest.param(
            VALID.replace("process_crash", "cpu_memory_deadlock"),
            ["cpu_memory_deadlock", "hybrid", "unseen", "'train'"],
            id="unseen-fault-in-train",
        ),
        pytest.param(
            VALID.replace("process_crash", "certificate_expiry").replace("train", "test"),
            ["certificate_expiry", "security", "'test'"],
            id="unseen-fault-in-test",
        ),
        pytest.param(
            VALID.replace("process_crash", "[process_crash, certificate_expiry]"),
            ["certificate_expiry"],
            id="unseen-fault-in-a-list",
        ),
        pytest.param(
            VALID.replace("process_crash", "memory_leak").replace("train", "unseen"),
            ["memory_leak", "resource", "'unseen'"],
            id="train-fault-in-unseen",
        ),
        pytest.param(
            VALID + "    onset: [50, 100]\nbudget: 100\n",
            ["onset 100", "budget 100"],
            id="onset-at-budget",
        ),
        pytest.param(
            VALID + "    onset: 700\n", ["onset 700", "budget 600"], id="onset-past-default-budget"
        ),
    ],
)
def test_cross_field_problem_names_file_and_fault(
    tmp_path: Path, body: str, fragments: list[str]
) -> None:
    path = write(tmp_path, body)
    err = load_error(path)
    assert_names(err, path, "faults.0")
    for fragment in fragments:
        assert fragment in str(err), str(err)


def test_second_fault_is_named_by_its_index(tmp_path: Path) -> None:
    body = VALID + "  - type: cpu_memory_deadlock\n"
    err = load_error(write(tmp_path, body))
    assert "faults.1" in str(err)
    assert "faults.0" not in str(err)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(VALID.replace("process_crash", "cpu_memory_deadlock"), id="split"),
        pytest.param(VALID + "    onset: 700\n", id="onset"),
    ],
)
def test_cross_field_problem_sets_the_dotted_key(tmp_path: Path, body: str) -> None:
    err = load_error(write(tmp_path, body))
    assert err.key is not None
    assert err.key.startswith("faults.0"), err.key
    assert "<root>" not in str(err)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param(
            VALID + "topology: {nodes: huge}\n",
            "topology.nodes",
            id="unknown-size-preset",
        ),
        pytest.param(VALID.replace("process_crash", "5"), "faults.0.type", id="type-int"),
        pytest.param(VALID + "    onset: [20]\n", "faults.0.onset", id="onset-one-item"),
        pytest.param(VALID + "    onset: soon\n", "faults.0.onset", id="onset-word"),
        pytest.param(VALID + "    node: 5\n", "faults.0.node", id="node-int"),
    ],
)
def test_wrongly_typed_value_names_the_key_of_the_file(tmp_path: Path, body: str, key: str) -> None:
    path = write(tmp_path, body)
    err = load_error(path)
    assert err.key == key
    assert_names(err, path, f"{key}: ")


def test_several_problems_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    body = "name: x\nsplit: prod\nfaults:\n  - type: meteor_strike\nbudget: 1\n"
    message = str(load_error(write(tmp_path, body)))
    assert "more problem" in message


@pytest.mark.parametrize("fault_type", FAULT_NAMES)
def test_every_fault_type_is_accepted_in_its_own_splits(tmp_path: Path, fault_type: str) -> None:
    from pase_gym.sim.faults import FAMILIES, FAULTS

    for split in ("train", "test", "unseen"):
        body = f"name: x\nsplit: {split}\nfaults:\n  - type: {fault_type}\n"
        path = write(tmp_path, body, f"{split}.yaml")
        if split in FAMILIES[FAULTS[fault_type].family].splits:
            assert load_scenario(path).faults[0].types() == [fault_type]
        else:
            with pytest.raises(ScenarioError, match=fault_type):
                load_scenario(path)


# -- the JSON schema -----------------------------------------------------------------------


def test_schema_json_is_a_json_schema_of_the_top_level_keys() -> None:
    schema = schema_json()
    # it is plain JSON (editors and docs read it from a file)
    assert json.loads(json.dumps(schema)) == schema
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(TOP_LEVEL_KEYS)
    assert set(schema["required"]) == {"name", "split", "faults"}
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]["split"]["enum"]) == {"train", "test", "unseen"}
    faults = schema["properties"]["faults"]
    assert faults["type"] == "array"
    assert faults["minItems"] == 1


def test_schema_json_describes_the_nested_fault_entry() -> None:
    schema = schema_json()
    ref = schema["properties"]["faults"]["items"]["$ref"]
    entry = schema["$defs"][ref.rsplit("/", 1)[-1]]
    assert set(entry["properties"]) == {"type", "node", "role", "onset", "params"}
    assert entry["required"] == ["type"]
    assert entry["additionalProperties"] is False
