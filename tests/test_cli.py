"""Tests of the ``pase-gym`` command line: output, exit codes and error reports."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pase_gym
from pase_gym.cli import main
from pase_gym.scenarios import list_scenarios, load_scenario
from pase_gym.sim.plan import parse_plan


def run(argv: list[str]) -> tuple[int, str]:
    """Exit status and stdout of ``pase-gym ARGV`` run in-process."""
    out = io.StringIO()
    status = main(argv, out=out)
    return status, out.getvalue()


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line written to stderr (and assert there is exactly one)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    assert lines[0].startswith("pase-gym: error: ")
    return lines[0]


# -- demo ----------------------------------------------------------------------------------


def test_demo_prints_incident_oracle_plan_and_metrics() -> None:
    status, out = run(["demo"])
    assert status == 0
    ref = load_scenario("default").reference
    assert ref is not None
    assert "scenario 'default'" in out
    incident = out.index("== incident at t=")
    plan_at = out.index("== oracle plan")
    metrics = out.index("== metrics")
    assert incident < plan_at < metrics
    # the incident shows what monitoring sees
    assert "ALARM" in out[incident:plan_at] or "LOG" in out[incident:plan_at]
    # the plan printed is valid plan text, and the one documented for seed 0
    plan_lines = out[plan_at:metrics].splitlines()[1:]
    printed = [line.strip() for line in plan_lines if line.strip()]
    assert printed
    for line in printed:
        assert str(parse_plan(line)) == line
    assert " | ".join(printed) == ref.plan
    (mttr_row,) = [ln for ln in out[metrics:].splitlines() if ln.startswith("MTTR (s) ")]
    assert mttr_row.split()[-1] == str(ref.mttr)
    assert "recovered" in out[metrics:]
    assert "safety score" in out[metrics:]


def test_no_subcommand_runs_the_demo() -> None:
    assert run([]) == run(["demo"])


def test_demo_json_prints_a_parseable_report_line() -> None:
    status, out = run(["demo", "--json"])
    assert status == 0
    report = json.loads(out.splitlines()[-1])
    assert report["recovered"] is True
    assert report["scenario"] == "default"
    assert report["seed"] == 0
    ref = load_scenario("default").reference
    assert ref is not None
    assert report["mttr"] == ref.mttr
    assert 0.0 <= report["safety_score"] <= 1.0


def test_demo_is_reproducible_and_the_seed_matters() -> None:
    assert run(["demo", "--seed", "3"]) == run(["demo", "--seed", "3"])
    assert run(["demo", "--seed", "3"])[1] != run(["demo", "--seed", "4"])[1]


def test_demo_runs_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nsplit: train\ntopology: {nodes: tiny}\n"
        "faults:\n  - type: process_crash\n    onset: 20\n",
        encoding="utf-8",
    )
    status, out = run(["demo", "--scenario", str(path), "--json"])
    assert status == 0
    report = json.loads(out.splitlines()[-1])
    assert report["scenario"] == "mine"
    assert report["recovered"] is True


def test_demo_exits_1_when_the_episode_is_not_recovered(tmp_path: Path) -> None:
    # the budget ends before the 60 s hold time can be met, so nothing can count as recovered
    path = tmp_path / "short.yaml"
    path.write_text(
        "name: short\nsplit: test\nbudget: 40\nfaults:\n  - type: process_crash\n    onset: 30\n",
        encoding="utf-8",
    )
    status, out = run(["demo", "--scenario", str(path), "--json"])
    assert status == 1
    assert "n/a (not recovered)" in out
    assert json.loads(out.splitlines()[-1])["recovered"] is False


def test_demo_of_an_unknown_scenario_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(["demo", "--scenario", "no-such-scenario"])
    assert status == 2
    assert out == ""
    line = error_line(capsys)
    assert "no-such-scenario" in line
    assert "default" in line  # the known names are listed


# -- catalogues ----------------------------------------------------------------------------


def test_faults_json_is_the_fault_catalogue() -> None:
    status, out = run(["faults", "--json"])
    assert status == 0
    faults = json.loads(out)
    assert len(faults) == 18
    assert faults == pase_gym.list_faults()


def test_faults_table_lists_every_fault() -> None:
    status, out = run(["faults"])
    assert status == 0
    for fault in pase_gym.list_faults():
        assert str(fault["name"]) in out


def test_primitives_json_is_the_primitive_library() -> None:
    status, out = run(["primitives", "--json"])
    assert status == 0
    prims = json.loads(out)
    assert len(prims) == 20
    assert prims == pase_gym.list_primitives()


def test_primitives_table_lists_every_signature_and_safety() -> None:
    status, out = run(["primitives"])
    assert status == 0
    lines = out.splitlines()
    for prim in pase_gym.list_primitives():
        (line,) = [ln for ln in lines if ln.startswith(str(prim["signature"]) + " ")]
        assert str(prim["safety"]) in line


def test_scenarios_lists_every_built_in_scenario() -> None:
    status, out = run(["scenarios"])
    assert status == 0
    listed = [line.split()[0] for line in out.splitlines()[2:]]
    assert listed == list_scenarios()


@pytest.mark.parametrize("split", ["train", "test", "unseen"])
def test_scenarios_split_lists_only_that_split(split: str) -> None:
    status, out = run(["scenarios", "--split", split])
    assert status == 0
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [r[0] for r in rows] == list_scenarios(split)
    assert all(r[1] == split for r in rows)


def test_scenarios_unseen_shows_the_oracle_mttr() -> None:
    status, out = run(["scenarios", "--split", "unseen"])
    assert status == 0
    for row in out.splitlines()[2:]:
        name, *_, mttr = row.split()
        ref = load_scenario(name).reference
        assert ref is not None
        assert mttr == str(ref.mttr)


# -- check-plan ----------------------------------------------------------------------------


def test_check_plan_prints_canonical_and_structured_forms() -> None:
    status, out = run(["check-plan", "Diagnose(memory_leak,l3-agent-2) ;Restart( l3-agent-2 )"])
    assert status == 0
    canonical, structured = out.splitlines()
    assert canonical == "Diagnose(memory_leak, l3-agent-2); Restart(l3-agent-2)"
    assert json.loads(structured) == {
        "diagnosis": {"fault_type": "memory_leak", "node": "l3-agent-2"},
        "steps": [{"primitive": "Restart", "args": {"node": "l3-agent-2"}}],
    }


def test_check_plan_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Restart(nova-api-1)\nScaleOut(compute, 2)\n"))
    status, out = run(["check-plan", "-"])
    assert status == 0
    assert out.splitlines()[0] == "Restart(nova-api-1); ScaleOut(compute, 2)"


def test_check_plan_syntax_error_exits_2_with_one_positioned_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out = run(["check-plan", "Restart(x"])
    assert status == 2
    assert out == ""
    line = error_line(capsys)
    assert "at position 9" in line
    assert "expected ')' or ','" in line
    assert "found end of input" in line


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("Restart(nova-api-1); Reboot(nova-api-1)", 21, "Reboot"),
        ("ScaleOut(compute, many)", 18, "many"),
        ("Restart(nova-api-1); Diagnose(memory_leak, nova-api-1)", 21, "Diagnose"),
    ],
)
def test_check_plan_semantic_errors_name_the_position(
    capsys: pytest.CaptureFixture[str], text: str, position: int, fragment: str
) -> None:
    status, _ = run(["check-plan", text])
    assert status == 2
    line = error_line(capsys)
    assert f"at position {position}" in line
    assert fragment in line


# -- check-scenario ------------------------------------------------------------------------


def test_check_scenario_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text("name: good\nsplit: unseen\nfaults:\n  - type: certificate_expiry\n")
    status, out = run(["check-scenario", str(path)])
    assert status == 0
    assert out == f"{path}: ok (good, split unseen, 219 nodes, 1 fault)\n"


def test_check_scenario_of_a_broken_file_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsplit: train\nfaults:\n  - type: process_crash\n    onset: 0\n")
    status, out = run(["check-scenario", str(path)])
    assert status == 2
    assert out == ""
    line = error_line(capsys)
    assert str(path) in line
    assert "faults.0.onset" in line


def test_check_scenario_builds_the_episode_and_reports_a_bad_pinned_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pinned.yaml"
    path.write_text(
        "name: pinned\nsplit: train\nfaults:\n  - type: process_crash\n    node: nowhere-1\n"
    )
    status, _ = run(["check-scenario", str(path)])
    assert status == 2
    line = error_line(capsys)
    assert "faults.0.node" in line
    assert "nowhere-1" in line


def test_check_scenario_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.yaml"
    status, _ = run(["check-scenario", str(path)])
    assert status == 2
    assert str(path) in error_line(capsys)


# -- argparse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["demo", "--bogus"],
        ["demo", "--seed", "many"],
        ["scenarios", "--split", "prod"],
        ["check-plan"],
        ["faults", "extra"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv, out=io.StringIO())
    assert info.value.code == 2
    assert "usage: pase-gym" in capsys.readouterr().err


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pase-gym {pase_gym.__version__}"


def test_help_lists_every_subcommand_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    commands = (
        "demo",
        "faults",
        "primitives",
        "scenarios",
        "check-plan",
        "check-scenario",
        "check-env",
    )
    assert "{" + ",".join(commands) + "}" in text
    for command in commands:
        (line,) = [ln for ln in text.splitlines() if ln.split()[:1] == [command]]
        assert len(line.split()) > 1, f"{command} has no help text"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("pase-gym")
    assert script.is_file(), f"no console script next to {sys.executable}"
    proc = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"pase-gym {pase_gym.__version__}"


def test_console_script_reports_bad_input_with_status_2() -> None:
    script = Path(sys.executable).with_name("pase-gym")
    proc = subprocess.run(
        [str(script), "check-plan", "Restart(x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("pase-gym: error: ")
    assert len(proc.stderr.splitlines()) == 1
