"""The README's examples run as written and its claims about them hold."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import pase_gym
from pase_gym.cli import build_parser, main
from pase_gym.episode import Episode
from pase_gym.scenarios import parse_scenario

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    """The text of the README section headed ``title`` (up to the next heading)."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match[1]


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


def run_snippet() -> tuple[dict[str, Any], str]:
    (snippet,) = code_blocks(section("Using the simulator"), "python")
    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, str(README), "exec"), namespace)
    return namespace, out.getvalue()


def test_using_the_simulator_snippet_runs_and_prints() -> None:
    namespace, printed = run_snippet()
    assert isinstance(namespace["episode"], Episode)
    assert isinstance(namespace["plan"], pase_gym.Plan)
    # what monitoring sees, the dry run's prediction and the report are all printed
    assert "Prediction(recovered=" in printed
    assert "'recovered': False" in printed
    assert "'mttr'" in printed


def test_the_snippet_plan_is_the_right_diagnosis_but_only_a_mitigation() -> None:
    namespace, _ = run_snippet()
    episode: Episode = namespace["episode"]
    plan: pase_gym.Plan = namespace["plan"]
    (truth,) = episode.ground_truth()
    # the README's point is about the fix, not the target: the plan names the true fault and node
    assert plan.diagnosis == pase_gym.Diagnosis(truth["fault_type"], truth["node"])
    assert all(truth["node"] in call.args for call in plan.steps)
    # ... and still does not count as recovered
    assert not episode.recovered
    assert episode.report().recovered is False
    assert episode.report().mttr is None


def test_rollback_then_restart_recovers_the_snippet_episode() -> None:
    namespace, _ = run_snippet()
    scenario = namespace["episode"].scenario
    episode = Episode(scenario, seed=namespace["episode"].seed)
    episode.reset()
    (truth,) = episode.ground_truth()
    node = truth["node"]
    fix = pase_gym.parse_plan(f"Rollback({node}); Restart({node})")
    assert episode.simulate(fix).recovered
    episode.step(fix)
    assert episode.run_until_recovered()
    assert episode.report().recovered is True
    assert episode.mttr is not None


def test_cli_table_lists_exactly_the_subcommands() -> None:
    documented = set(re.findall(r"^\| `pase-gym ([a-z-]+)", section("Command line"), re.M))
    usage = build_parser().format_usage()
    (choices,) = re.findall(r"\{([a-z,-]+)\}", usage)
    assert documented == set(choices.split(","))


def test_cli_error_example_is_what_the_cli_prints(capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = re.findall(r"`(pase-gym: error: [^`]+)`", section("Command line"))
    assert main(["check-plan", "Restart(x"], out=io.StringIO()) == 2
    assert capsys.readouterr().err == example + "\n"


def test_scenario_yaml_example_is_a_valid_scenario() -> None:
    (example,) = code_blocks(section("The model"), "yaml")
    spec = parse_scenario(yaml.safe_load(example), source="README.md")
    assert spec.name == "memory-leak-test"
    assert spec.split == "test"


def test_documented_counts_match_the_catalogues() -> None:
    model = section("The model")
    assert "**Faults** (18 types, 9 families" in model
    faults = pase_gym.list_faults()
    assert len(faults) == 18
    assert len({f["family"] for f in faults}) == 9
    match = re.search(r"\*\*Recovery primitives and probes\*\* \(20\): (.*?) —", model, re.S)
    assert match
    documented = re.findall(r"`(\w+)`", match[1])
    assert documented == [p["name"] for p in pase_gym.list_primitives()]


def test_documented_example_plan_parses() -> None:
    intro = README.read_text(encoding="utf-8").split("## ", 1)[0]
    (example,) = code_blocks(intro, "")
    plan = pase_gym.parse_plan(example.strip())
    assert str(plan) == example.strip()
