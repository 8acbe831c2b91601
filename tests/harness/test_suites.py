"""Benchmark suites: the shipped ones load, broken files say which file and which key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pase_gym.errors import ScenarioError
from pase_gym.harness.suites import SuiteError, SuiteSpec, list_suites, load_suite
from pase_gym.scenarios import list_scenarios

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped suites ------------------------------------------------------------------------


def test_shipped_suites_are_listed() -> None:
    assert {"paper", "unseen", "smoke"} <= set(list_suites())


def test_paper_suite_is_the_test_split_with_five_seeds() -> None:
    suite = load_suite("paper")
    assert isinstance(suite, SuiteSpec)
    assert (suite.name, suite.split, suite.scenarios, suite.seeds) == ("paper", "test", None, 5)
    specs = suite.scenario_specs()
    assert [s.name for s in specs] == list_scenarios("test")
    assert specs and all(s.split == "test" for s in specs)


def test_unseen_suite_is_the_unseen_split() -> None:
    suite = load_suite("unseen")
    assert suite.split == "unseen"
    specs = suite.scenario_specs()
    assert [s.name for s in specs] == list_scenarios("unseen")
    assert specs and all(s.split == "unseen" for s in specs)


def test_smoke_suite_is_small() -> None:
    suite = load_suite("smoke")
    assert suite.split is None
    assert suite.scenarios is not None
    assert 1 <= len(suite.scenarios) <= 5
    assert suite.seeds == 1
    assert [s.name for s in suite.scenario_specs()] == suite.scenarios


def test_a_suite_loads_by_path_too(tmp_path: Path) -> None:
    assert load_suite(str(REPO / "benchmarks" / "suites" / "paper.yaml")) == load_suite("paper")
    path = write(
        tmp_path, "name: mine\nscenarios: [process-crash-train, cpu-hog-test]\nseeds: 2\n", "m.yml"
    )
    suite = load_suite(str(path))
    assert (suite.name, suite.scenarios, suite.seeds) == (
        "mine",
        ["process-crash-train", "cpu-hog-test"],
        2,
    )
    assert [s.name for s in suite.scenario_specs()] == ["process-crash-train", "cpu-hog-test"]


def test_seeds_default_to_five(tmp_path: Path) -> None:
    assert load_suite(str(write(tmp_path, "name: d\nsplit: train\n"))).seeds == 5


# -- broken suites -----------------------------------------------------------------------------


def test_unknown_suite_name_lists_the_known_ones() -> None:
    with pytest.raises(SuiteError, match="unknown suite 'no-such-suite'") as info:
        load_suite("no-such-suite")
    assert "paper" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_suite_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SuiteError, match="cannot read") as info:
        load_suite(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: x\nsplit: test\nscenarios: [default]\n", ["split", "scenarios"]),
        ("name: x\nseeds: 2\n", ["split", "scenarios"]),
        ("name: x\nscenarios: []\n", ["scenarios", "empty"]),
        ("name: x\nsplit: test\ncolour: blue\n", ["colour"]),
        ("name: x\nsplit: test\nseeds: 0\n", ["seeds"]),
        ("name: x\nsplit: test\nseeds: -3\n", ["seeds"]),
        ("name: x\nsplit: test\nseeds: many\n", ["seeds"]),
        ("name: x\nsplit: test\nseeds: 2.5\n", ["seeds"]),
        ("name: x\nsplit: test\nseeds: 100000\n", ["seeds"]),
        ("name: x\nsplit: validation\n", ["split"]),
        ("name: x\nscenarios: default\n", ["scenarios"]),
        ("split: test\n", ["name"]),
        ("name: Has Spaces\nsplit: test\n", ["name"]),
    ],
    ids=[
        "split-and-scenarios",
        "neither",
        "empty-scenarios",
        "unknown-key",
        "zero-seeds",
        "negative-seeds",
        "text-seeds",
        "fractional-seeds",
        "too-many-seeds",
        "unknown-split",
        "scenarios-not-a-list",
        "no-name",
        "bad-name",
    ],
)
def test_invalid_suite_names_file_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    "text", ["- name: x\n- split: test\n", "just a string\n", "", "42\n"], ids=str.strip
)
def test_non_mapping_yaml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SuiteError, match="expected a mapping") as info:
        load_suite(str(path))
    assert str(path) in str(info.value)


def test_malformed_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nscenarios: [default\nseeds: 2\n")
    with pytest.raises(SuiteError, match="malformed YAML") as info:
        load_suite(str(path))
    assert str(path) in str(info.value)


def test_unknown_scenario_in_the_list_is_a_scenario_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nscenarios: [default, no-such-scenario]\n")
    suite = load_suite(str(path))
    with pytest.raises(ScenarioError, match="no-such-scenario"):
        suite.scenario_specs()
