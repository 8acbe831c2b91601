"""Tests of scenario loading: the built-in catalogue, reading files, and hostile input.

A scenario comes from a built-in name, a path or a mapping; whatever goes wrong while reading
it raises :class:`ScenarioError` naming the file (and, where there is one, the dotted key).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pase_gym.episode import Episode
from pase_gym.errors import PaseGymError, ScenarioError
from pase_gym.scenarios import builtin_dir, list_scenarios, load_scenario
from pase_gym.sim.faults import FAMILIES, FAULT_NAMES, FAULTS, SPLITS

REPO_SCENARIOS = Path(__file__).resolve().parents[2] / "fault_scenarios"
BUILTIN = sorted(p.stem for p in REPO_SCENARIOS.glob("*.yaml"))

VALID = """\
name: my-scenario
split: train
faults:
  - type: process_crash
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(arg: object) -> ScenarioError:
    """The ScenarioError that loading ``arg`` raises (and nothing else)."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(arg)  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, PaseGymError)
    return err


# -- the built-in catalogue ----------------------------------------------------------------


def test_repository_has_built_in_scenarios() -> None:
    # guards the parametrised tests below against silently running on nothing
    assert len(BUILTIN) >= 20
    assert "default" in BUILTIN


def test_list_scenarios_lists_every_built_in_file_sorted() -> None:
    names = list_scenarios()
    assert names == BUILTIN
    assert names == sorted(names)
    assert {p.stem for p in builtin_dir().glob("*.yaml")} == set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_built_in_scenario_loads_and_builds_an_episode(name: str) -> None:
    by_name = load_scenario(name)
    assert by_name.name == name  # the file name and the scenario name agree
    assert load_scenario(builtin_dir() / f"{name}.yaml") == by_name
    assert load_scenario(str(REPO_SCENARIOS / f"{name}.yaml")) == by_name
    if name.rsplit("-", 1)[-1] in SPLITS:
        assert by_name.split == name.rsplit("-", 1)[-1]
    episode = Episode(name, 0)
    episode.reset()
    assert episode.state.incident_open_at is not None, "the fault never showed"


@pytest.mark.parametrize("split", SPLITS)
def test_list_scenarios_filters_by_split(split: str) -> None:
    names = list_scenarios(split)
    assert names, f"no built-in scenario of split {split!r}"
    assert names == sorted(names)
    assert all(load_scenario(n).split == split for n in names)
    others = set(list_scenarios()) - set(names)
    assert all(load_scenario(n).split != split for n in others)


def test_splits_partition_the_catalogue() -> None:
    parts = [set(list_scenarios(s)) for s in SPLITS]
    assert set().union(*parts) == set(list_scenarios())
    assert sum(len(p) for p in parts) == len(list_scenarios())


@pytest.mark.parametrize("fault_type", FAULT_NAMES)
def test_every_fault_type_has_a_dedicated_built_in_scenario_in_each_of_its_splits(
    fault_type: str,
) -> None:
    assert len(FAULT_NAMES) == 18
    for split in FAMILIES[FAULTS[fault_type].family].splits:
        dedicated = [
            n
            for n in list_scenarios(split)
            if any(entry.types() == [fault_type] for entry in load_scenario(n).faults)
        ]
        assert dedicated, f"no {split} scenario of {fault_type} alone"


def test_unseen_families_only_appear_in_unseen_scenarios() -> None:
    unseen_only = {f for f in FAULT_NAMES if FAMILIES[FAULTS[f].family].splits == ("unseen",)}
    assert unseen_only == {"certificate_expiry", "cpu_memory_deadlock"}
    for name in list_scenarios():
        spec = load_scenario(name)
        drawn = {t for entry in spec.faults for t in entry.types()}
        assert (spec.split == "unseen") == bool(drawn & unseen_only), name


# -- how a scenario is named ---------------------------------------------------------------


def test_load_accepts_a_path_object_a_str_path_and_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    spec = load_scenario(path)
    assert load_scenario(str(path)) == spec
    mapping = {"name": "my-scenario", "split": "train", "faults": [{"type": "process_crash"}]}
    assert load_scenario(mapping) == spec


def test_a_yml_suffix_is_a_path_too(tmp_path: Path) -> None:
    path = write(tmp_path, VALID, "other.yml")
    assert load_scenario(str(path)).name == "my-scenario"


def test_unknown_built_in_name_lists_the_known_names() -> None:
    err = load_error("no-such-scenario")
    message = str(err)
    assert err.source == "no-such-scenario"
    assert message.startswith("no-such-scenario: ")
    for name in list_scenarios():
        assert name in message


@pytest.mark.parametrize("arg", [42, None, 1.5, ["default"], b"default"])
def test_an_argument_that_is_no_name_path_or_mapping_is_refused(arg: object) -> None:
    err = load_error(arg)
    assert type(arg).__name__ in str(err)
    assert "expected a scenario name, a path or a mapping" in str(err)


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    err = load_error(path)
    assert err.source == str(path)
    assert str(err).startswith(f"{path}: ")
    assert "no such file" in str(err)


def test_missing_file_given_as_str_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "nope.yaml")
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")


@pytest.mark.parametrize("as_str", [False, True])
def test_a_directory_is_refused(tmp_path: Path, as_str: bool) -> None:
    folder = tmp_path / "scenarios.yaml"
    folder.mkdir()
    arg = str(folder) if as_str else folder
    err = load_error(arg)
    assert str(err).startswith(f"{folder}: ")


# -- what the file holds -------------------------------------------------------------------


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsplit: [train\nfaults: {\n")
    err = load_error(path)
    message = str(err)
    assert message.startswith(f"{path}: ")
    assert "malformed YAML" in message
    assert "line 3, column 7" in message


def test_tab_indentation_is_malformed_yaml_with_a_position(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsplit: train\nfaults:\n\t- type: process_crash\n")
    message = str(load_error(path))
    assert message.startswith(f"{path}: malformed YAML at line 4, column 1")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- name: x\n- split: train\n", "list"),
        ("just a sentence\n", "str"),
        ("42\n", "int"),
        ("", "NoneType"),
        ("# only a comment\n", "NoneType"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, found: str) -> None:
    path = write(tmp_path, text)
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")
    assert "expected a mapping" in str(err)
    assert found in str(err)


def test_non_utf8_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(VALID.encode() + "description: caf\xe9\n".encode("latin-1"))
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")
    assert "UTF-8" in str(err)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    # 2 MB of comments after a valid scenario: valid YAML, but too big to be a scenario
    path.write_text(VALID + ("# " + "x" * 98 + "\n") * 20_000, encoding="utf-8")
    assert path.stat().st_size > 2_000_000
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")
    assert "larger than" in str(err)


def test_yaml_anchors_and_aliases_are_allowed(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        name: aliased
        split: train
        faults:
          - type: &pool [process_crash, process_hang]
            onset: &when [10, 20]
          - type: *pool
            onset: *when
        """
    )
    spec = load_scenario(write(tmp_path, text))
    assert [f.types() for f in spec.faults] == [["process_crash", "process_hang"]] * 2
    assert spec.faults[1].onset == (10, 20)


