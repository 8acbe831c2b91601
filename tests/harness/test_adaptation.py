"""The adaptation stream: its plan, the feedback an agent gets (outcome and return, never the
fault), the adaptation-episodes measure, and the ``pase-bench adapt`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pase_gym.harness.adaptation import (
    FEEDBACK_KEYS,
    Stream,
    adaptation_episodes,
    rolling,
    run_stream,
    stream_of,
    summary,
)
from pase_gym.harness.cli import main
from pase_gym.scenarios import list_scenarios

LEARNER = """
import json, os
from pase_gym.sim.plan import Call, Plan

class Agent:
    name = "learner"

    def reset(self, seed):
        pass

    def act(self, observation, info):
        return Plan((Call("Wait", (10,)),))

    def learn(self, feedback):
        with open(os.environ["LEARNER_LOG"], "a") as f:
            f.write(json.dumps(feedback) + "\\n")
"""


def test_adaptation_episodes_counts_until_the_rolling_rate_holds() -> None:
    f, t = False, True
    assert adaptation_episodes([f, f, f, t, t, t, t, t], switch=3) == 1
    # two failures, then successes: the last five reach 0.8 at the sixth unseen episode
    assert adaptation_episodes([t, t, t, f, f, t, t, t, t, t, t], switch=3) == 6
    # it must hold to the end: a late relapse moves the point past it
    assert adaptation_episodes([t, f, t, t, t, t, f, f, t, t, t, t, t], switch=1) == 11
    assert adaptation_episodes([t, t, f, f, f, f], switch=2) is None
    assert list(rolling([t, f, t], window=2)) == [1.0, 0.5, 0.5]


def test_a_stream_plays_known_faults_then_the_unseen_one() -> None:
    stream = stream_of("deadlock", episodes=12, switch=4, seed=3)
    plan = stream.plan()
    test = set(list_scenarios("test"))
    assert [p for _, _, p in plan] == ["before"] * 4 + ["after"] * 8
    assert all(s in test for s, _, _ in plan[:4])
    assert {s for s, _, _ in plan[4:]} == {"cpu-memory-deadlock-unseen"}
    assert len({seed for _, seed, _ in plan}) == 12
    assert plan == stream_of("deadlock", episodes=12, switch=4, seed=3).plan()
    with pytest.raises(ValueError, match="0 < switch < episodes"):
        Stream("x", "cpu-memory-deadlock-unseen", episodes=5, switch=5).plan()
    with pytest.raises(ValueError, match="unknown stream"):
        stream_of("nope")


def test_a_learning_agent_gets_each_outcome_and_never_the_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = tmp_path / "learner.py"
    agent.write_text(LEARNER)
    log = tmp_path / "feedback.jsonl"
    monkeypatch.setenv("LEARNER_LOG", str(log))
    stream = stream_of("certificate", episodes=4, switch=2)
    rows = run_stream(str(agent), stream, tmp_path / "rows.jsonl")
    feedback = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(feedback) == 4 and all(set(f) == set(FEEDBACK_KEYS) for f in feedback)
    assert [f["recovered"] for f in feedback] == [r["recovered"] for r in rows]
    text = log.read_text()
    assert "certificate" not in text and "fault" not in text and "node" not in text
    stored = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert stored == rows and all(r["learns"] for r in rows)
    table = summary(rows, stream.switch)
    assert table["learner"]["after"] == 0.0  # waiting recovers nothing
    # an agent whose learning is switched off (``learns = False``) gets no feedback
    switched_off = tmp_path / "switched_off.py"
    switched_off.write_text(LEARNER.replace('name = "learner"', 'name = "off"\n    learns = False'))
    log.unlink()
    off = run_stream(str(switched_off), stream, tmp_path / "off.jsonl")
    assert not log.exists() and not any(r["learns"] for r in off)


def test_the_adapt_command_prints_a_table_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "adapt.jsonl"
    args = ["adapt", "--agents", "prober", "--episodes", "6", "--switch", "2", "--quiet"]
    assert main([*args, "--out", str(out), "--figure", str(tmp_path / "fig.png")]) == 0
    printed = capsys.readouterr().out
    assert "| prober | no | 1.00 | 1.00 | 1.00 | 1 |" in printed
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert main([*args, "--out", str(out)]) == 2
    assert "not resumable" in capsys.readouterr().err
    bad = ["adapt", "--agents", "prober", "--episodes", "3", "--switch", "3", "--quiet"]
    assert main([*bad, "--out", str(tmp_path / "b.jsonl")]) == 2
    assert "0 < switch < episodes" in capsys.readouterr().err


def test_adapt_report_merges_row_files_into_the_table_and_fig4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    common = ["--episodes", "4", "--switch", "2", "--quiet", "--stream", "certificate"]
    assert main(["adapt", "--agents", "prober", *common, "--out", str(first)]) == 0
    assert main(["adapt", "--agents", "random", *common, "--out", str(second)]) == 0
    capsys.readouterr()
    out = tmp_path / "report"
    assert main(["adapt-report", "--results", str(first), str(second), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| prober | no | 1.00 | 1.00 | 1.00 | 1 |" in printed
    assert "| random | no | 0.00 | 0.00 | 0.00 | never |" in printed
    data = json.loads((out / "summary.json").read_text())
    assert data["switch"] == 2 and set(data["agents"]) == {"prober", "random"}
    assert (out / "fig4.png").stat().st_size > 0
    assert len((out / "rows.jsonl").read_text().splitlines()) == 8
    # the same file twice, a damaged line, another stream: one clear error each
    assert main(["adapt-report", "--results", str(first), str(first), "--out", str(out)]) == 2
    assert "position 0 twice" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(first.read_text().replace('"safe": true', '"safe": "yes"', 1))
    assert main(["adapt-report", "--results", str(broken), "--out", str(out)]) == 2
    assert f"{broken}:1: 'safe': expected bool" in capsys.readouterr().err
    other = tmp_path / "other.jsonl"
    other.write_text(second.read_text().replace('"certificate"', '"deadlock"'))
    assert main(["adapt-report", "--results", str(first), str(other), "--out", str(out)]) == 2
    assert "several streams" in capsys.readouterr().err


def test_a_stream_can_be_replayed_from_its_start(tmp_path: Path) -> None:
    stream = stream_of("certificate", episodes=5, switch=2)
    whole = run_stream("rule_based", stream, tmp_path / "whole.jsonl")
    start = run_stream("rule_based", stream, tmp_path / "start.jsonl", stop=3)
    assert start == whole[:3] and len(whole) == 5
