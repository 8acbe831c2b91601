"""Hostile scenario files: every bound is checked before anything large is built, duplicate
keys are refused, and every number a file sets is finite and inside its documented range."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pase_gym.cli import main as pase_gym_main
from pase_gym.episode import Episode
from pase_gym.errors import ScenarioError
from pase_gym.scenarios import MAX_FILE_BYTES, load_scenario
from pase_gym.scenarios.reader import MAX_DEPTH, MAX_EXPANDED_NODES, parse_yaml
from pase_gym.sim.faults import FAULT_MODELS

HEAD = "name: hostile\nsplit: test\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)
    return info.value


def alias_bomb(levels: int = 10, fan: int = 9) -> str:
    """``fan ** levels`` values in a few hundred bytes (the "billion laughs")."""
    inner = "[" + ",".join(["x"] * fan) + "]"
    text = f"&a0 {inner}"
    for i in range(1, levels):
        text = f"&a{i} [{text}" + f",*a{i - 1}" * (fan - 1) + "]"
    return text


def test_an_alias_bomb_under_the_nodes_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    body = alias_bomb()
    assert len(body) < 600  # ~3.5e9 values once expanded
    path = write(
        tmp_path, HEAD + f"topology:\n  nodes: {body}\nfaults: [{{type: process_crash}}]\n"
    )
    err = error_of(path)
    assert f"more than {MAX_EXPANDED_NODES} values" in str(err)
    assert "line 4" in str(err)


def test_a_modest_use_of_aliases_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + "faults:\n  - &crash {type: process_crash, onset: 40}\n  - *crash\n",
    )
    spec = load_scenario(path)
    assert [f.type for f in spec.faults] == ["process_crash", "process_crash"]


def test_an_alias_that_contains_itself_is_refused() -> None:
    with pytest.raises(ScenarioError, match="contains itself"):
        parse_yaml("a: &x [1, *x]\n", "inline")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (HEAD + "name: again\nfaults: [{type: process_crash}]\n", "name"),
        (HEAD + "faults: [{type: process_crash, type: memory_leak}]\n", "type"),
        (HEAD + "topology: {nodes: 30, nodes: 40}\nfaults: [{type: process_crash}]\n", "nodes"),
    ],
)
def test_duplicate_keys_are_refused_where_they_are(tmp_path: Path, text: str, key: str) -> None:
    err = error_of(write(tmp_path, text))
    assert f"duplicate key {key!r} at line" in str(err)


def test_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    text = HEAD + "faults:\n  - &f {type: process_crash, onset: 40}\n  - {<<: *f, onset: 50}\n"
    spec = load_scenario(write(tmp_path, text))
    assert [f.onset for f in spec.faults] == [40, 50]


def test_nesting_deeper_than_the_bound_is_refused() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    with pytest.raises(ScenarioError, match=r"nested more than|nested too deeply"):
        parse_yaml(text, "inline")


def test_absurd_nesting_is_a_scenario_error_not_a_recursion_error() -> None:
    text = "[" * 50_000 + "]" * 50_000
    with pytest.raises(ScenarioError, match="nested"):
        parse_yaml(text, "inline")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "# " + "x" * MAX_FILE_BYTES + "\n")
    assert "larger than" in str(error_of(path))


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "-1e308", "1e308", "0", "-0.01"])
@pytest.mark.parametrize("fault_type", sorted(t for t, c in FAULT_MODELS.items() if c.PARAMS))
def test_fault_parameters_must_be_finite_and_in_their_range(
    tmp_path: Path, fault_type: str, value: str
) -> None:
    name = next(iter(FAULT_MODELS[fault_type].PARAMS))
    text = HEAD + f"faults: [{{type: {fault_type}, params: {{{name}: {value}}}}}]\n"
    err = error_of(write(tmp_path, text))
    assert err.key == f"faults.0.params.{name}"
    assert "finite" in str(err) or "must be in [" in str(err)


@pytest.mark.parametrize("fault_type", sorted(t for t, c in FAULT_MODELS.items() if c.PARAMS))
def test_documented_parameters_inside_their_range_are_used(tmp_path: Path, fault_type: str) -> None:
    name, param = next(iter(FAULT_MODELS[fault_type].PARAMS.items()))
    assert param.lo <= param.default <= param.hi and param.doc
    text = HEAD + f"faults: [{{type: {fault_type}, params: {{{name}: {param.hi}}}}}]\n"
    episode = Episode(load_scenario(write(tmp_path, text)), 0)
    episode.reset(skip_to_incident=False)
    fault = episode.state.pending[0]
    assert fault.param(name) == param.hi
    assert math.isclose(
        type(fault)(fault.node, fault.onset, {}).param(name), param.default
    )  # the default when the file sets none


def test_an_undeclared_parameter_is_refused_with_what_is_declared(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, HEAD + "faults: [{type: memory_leak, params: {speed: 1}}]\n"))
    assert err.key == "faults.0.params.speed" and "expected rate" in str(err)
    err = error_of(
        write(tmp_path, HEAD + "faults: [{type: process_crash, params: {restarted_at: 1}}]\n")
    )
    assert "take none" in str(err)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("workload: {intensity: .nan}\n", "workload.intensity"),
        ("topology: {nodes: 30, seed: 100000000000000000000}\n", "topology.seed"),
        ("description: " + "x" * 5_000 + "\n", "description"),
    ],
)
def test_other_numbers_and_texts_are_bounded(tmp_path: Path, body: str, key: str) -> None:
    err = error_of(write(tmp_path, HEAD + body + "faults: [{type: process_crash}]\n"))
    assert err.key == key


def test_an_error_about_a_huge_value_stays_short(tmp_path: Path) -> None:
    items = ", ".join(["x"] * 2_000)
    err = error_of(
        write(
            tmp_path, HEAD + f"topology: {{nodes: [{items}]}}\nfaults: [{{type: process_crash}}]\n"
        )
    )
    assert len(str(err)) < 400


def test_checking_the_largest_legal_cloud_does_not_run_its_clock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # onsets near a 100,000 s budget: running the clock to them would take minutes
    text = HEAD + (
        "topology: {nodes: 20000}\nbudget: 100000\n"
        "faults:\n  - {type: process_crash, onset: [90000, 99000]}\n"
        "  - {type: host_power_loss, onset: 99990}\n"
    )
    path = write(tmp_path, text)
    assert pase_gym_main(["check-scenario", str(path)]) == 0
    assert "ok (hostile, split test, " in capsys.readouterr().out
