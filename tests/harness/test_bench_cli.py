"""``pase-bench``: run, report, validate, list; bad input exits 2 with one error line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pase_gym.clitools import EXIT_USAGE
from pase_gym.harness.cli import main
from pase_gym.harness.runner import RunStore

SUITE = "name: cli-test\nscenarios: [process-crash-train, cpu-hog-train]\nseeds: 1\n"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "cli-test.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def results(suite_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-runs") / "cli-test.jsonl"
    code = main(run_argv(suite_file, out))
    assert code == 0
    return out


def run_argv(suite_file: Path, out: Path, *extra: str) -> list[str]:
    """``run`` of random and oracle on ``suite_file`` into ``out``, without a progress bar."""
    return [
        "run",
        "--suite",
        str(suite_file),
        "--agents",
        "random,oracle",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "nothing on stderr"
    assert err[-1].startswith("pase-bench: error: "), err
    return err[-1]


# -- run ---------------------------------------------------------------------------------------


def test_run_writes_results_and_prints_the_table(
    suite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "r.jsonl"
    code = main(run_argv(suite_file, out, "--seeds", "2"))
    assert code == 0
    records = RunStore(out).load()
    assert len(records) == 2 * 2 * 2
    assert {r["agent"] for r in records.values()} == {"random", "oracle"}
    assert {r["seed"] for r in records.values()} == {0, 1}
    captured = capsys.readouterr()
    assert "### suite cli-test" in captured.out
    assert "| Model | Fault Detection (F1) | Average Recovery Time (s) |" in captured.out
    assert "| oracle (ground truth) |" in captured.out
    assert "| random |" in captured.out
    assert f"8 episodes in {out}" in captured.out
    assert captured.err == ""  # --quiet: no progress bar


def test_run_again_resumes_without_rerunning(
    suite_file: Path, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = results.read_bytes()
    assert main(run_argv(suite_file, results)) == 0
    assert results.read_bytes() == before
    assert "4 episodes in" in capsys.readouterr().out


def test_run_with_report_folder(
    suite_file: Path, results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "rep"
    assert main(run_argv(suite_file, results, "--report", str(folder))) == 0
    assert (folder / "report.md").is_file()
    assert f"report: {folder / 'report.md'}" in capsys.readouterr().out


def test_run_defaults_to_runs_folder(
    suite_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--suite", str(suite_file), "--agents", "oracle", "--quiet"]) == 0
    assert len(RunStore(tmp_path / "runs" / "cli-test.jsonl").load()) == 2


# -- report ------------------------------------------------------------------------------------


def test_report_writes_markdown_summary_and_figures(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(["report", "--results", str(results), "--out", str(out), "--title", "CLI"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / "report.md")
    text = (out / "report.md").read_text(encoding="utf-8")
    assert text.startswith("### CLI\n")
    assert "| oracle (ground truth) |" in text
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["detection_f1.png", "mttr.png", "success_by_family.png"]
    for name in pngs:
        assert (out / name).read_bytes().startswith(PNG)
        assert f"]({name})" in text  # linked from the report
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert sorted(summary) == ["oracle", "random"]
    assert summary["oracle"]["success_rate"]["mean"] == 1.0
    assert summary["oracle"]["mttr"]["n"] == 1


def test_report_without_figures(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    assert main(["report", "--results", str(results), "--out", str(out), "--no-figures"]) == 0
    assert (out / "report.md").is_file() and (out / "summary.json").is_file()
    assert not list(out.glob("*.png"))


# -- validate and list ----------------------------------------------------------------------------


def test_validate(suite_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--suite", str(suite_file), "--agents", "random,oracle"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: suite cli-test (2 scenarios x 1 seeds), agents random, oracle")


def test_validate_a_shipped_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--suite", "paper", "--agents", "oracle"]) == 0
    assert "ok: suite paper (18 scenarios x 5 seeds)" in capsys.readouterr().out


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    suites = next(line for line in out.splitlines() if line.startswith("suites: "))
    assert {"paper", "smoke", "unseen"} <= set(suites.removeprefix("suites: ").split(", "))
    agents = "random, rule_based, prober, gcn_fr, detr_fd, ifshm, pase, pase_full, oracle"
    assert f"agents: {agents}" in out


# -- bad input ------------------------------------------------------------------------------------


def test_unknown_agent(
    suite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.jsonl"
    code = main(["run", "--suite", str(suite_file), "--agents", "random,nope", "--out", str(out)])
    assert code == EXIT_USAGE == 2
    assert "unknown agent 'nope'" in error_line(capsys)
    assert not out.exists()  # failed before any episode


def test_unknown_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--suite", "no-such-suite", "--agents", "random"]) == 2
    assert "unknown suite 'no-such-suite'" in error_line(capsys)


def test_broken_suite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nsplit: test\nseeds: 0\n", encoding="utf-8")
    assert main(["validate", "--suite", str(path), "--agents", "random"]) == 2
    line = error_line(capsys)
    assert str(path) in line and "seeds" in line


def test_unknown_scenario_in_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nscenarios: [no-such-scenario]\n", encoding="utf-8")
    assert main(["validate", "--suite", str(path), "--agents", "random"]) == 2
    assert "no-such-scenario" in error_line(capsys)


def test_validate_reports_a_broken_agent(
    suite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tmp_path / "broken.py"
    agent.write_text("raise ImportError('missing dependency')\n", encoding="utf-8")
    assert main(["validate", "--suite", str(suite_file), "--agents", str(agent)]) == 2
    line = error_line(capsys)
    assert str(agent) in line and "ImportError: missing dependency" in line


def test_missing_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.jsonl"
    assert main(["report", "--results", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert f"{missing}: no such results file" in error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_corrupt_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('garbage\n{"key": "a"}\n', encoding="utf-8")
    assert main(["report", "--results", str(path), "--out", str(tmp_path / "o")]) == 2
    assert f"{path}:1: not a JSON record" in error_line(capsys)


def test_empty_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    assert main(["report", "--results", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "no records" in error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--seeds", "0"], "expected a positive integer, found 0"),
        (["run", "--seeds", "two"], "expected a positive integer, found 'two'"),
        (["run", "--workers", "-1"], "expected a positive integer"),
        (["run", "--agents", "random,random"], "an agent is listed twice"),
        (["run", "--agents", " , "], "expected a comma-separated list of agents"),
        (["run", "--device", "tpu"], "unknown device 'tpu': expected auto"),
        (["report", "--out", "x"], "--results"),
        (["frobnicate"], "invalid choice"),
    ],
    ids=[
        "zero-seeds",
        "text-seeds",
        "negative-workers",
        "duplicate-agents",
        "no-agents",
        "bad-device",
        "report-needs-results",
        "unknown-command",
    ],
)
def test_argument_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "pase-bench" in err and message in err


def test_run_into_a_corrupt_results_file(
    suite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('garbage\n{"key": "a"}\n', encoding="utf-8")
    assert main(run_argv(suite_file, path)) == 2
    assert f"{path}:1: not a JSON record" in error_line(capsys)
