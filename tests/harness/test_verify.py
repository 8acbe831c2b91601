"""``pase-bench verify``: a results file's episodes run again; a forged record is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pase_gym.harness.cli import main
from pase_gym.harness.records import RunStore
from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import load_suite
from pase_gym.harness.verify import IGNORED, compare, select

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
