"""The feasibility metric: agents that verify their plans have their verifier judged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_files import write_agent

from pase_gym.errors import ResultsError
from pase_gym.harness.metrics import METRICS
from pase_gym.harness.records import check_record
from pase_gym.harness.report import markdown_table
from pase_gym.harness.runner import Job, replay_trace, run_episode

pytest.importorskip("torch")

# an agent that scores candidate plans with the shipped NSWM and runs the best; its first
# decision runs a wait (a plan that does not recover), so both outcomes occur
VERIFYING = dict(
    header="""
        from pase_gym.worldmodel import Seen
        from pase_gym.worldmodel.verifier import load_verifier
        VERIFIER = load_verifier()
    """,
    reset="self.steps = 0",
    act="""
        seen = Seen.of(observation, info)
        alarmed = [seen.names[i] for i in range(seen.n) if seen.alarms[i].sum() > 0]
        candidates = ["Wait(10)"] if self.steps == 0 else [
            f"{p}({n})" for n in alarmed[:6] for p in ("Restart", "Rollback", "Failover")
        ] or ["Wait(10)"]
        self.steps += 1
        scores = VERIFIER.score([seen] * len(candidates), candidates)
        best = int(scores.argmax())
        self.last_feasibility = float(scores[best])
        return candidates[best]
    """,
)


def test_a_verifying_agent_gets_its_scores_and_outcomes_recorded(tmp_path: Path) -> None:
    spec = write_agent(tmp_path / "verifying.py", name="verifying", **VERIFYING)
    records = [
        run_episode(Job(spec, "s", scenario, seed, isolation="in-process"))
        for scenario in ("process-crash-test", "bad-deploy-test")
        for seed in range(2)
    ]
    for r in records:
        assert len(r["feasibility"]) == len(r["plan_good"]) == len(r["trace"]) > 1
        assert r["plan_good"][0] is False  # the first plan waits
        check_record(json.loads(json.dumps(r)), "test")
    auc = METRICS["feasibility_auc"].compute(records)
    assert auc is not None and 0.0 <= auc <= 1.0
    assert "Feasibility AUC" in markdown_table(records)
    # replaying the trace (pase-bench verify) recomputes the outcomes the same way
    replayed = replay_trace(Job(spec, "s", "process-crash-test", 0), records[0])
    assert replayed["plan_good"] == records[0]["plan_good"]


def test_a_sandboxed_agent_s_score_crosses_the_pipe(tmp_path: Path) -> None:
    spec = write_agent(tmp_path / "verifying.py", name="verifying", **VERIFYING)
    record = run_episode(Job(spec, "s", "process-crash-test", 0, isolation="process"))
    assert record["isolation"] == "process"
    assert all(isinstance(f, float) for f in record["feasibility"])


def test_agents_that_do_not_verify_have_no_feasibility_fields(tmp_path: Path) -> None:
    odd = write_agent(
        tmp_path / "odd.py",
        "self.last_feasibility = 'high'\nreturn 'Wait(10)'",
        name="odd",
    )
    for spec in ("random", odd):
        record = run_episode(Job(spec, "s", "process-crash-test", 0, isolation="in-process"))
        assert "feasibility" not in record and "plan_good" not in record
        assert METRICS["feasibility_auc"].compute([record]) is None
        assert "feasibility_auc" not in markdown_table([record])


def test_a_score_not_renewed_is_not_counted_again(tmp_path: Path) -> None:
    once = write_agent(
        tmp_path / "once.py",
        """
        if not self.scored:
            self.last_feasibility = -0.5
            self.scored = True
        return "Wait(10)"
        """,
        name="once",
        reset="self.scored = False",
    )
    for isolation in ("in-process", "process"):
        record = run_episode(Job(once, "s", "process-crash-test", 0, isolation=isolation))
        assert record["feasibility"][0] == -0.5
        assert record["feasibility"][1:] == [None] * (len(record["trace"]) - 1)
        assert record["plan_good"][1:] == [None] * (len(record["trace"]) - 1)


def test_a_record_whose_scores_do_not_match_its_trace_is_refused(tmp_path: Path) -> None:
    spec = write_agent(tmp_path / "verifying.py", name="verifying", **VERIFYING)
    record = dict(run_episode(Job(spec, "s", "process-crash-test", 0, isolation="in-process")))
    short = {**record, "feasibility": record["feasibility"][:-1]}
    with pytest.raises(ResultsError, match="one entry per plan"):
        check_record(short, "x:1")
    lonely = {k: v for k, v in record.items() if k != "plan_good"}
    with pytest.raises(ResultsError, match="both or neither"):
        check_record(lonely, "x:1")
