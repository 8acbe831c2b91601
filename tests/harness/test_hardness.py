"""The diagnosis-hardness report: giveaway tokens, pre-onset predictability, the token model;
and the committed report stays in step with the simulator."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from pase_gym.harness.cli import main
from pase_gym.harness.hardness import (
    GIVEAWAY_PRECISION,
    Sample,
    build_report,
    fault_hardness,
    markdown,
    pre_onset_accuracy,
    template,
)

ROOT = Path(__file__).resolve().parents[2]


def sample(fault: str, seed: int, *tokens: str, cloud: int = 30) -> Sample:
    return Sample("s", seed, fault, frozenset(tokens), cloud)


def test_templates_mask_node_names_and_numbers() -> None:
    assert template("nova-compute-12: queue length 431 on rabbitmq-2") == (
        "<node>: queue length <n> on <node>"
    )
    assert template("No space left on device") == "No space left on device"


def test_a_token_unique_to_a_fault_is_a_giveaway_and_a_shared_one_is_not() -> None:
    samples = [
        *(sample("crash", i, "log: exited", "alarm: NodeDown") for i in range(4)),
        *(sample("hang", i, "alarm: NodeDown") for i in range(4)),
        sample("hang", 9, "log: exited", "alarm: NodeDown"),  # one hang shows the crash line
    ]
    by_fault = {f.fault_type: f for f in fault_hardness(samples)}
    crash, hang = by_fault["crash"], by_fault["hang"]
    assert crash.best.token == "log: exited"
    assert crash.best.precision == pytest.approx(0.8) and crash.best.recall == 1.0
    assert crash.giveaway is None and not crash.given_away  # 0.8 < GIVEAWAY_PRECISION
    assert hang.best.token == "alarm: NodeDown" and hang.best.recall == 1.0
    assert hang.best.precision == pytest.approx(5 / 9)
    assert not hang.given_away
    assert GIVEAWAY_PRECISION == 0.9


def test_a_rare_but_exact_token_is_not_a_giveaway() -> None:
    samples = [sample("leak", i, "log: rare" if i == 0 else "alarm: HighMemory") for i in range(4)]
    samples += [sample("hog", i, "alarm: HighMemory") for i in range(4)]
    leak = {f.fault_type: f for f in fault_hardness(samples)}["leak"]
    assert leak.giveaway is not None and leak.giveaway.precision == 1.0
    assert leak.giveaway.recall == 0.25 and not leak.given_away


def test_pre_onset_accuracy_finds_a_recognisable_cloud() -> None:
    telling = [sample(f, s, cloud=size) for f, size in (("a", 20), ("b", 30)) for s in range(6)]
    accuracy, majority = pre_onset_accuracy(telling)
    assert accuracy == 1.0 and majority == 0.5
    same = [sample(f, s, cloud=30) for f in ("a", "b") for s in range(6)]
    accuracy, majority = pre_onset_accuracy(same)
    assert accuracy == majority == 0.5
    assert all(math.isnan(v) for v in pre_onset_accuracy([sample("a", 0)]))


@pytest.mark.slow
def test_the_committed_report_is_in_step_with_the_simulator(tmp_path: Path) -> None:
    """Regenerate the published report (seconds) and compare: a change of dynamics that
    moves it must regenerate ``benchmarks/hardness`` in the same commit."""
    assert main(["hardness", "--out", str(tmp_path), "--quiet"]) == 0
    published = ROOT / "benchmarks" / "hardness"
    fresh = json.loads((tmp_path / "hardness.json").read_text(encoding="utf-8"))
    stored = json.loads((published / "hardness.json").read_text(encoding="utf-8"))
    # The flat model (a standardised logistic regression fitted by L-BFGS) is the one figure
    # that moves between processors and thread counts: the BLAS kernels round differently,
    # and its test F1 moved by up to 0.006 (0.124-0.130) between two machines and between 1
    # and 2 threads on one. It is compared within 0.02; everything else to the bit.
    flat, flat_stored = fresh.pop("flat_model_test_f1"), stored.pop("flat_model_test_f1")
    assert flat.keys() == flat_stored.keys()
    assert all(abs(flat[v] - flat_stored[v]) <= 0.02 for v in flat), (flat, flat_stored)
    assert fresh == stored

    def masked(text: str) -> str:
        return re.sub(r"test macro-F1 \*\*\d\.\d\d\*\*", "test macro-F1 **x**", text)

    assert masked((tmp_path / "hardness.md").read_text(encoding="utf-8")) == masked(
        (published / "hardness.md").read_text(encoding="utf-8")
    )
    assert fresh["episodes"]["train"] >= 500 and fresh["episodes"]["test"] >= 500


def test_a_small_report_covers_every_fault_type_of_the_split() -> None:
    report = build_report(["test"], episodes=18)
    faults = {f.fault_type for f in report.faults["test"]}
    assert {"process_crash", "disk_full", "db_lock_contention"} <= faults
    assert report.token_model_f1 is None  # needs both splits
    text = markdown(report)
    assert "## test split: 18 first alarms" in text


def test_bad_splits_are_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hardness", "--splits", "train,prod", "--quiet"]) == 2
    assert "--splits: expected train, test or unseen" in capsys.readouterr().err


def test_the_published_report_meets_the_validity_targets() -> None:
    """What the committed report (kept in step by the slow test above) must show: diagnosis
    without a probe is hard for a trained classifier, the scripted expert with at most three
    probes is not stopped by it, and at most a quarter of the fault types is given away."""
    report = json.loads(
        (ROOT / "benchmarks" / "hardness" / "hardness.json").read_text(encoding="utf-8")
    )
    test = report["diagnosis_f1"]["test"]
    assert test["gcn_fr"] <= 0.85
    assert test["expert"] >= 0.95
    assert all(f1 <= 0.85 for f1 in report["flat_model_test_f1"].values())
    assert set(report["flat_model_test_f1"]) == {"service", "node"}
    assert report["token_model_test_f1"] <= 0.85
    given = [f for f in report["faults"]["test"] if f["given_away"]]
    assert len(given) <= len(report["faults"]["test"]) // 4
    assert report["expert_mean_probes"]["test"] <= 3


def test_a_small_report_scores_the_expert_and_the_agents() -> None:
    class Guess:  # diagnoses every first alarm as a crash, without looking
        def reset(self, seed: int) -> None:
            pass

        def act(self, observation: object, info: object) -> str:
            return "Diagnose(process_crash, nova-api-1); Wait(10)"

    report = build_report(["test"], episodes=18, agents={"guess": Guess()})
    scores = report.diagnosis_f1["test"]
    assert scores["expert"] > 0.8 > scores["guess"]
    assert 0 < report.expert_probes["test"] <= 3
    text = markdown(report)
    assert "The scripted expert" in text and "`guess`'s first answer" in text