def _alias_bomb(levels: int) -> str:
    """A "billion laughs" document: ``levels`` lists of nine aliases of the previous one."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMB_PROBE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
from pase_gym.errors import ScenarioError
from pase_gym.scenarios import load_scenario
try:
    load_scenario(sys.argv[1])
    print(json.dumps({"outcome": "loaded"}))
except ScenarioError as exc:
    print(json.dumps({"outcome": "ScenarioError", "message": str(exc)}))
"""


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("top", id="unknown-top-level-keys"),
        pytest.param("description", id="as-description"),
        pytest.param("faults", id="as-fault-list"),
        pytest.param("type", id="as-fault-type"),
        pytest.param("params", id="as-fault-params"),
    ],
)
def test_a_billion_laughs_alias_bomb_is_refused_without_expanding_it(
    tmp_path: Path, where: str
) -> None:
    # 9**12 (about 3e11) strings if anything expanded the aliases: that would exhaust the
    # 3 GiB address-space limit of the child process or never finish, instead of this answer.
    bomb = _alias_bomb(12)
    if where == "top":
        text = bomb
    else:
        # the anchors live under an unknown key; a real key then uses the biggest alias
        use = {
            "description": "description: *l11\nfaults:\n  - type: process_crash\n",
            "faults": "faults: *l11\n",
            "type": "faults:\n  - type: *l11\n",
            "params": "faults:\n  - type: process_crash\n    params: *l11\n",
        }[where]
        text = "anchors:\n" + textwrap.indent(bomb, "  ") + "name: x\nsplit: train\n" + use
    path = write(tmp_path, text)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", BOMB_PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a speed assertion
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "ScenarioError"
    assert result["message"].startswith(f"{path}: ")


def test_deeply_nested_yaml_is_refused_with_a_scenario_error(tmp_path: Path) -> None:
    depth = 1000
    path = write(tmp_path, "name: x\nsplit: train\nfaults: " + "[" * depth + "]" * depth + "\n")
    err = load_error(path)
    assert str(err).startswith(f"{path}: ")


# -- what only the built cloud can tell ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "fragments"),
    [
        pytest.param(
            "    node: no-such-node\n", ["unknown node", "no-such-node"], id="unknown-node"
        ),
        pytest.param(
            # process_crash needs a service process; compute-1 is a host
            "    node: compute-1\n",
            ["process_crash cannot strike 'compute-1'", "service"],
            id="node-the-fault-cannot-strike",
        ),
    ],
)
def test_pinned_node_is_checked_against_the_cloud_when_the_episode_is_built(
    tmp_path: Path, fault: str, fragments: list[str]
) -> None:
    path = write(tmp_path, VALID + fault)
    spec = load_scenario(path)  # structurally valid
    episode = Episode(str(path), 0)
    with pytest.raises(ScenarioError) as info:
        episode.reset()
    err = info.value
    assert err.key == "faults.0.node"
    assert "faults.0.node: " in str(err)
    assert str(err).startswith(f"{path}: "), "the error names the file"
    assert spec.name == "my-scenario"
    for fragment in fragments:
        assert fragment in str(err)


def test_pinned_node_that_exists_and_fits_is_the_one_struck(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "    node: nova-api-1\n")
    episode = Episode(str(path), 0)
    episode.reset()
    assert [t["node"] for t in episode.ground_truth()] == ["nova-api-1"]


def test_role_no_node_of_which_the_fault_can_strike_names_the_role_key(tmp_path: Path) -> None:
    body = VALID.replace("process_crash", "db_lock_contention") + "    role: nova-api\n"
    episode = Episode(str(write(tmp_path, body)), 0)
    with pytest.raises(ScenarioError) as info:
        episode.reset()
    assert info.value.key == "faults.0.role"
    assert "nova-api" in str(info.value)


def test_pinned_node_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "    node: no-such-node\n")
    with pytest.raises(ScenarioError) as info:
        Episode(str(path), 0).reset()
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
