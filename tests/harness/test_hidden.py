"""The hidden split: drawn from a secret key, valid, different per key, out of reach of a
sandboxed agent, and refused without its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_files import write_agent

from pase_gym.errors import SuiteError
from pase_gym.harness import hidden
from pase_gym.harness.cli import main
from pase_gym.harness.runner import run_suite
from pase_gym.harness.sandbox import namespaces_available
from pase_gym.harness.suites import SuiteSpec, list_suites, load_suite
from pase_gym.sim.faults import faults_for_split

KEY = "a key of the board, long enough"


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hidden.KEY_ENV, KEY)
    monkeypatch.delenv(hidden.KEY_FILE_ENV, raising=False)


def test_without_a_key_the_hidden_suite_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hidden.KEY_ENV, raising=False)
    monkeypatch.delenv(hidden.KEY_FILE_ENV, raising=False)
    with pytest.raises(SuiteError, match="needs its key"):
        load_suite("hidden")
    monkeypatch.setenv(hidden.KEY_ENV, "short")
    with pytest.raises(SuiteError, match="at least 16 bytes"):
        load_suite("hidden")
    assert "hidden" in list_suites()


@pytest.mark.usefixtures("keyed")
def test_the_same_key_draws_the_same_valid_scenarios() -> None:
    suite = load_suite("hidden")
    specs = suite.scenario_specs()
    assert suite.name == "hidden" and len(specs) == hidden.SCENARIOS
    allowed = set(faults_for_split("test")) | set(faults_for_split("unseen"))
    for i, spec in enumerate(specs):
        assert spec == hidden.draw_scenario(KEY.encode(), i)  # deterministic
        assert {t for f in spec.faults for t in f.types()} <= allowed
        assert spec.split in ("test", "unseen")
    assert len({s.topology.nodes for s in specs}) > len(specs) // 2  # the cloud says little
    folder = hidden.hidden_folder()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"


def test_another_key_draws_other_scenarios() -> None:
    one = [hidden.draw_scenario(b"first key of the board!!", i) for i in range(6)]
    two = [hidden.draw_scenario(b"second key of the board!", i) for i in range(6)]
    assert one != two


@pytest.mark.usefixtures("keyed")
def test_the_key_can_come_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "board.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    monkeypatch.delenv(hidden.KEY_ENV)
    monkeypatch.setenv(hidden.KEY_FILE_ENV, str(key_file))
    assert hidden.load_key() == KEY.encode()
    assert str(key_file.resolve()) in hidden.hidden_paths()


@pytest.mark.usefixtures("keyed")
def test_the_oracle_recovers_hidden_scenarios(tmp_path: Path) -> None:
    suite = load_suite("hidden")
    few = SuiteSpec(name="hidden", scenarios=suite.scenario_sources()[:6], seeds=1)
    records = run_suite(["oracle"], few, tmp_path / "r.jsonl", progress=False)
    assert len(records) == 6 and all(r["recovered"] for r in records)
    assert {r["suite"] for r in records} == {"hidden"}


@pytest.mark.skipif(not namespaces_available(), reason="hiding files needs the namespaces")
@pytest.mark.usefixtures("keyed")
def test_a_sandboxed_agent_sees_neither_the_key_nor_the_hidden_scenarios(tmp_path: Path) -> None:
    folder = hidden.hidden_folder()
    act = f"""
        found = os.listdir({str(folder)!r}) if os.path.isdir({str(folder)!r}) else []
        if found or os.environ.get({hidden.KEY_ENV!r}):
            raise RuntimeError(f"saw {{found[:3]}}")
        return "Wait(10)"
    """
    agent = write_agent(tmp_path / "snoop.py", act, name="snoop", header="import os")
    suite = load_suite("hidden")
    few = SuiteSpec(name="hidden", scenarios=suite.scenario_sources()[:2], seeds=1)
    records = run_suite([agent], few, tmp_path / "r.jsonl", progress=False)
    assert [r["agent_errors"] for r in records] == [0, 0]
    assert len(list(folder.iterdir())) == hidden.SCENARIOS  # the evaluator still sees them


def test_the_cli_takes_the_key_file_and_checks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.key"
    argv = ["run", "--suite", "hidden", "--hidden-key-file", str(missing), "--quiet"]
    assert main(argv) == 2
    assert "--hidden-key-file: no such file" in capsys.readouterr().err
