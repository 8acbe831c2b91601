"""The results store: every record checked when read (schema, self-consistency, duplicates),
errors naming FILE:LINE and the field, and nothing written that could not be read back."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from pase_gym.errors import ResultsError
from pase_gym.harness.cli import main as bench_main
from pase_gym.harness.records import Record, RunStore, check_record, contradictions, record_key
from pase_gym.harness.runner import Job, run_episode


@lru_cache(maxsize=1)
def _episode() -> str:
    return json.dumps(run_episode(Job("random", "t", "process-crash-train", 0)), sort_keys=True)


def real(episode_seed: int = 0, **changes: Any) -> dict[str, Any]:
    """A record the runner wrote, for another seed (its key follows) and with ``changes``."""
    rec: dict[str, Any] = json.loads(_episode())
    rec["seed"] = episode_seed
    rec["key"] = record_key(rec["agent_spec"], rec["suite"], rec["scenario"], episode_seed)
    rec.update(changes)
    return rec


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ResultsError) as info:
        RunStore(path).load()
    return str(info.value)


def test_the_runners_records_are_valid_and_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "sub" / "r.jsonl")
    assert store.load() == {}
    a, b = real(0), real(1)
    store.append(a)  # type: ignore[arg-type]
    store.append(b)  # type: ignore[arg-type]
    assert store.load() == {a["key"]: a, b["key"]: b}
    assert contradictions(a) == []  # type: ignore[arg-type]


def test_store_drops_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    store = RunStore(path)
    store.append(real(0))  # type: ignore[arg-type]
    store.append(real(1))  # type: ignore[arg-type]
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(real(2))[:40])
    assert len(store.load()) == 2
    assert path.read_text(encoding="utf-8").endswith("\n")  # cut off the file, not skipped
    store.append(real(2))  # type: ignore[arg-type]
    assert len(store.load()) == 3


def test_store_drops_a_torn_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    RunStore(path).append(real(0))  # type: ignore[arg-type]
    with path.open("ab") as f:
        f.write('{"key": "é'.encode()[:-1])  # cut inside a UTF-8 sequence
    assert len(RunStore(path).load()) == 1


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        ("this is not json", "not a JSON record"),
        ('{"key": ', "not a JSON record"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('"text"', "expected a JSON object, found str"),
        ("null", "expected a JSON object, found NoneType"),
        ('{"no_key": 1}', "field 'key': Field required"),
        ('{"key": "a"}', "field '"),
        ("NaN", "not a JSON record"),
    ],
)
def test_garbage_in_the_middle_names_file_and_line(
    tmp_path: Path, garbage: str, message: str
) -> None:
    path = write_lines(tmp_path / "r.jsonl", json.dumps(real(0)), "", garbage, json.dumps(real(1)))
    error = load_error(path)
    assert error.startswith(f"{path}:3: ") and message in error
    assert path.read_text(encoding="utf-8").count("\n") == 4  # nothing was cut


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seed": True}, "seed"),  # a bool is not an int
        ({"seed": "0"}, "seed"),
        ({"mttr": 12.5}, "mttr"),
        ({"cost": "cheap"}, "cost"),
        ({"recovered": "yes"}, "recovered"),
        ({"fault_types": "process_crash"}, "fault_types"),
        ({"versions": {"numpy": 2}}, "versions.numpy"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_field_of_the_wrong_type_is_named(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    path = write_lines(tmp_path / "r.jsonl", json.dumps(real(0, **changes)))
    error = load_error(path)
    assert error.startswith(f"{path}:1: field {field!r}"), error


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    rec = real(0)
    del rec["mttr"]
    error = load_error(write_lines(tmp_path / "r.jsonl", json.dumps(rec)))
    assert "field 'mttr'" in error and "required" in error.lower()


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    line = json.dumps(real(0, cost=float("inf")))  # Python writes it as Infinity
    assert '"cost": Infinity' in line
    error = load_error(write_lines(tmp_path / "r.jsonl", line))
    assert error.startswith(f"{tmp_path / 'r.jsonl'}:1: not a JSON record")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"recovered": True, "mttr": None}, "a recovered episode needs its MTTR"),
        ({"recovered": False, "mttr": 30}, "an unrecovered episode has no MTTR"),
        ({"recovered": True, "mttr": 10**6}, "mttr <= ticks"),
        ({"recovered": True, "mttr": -1}, "mttr <= ticks"),
        ({"key": "someone|else|x|0"}, "field 'key'"),
        ({"safe_calls": 10**6}, "more safe calls than executed calls"),
        ({"plan_steps": 10**6}, "more recovery calls"),
        (
            {"harmed": 3, "safe_calls": 2, "executed_calls": 2, "plan_steps": 0},
            "every call counted safe",
        ),
        ({"ticks": -5}, "field 'ticks'"),
        ({"compute_s": -1.0}, "field 'compute_s'"),
        ({"split": "secret"}, "field 'split'"),
        ({"diagnosis": "process_crash", "diagnosed_node": None}, "or neither"),
        ({"fault_types": []}, "one fault type, node and family per fault"),
        ({"families": ["network"]}, "process_crash is of family 'process'"),
        ({"agent_errors": 10**6}, "more errors than the agent's calls"),
        ({"trace": []}, "expected a plan for each of the"),
        ({"trace": ["Wait(10)"] * 500}, "expected a plan for each of the"),
        ({"scenario_sha256": "abc"}, "64 lowercase hexadecimal digits"),
        ({"scenario_sha256": "Z" * 64}, "64 lowercase hexadecimal digits"),
    ],
)
def test_a_record_that_contradicts_itself_is_refused(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = write_lines(tmp_path / "r.jsonl", json.dumps(real(0)), json.dumps(real(1, **changes)))
    error = load_error(path)
    assert error.startswith(f"{path}:2: ") and message in error, error


def test_an_exact_duplicate_line_is_refused(tmp_path: Path) -> None:
    line = json.dumps(real(0))
    path = write_lines(tmp_path / "r.jsonl", line, json.dumps(real(1)), line)
    error = load_error(path)
    assert error.startswith(f"{path}:3: an exact duplicate of the episode of line 1")


def test_a_second_record_for_an_episode_is_refused(tmp_path: Path) -> None:
    other = real(0, **{"return": 9.0})  # the same episode, another outcome
    path = write_lines(tmp_path / "r.jsonl", json.dumps(real(0)), json.dumps(other))
    error = load_error(path)
    assert error.startswith(f"{path}:2: a second record for the episode of line 1")


def test_append_refuses_what_load_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with pytest.raises(ResultsError, match="needs its MTTR"):
        RunStore(path).append(real(0, recovered=True, mttr=None))  # type: ignore[arg-type]
    assert not path.exists()


def test_check_record_returns_the_record() -> None:
    rec = real(3)
    checked: Record = check_record(rec, "here")
    assert checked == rec


@pytest.mark.parametrize("command", ["report", "run"])
def test_the_cli_answers_a_self_contradicting_record_with_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = write_lines(tmp_path / "r.jsonl", json.dumps(real(0, recovered=True, mttr=None)))
    argv = (
        ["report", "--results", str(path), "--out", str(tmp_path / "o")]
        if command == "report"
        else ["run", "--suite", "smoke", "--agents", "random", "--out", str(path), "--quiet"]
    )
    assert bench_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = f"{path}:1: field 'mttr': a recovered episode needs its MTTR, found null"
    assert err[-1] == f"pase-bench: error: {expected}"
    assert "Traceback" not in "\n".join(err)
