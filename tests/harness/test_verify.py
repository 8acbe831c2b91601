"""``pase-bench verify``: a results file's episodes run again; a forged record is caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pase_gym.harness.cli import main
from pase_gym.harness.records import RunStore, scenario_digest
from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import load_suite
from pase_gym.harness.verify import IGNORED, compare, select
from pase_gym.scenarios import load_scenario
from pase_gym.sim.plan import parse_plan

SUITE = "name: verify-test\nscenarios: [process-crash-train, disk-full-train]\nseeds: 2\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("verify")
    suite = folder / "verify-test.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = folder / "r.jsonl"
    run_suite(["random", "rule_based"], load_suite(str(suite)), out, progress=False)
    return suite, out


def test_an_honest_file_verifies(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, out = run
    assert main(["verify", "--results", str(out), "--suite", str(suite), "--quiet"]) == 0
    assert "ok: 8 of 8 episodes" in capsys.readouterr().out


def test_a_consistent_forgery_passes_the_store_but_not_verify(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite, out = run
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    victim = next(r for r in records if r["agent"] == "random" and not r["recovered"])
    victim.update(recovered=True, mttr=min(45, victim["ticks"]))  # a plausible claim
    forged = tmp_path / "forged.jsonl"
    forged.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert len(RunStore(forged).load()) == len(records)  # schema and consistency hold
    assert main(["verify", "--results", str(forged), "--suite", str(suite), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert f"| {victim['key']} | recovered | True | False |" in printed
    assert "1 of 8 replayed episodes differ" in printed


def test_a_sample_is_seeded_and_sorted() -> None:
    records = [{"key": f"k{i:02d}"} for i in range(30)]
    a = select(records, 5, seed=1)  # type: ignore[arg-type]
    assert a == select(records, 5, seed=1)  # type: ignore[arg-type]
    assert [r["key"] for r in a] == sorted(r["key"] for r in a)
    assert len(select(records, 50, seed=0)) == 30  # type: ignore[arg-type]


def test_timing_and_provenance_are_not_compared() -> None:
    base = {"key": "k", "recovered": False, "compute_s": 1.0, "git_commit": "a", "versions": {}}
    other = dict(base, compute_s=9.0, git_commit="b", versions={"x": "1"})
    assert compare(base, other) == []  # type: ignore[arg-type]
    assert {"compute_s", "git_commit", "versions"} == IGNORED


def test_a_scenario_outside_the_suite_is_a_clear_error(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run
    assert main(["verify", "--results", str(out), "--suite", "smoke", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is not in suite 'smoke'" in err and "--suite" in err


def _rewrite(out: Path, path: Path, change: Any) -> tuple[Path, dict[str, Any]]:
    """``out``'s records with ``change`` applied to the first unrecovered random episode."""
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    victim = next(r for r in records if r["agent"] == "random" and not r["recovered"])
    change(victim)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path, victim


def test_every_record_carries_its_plan_trace_and_scenario_digest(run: tuple[Path, Path]) -> None:
    _, out = run
    records = RunStore(out).load().values()
    for record in records:
        assert len(record["trace"]) == record["decisions"]
        assert all(p is None or parse_plan(p) is not None for p in record["trace"])
        spec = load_scenario(record["scenario"])
        assert record["scenario_sha256"] == scenario_digest(spec)
    assert any(p and "Restart" in p for r in records for p in r["trace"])


def test_traces_alone_reproduce_an_honest_file_without_the_agent(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite, out = run

    def no_agent(*_: Any, **__: Any) -> None:
        raise AssertionError("a traces-only check loaded an agent")

    monkeypatch.setattr("pase_gym.harness.runner.load_agent", no_agent)
    args = ["verify", "--results", str(out), "--suite", str(suite), "--quiet", "--traces-only"]
    assert main(args) == 0
    assert "ok: 8 of 8 episodes" in capsys.readouterr().out


def test_a_tampered_trace_is_named_by_a_traces_only_check(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite, out = run
    forged, victim = _rewrite(
        out, tmp_path / "f.jsonl", lambda r: r["trace"].__setitem__(0, "Wait(300)")
    )
    args = ["verify", "--results", str(forged), "--suite", str(suite), "--quiet", "--traces-only"]
    assert main(args) == 1
    printed = capsys.readouterr().out
    assert f"| {victim['key']} | return |" in printed  # the numbers no longer follow
    assert "1 of 8 replayed episodes differ" in printed


def test_a_changed_number_is_named_by_a_traces_only_check(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite, out = run
    forged, victim = _rewrite(out, tmp_path / "f.jsonl", lambda r: r.update(harmed=0))
    args = ["verify", "--results", str(forged), "--suite", str(suite), "--quiet", "--traces-only"]
    assert main(args) == 1
    assert f"| {victim['key']} | harmed | 0 |" in capsys.readouterr().out


def test_a_consistent_trace_the_agent_never_wrote_needs_the_agent_to_be_caught(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A random episode rewritten with the rule-based agent's trace and numbers for the same
    episode: consistent, so stepping the trace passes; running the agent again does not."""
    suite, out = run
    records = {r["key"]: r for r in RunStore(out).load().values()}

    def swap(victim: dict[str, Any]) -> None:
        better = records[victim["key"].replace("random|", "rule_based|", 1)]
        own = {k: victim[k] for k in ("key", "agent", "agent_spec", "compute_s")}
        victim.update({**better, **own})

    forged, victim = _rewrite(out, tmp_path / "f.jsonl", swap)
    common = ["verify", "--results", str(forged), "--suite", str(suite), "--quiet"]
    assert main([*common, "--traces-only"]) == 0
    capsys.readouterr()
    assert main(common) == 1
    assert f"| {victim['key']} | trace |" in capsys.readouterr().out


def test_signing_refuses_a_traces_only_check(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run
    key = tmp_path / "key"
    key.write_text("k" * 32, encoding="utf-8")
    args = ["verify", "--results", str(out), "--traces-only", "--sign", "--key-file", str(key)]
    assert main(args) == 2
    assert "--sign needs the agent re-run" in capsys.readouterr().err
