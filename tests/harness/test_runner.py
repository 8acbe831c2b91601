"""The runner: resumable after a kill, worker-count invariant, honest about ground truth."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pase_gym.harness.agent import resolve_agent_class
from pase_gym.harness.runner import (
    MAX_AGENT_ERRORS,
    Job,
    RunStore,
    record_key,
    run_episode,
    run_suite,
)
from pase_gym.harness.suites import SuiteSpec, load_suite
from pase_gym.sim.faults import FAULTS

REPO = Path(__file__).resolve().parents[2]
AGENTS = ["random", "oracle"]
SCENARIOS = ["process-crash-train", "cpu-hog-test"]  # a tiny and a small cloud
SEEDS = 2
N_RECORDS = len(AGENTS) * len(SCENARIOS) * SEEDS

SUITE_YAML = f"""
name: runner-test
description: two scenarios, two seeds
scenarios: [{", ".join(SCENARIOS)}]
seeds: {SEEDS}
"""

# A run in another process that pauses after each record, so that it can be killed between
# (and, with the torn line appended by the test, in the middle of) records.
CHILD = """
import sys, time
from pathlib import Path
from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import load_suite
run_suite(sys.argv[1].split(","), load_suite(sys.argv[2]), Path(sys.argv[3]), progress=False,
          on_record=lambda record: time.sleep(0.25))
"""


def without_compute(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "compute_s"} for r in records]


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "runner-test.yaml"
    path.write_text(SUITE_YAML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def suite(suite_file: Path) -> SuiteSpec:
    return load_suite(str(suite_file))


@pytest.fixture(scope="module")
def reference(suite: SuiteSpec, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """An uninterrupted single-process run (file A)."""
    out = tmp_path_factory.mktemp("runs") / "a.jsonl"
    records = run_suite(AGENTS, suite, out, progress=False)
    assert len(records) == N_RECORDS
    assert len(lines(out)) == N_RECORDS
    return records


# -- (a) kill and resume -----------------------------------------------------------------------


def test_killed_run_resumes_to_the_same_records(
    suite_file: Path, suite: SuiteSpec, reference: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "b.jsonl"
    kill_after = random.randint(2, N_RECORDS - 2)  # any kill point must work
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, ",".join(AGENTS), str(suite_file), str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(lines(out)) < kill_after and child.poll() is None:
            assert time.monotonic() < deadline, "the child run made no progress"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode(errors="replace")
    survived = lines(out)
    assert kill_after <= len(survived) < N_RECORDS, (kill_after, len(survived))

    # a kill in the middle of a write leaves half a record behind
    missing = next(r for r in reference if r["key"] not in {json.loads(x)["key"] for x in survived})
    torn = json.dumps(missing, sort_keys=True)
    with out.open("a", encoding="utf-8") as f:
        f.write(torn[: len(torn) // 2])

    resumed = run_suite(AGENTS, suite, out, progress=False)

    assert len(resumed) == N_RECORDS
    assert [r["key"] for r in resumed] == [r["key"] for r in reference]
    for a, b in zip(reference, resumed, strict=True):
        assert set(a) == set(b), a["key"]
    assert without_compute(resumed) == without_compute(reference), f"killed after {kill_after}"
    # the file holds each episode once: finished ones were not re-run, the torn line is gone
    on_disk = [json.loads(x) for x in lines(out)]
    assert len(on_disk) == N_RECORDS
    assert on_disk[: len(survived)] == [json.loads(x) for x in survived]
    assert without_compute(sorted(on_disk, key=lambda r: r["key"])) == without_compute(reference)


def test_finished_run_is_not_rerun(suite: SuiteSpec, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    first = run_suite(["oracle"], suite, out, seeds=1, progress=False)
    before = out.read_bytes()
    seen: list[str] = []
    again = run_suite(["oracle"], suite, out, seeds=1, progress=False, on_record=seen.append)
    assert seen == []
    assert out.read_bytes() == before
    assert again == first


def test_a_larger_run_reuses_the_episodes_already_in_the_file(
    suite: SuiteSpec, reference: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "grow.jsonl"
    run_suite(["oracle"], suite, out, seeds=1, progress=False)
    assert len(lines(out)) == len(SCENARIOS)
    new: list[dict[str, Any]] = []
    records = run_suite(AGENTS, suite, out, progress=False, on_record=new.append)
    assert len(new) == N_RECORDS - len(SCENARIOS)
    assert all(not (r["agent_spec"] == "oracle" and r["seed"] == 0) for r in new)
    assert without_compute(records) == without_compute(reference)


def test_results_outside_the_run_are_kept_but_not_returned(
    suite: SuiteSpec, tmp_path: Path
) -> None:
    out = tmp_path / "mixed.jsonl"
    run_suite(["oracle"], suite, out, seeds=2, progress=False)
    records = run_suite(["oracle"], suite, out, seeds=1, progress=False)
    assert {r["seed"] for r in records} == {0}
    assert len(records) == len(SCENARIOS)
    assert len(RunStore(out).load()) == 2 * len(SCENARIOS)


# -- (b) workers -------------------------------------------------------------------------------


def test_worker_count_does_not_change_results(
    suite: SuiteSpec, reference: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "w2.jsonl"
    parallel = run_suite(AGENTS, suite, out, workers=2, progress=False)
    assert [r["key"] for r in parallel] == [r["key"] for r in reference]
    for a, b in zip(reference, parallel, strict=True):
        assert set(a) == set(b)
    assert without_compute(parallel) == without_compute(reference)
    assert len(lines(out)) == N_RECORDS


def test_each_worker_gives_its_model_agents_a_share_of_the_cores(
    suite: SuiteSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pase_gym.devices import THREADS_ENV, worker_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    spec = tmp_path / "threads_agent.py"
    spec.write_text(
        "import os\n"
        "class Agent:\n"
        "    name = 'threads-' + os.environ.get('PASE_GYM_THREADS', 'unset')\n"
        "    def reset(self, seed):\n"
        "        pass\n"
        "    def act(self, observation, info):\n"
        "        return 'Wait(10)'\n"
    )
    records = run_suite([str(spec)], suite, tmp_path / "w.jsonl", workers=2, progress=False)
    assert {r["agent"] for r in records} == {f"threads-{worker_threads(2)}"}  # through the sandbox
    alone = run_suite([str(spec)], suite, tmp_path / "w1.jsonl", workers=1, progress=False)
    assert {r["agent"] for r in alone} == {"threads-unset"}  # one worker: the agent's default


# -- (c) what a record says --------------------------------------------------------------------


def test_records_identify_the_episode_and_the_code(reference: list[dict[str, Any]]) -> None:
    keys = {(r["agent_spec"], r["scenario"], r["seed"]) for r in reference}
    assert keys == {(a, sc, s) for a in AGENTS for sc in SCENARIOS for s in range(SEEDS)}
    for r in reference:
        assert r["suite"] == "runner-test"
        assert r["agent"] == r["agent_spec"]  # both reference agents are named after the spec
        assert r["key"] == record_key(r["agent_spec"], "runner-test", r["scenario"], r["seed"])
        assert {"pase_gym", "python", "numpy", "gymnasium"} <= set(r["versions"])
        assert all(isinstance(v, str) and v for v in r["versions"].values())
        assert isinstance(r["git_commit"], str) and r["git_commit"]
        assert r["fault_types"] and all(t in FAULTS for t in r["fault_types"])
        assert r["families"] == [FAULTS[t].family for t in r["fault_types"]]
        assert len(r["fault_nodes"]) == len(r["fault_types"])
        assert r["compute_s"] >= 0.0
        assert r["decisions"] >= 1
        assert r["agent_errors"] == 0
        assert 0 <= r["safe_calls"] <= r["executed_calls"]
        json.dumps(r)  # JSON-able as it stands


def test_only_the_oracle_is_labelled_as_using_the_ground_truth(
    reference: list[dict[str, Any]],
) -> None:
    by_agent = {r["agent"]: r["uses_ground_truth"] for r in reference}
    assert by_agent == {"oracle": True, "random": False}
    oracle = [r for r in reference if r["agent"] == "oracle"]
    assert all(r["recovered"] and r["diagnosis"] == r["fault_types"][0] for r in oracle)


def test_run_episode_is_seeded_by_scenario_and_seed() -> None:
    a = run_episode(Job("random", "s", "process-crash-train", 1))
    b = run_episode(Job("random", "other-suite", "process-crash-train", 1))
    assert a["key"] != b["key"]
    strip = ("key", "suite", "compute_s")
    assert {k: v for k, v in a.items() if k not in strip} == {
        k: v for k, v in b.items() if k not in strip
    }


# -- (d) no ground truth for agents that do not declare it -------------------------------------

PROBE = """
import json
from pathlib import Path

FAULT_NAMES = {fault_names!r}
REPORT = Path({report!r})


class Agent:
    found = []
    scanned = 0
    decisions = 0

    @classmethod
    def scan(cls, obj, where):
        found = []
        if isinstance(obj, dict):
            for key, value in obj.items():
                low = str(key).lower()
                if "fault" in low or "truth" in low:
                    found.append(f"{{where}}: key {{key!r}}")
                found += cls.scan(value, f"{{where}}.{{key}}")
        elif isinstance(obj, (list, tuple, set)):
            for i, value in enumerate(obj):
                found += cls.scan(value, f"{{where}}[{{i}}]")
        elif isinstance(obj, str):
            cls.scanned += 1
            low = obj.lower()
            for name in FAULT_NAMES:
                if name in low or name.replace("_", "-") in low:
                    found.append(f"{{where}}: {{name}}")
        elif hasattr(obj, "dtype") and obj.dtype.kind in "USO":
            found += cls.scan(obj.tolist(), where)
        return found

    def reset(self, seed):
        pass

    def bind_ground_truth(self, env):
        raise AssertionError("bind_ground_truth given to an agent that did not ask for it")

    def act(self, observation, info):
        Agent.decisions += 1
        Agent.found += self.scan(dict(observation), "obs") + self.scan(info, "info")
        REPORT.write_text(json.dumps({{"found": Agent.found, "scanned": Agent.scanned,
                                      "decisions": Agent.decisions}}))
        return "Wait(10)"
"""


def test_agents_see_no_ground_truth_and_are_not_bound_to_it(
    suite: SuiteSpec, tmp_path: Path
) -> None:
    report = tmp_path / "probe.json"
    path = tmp_path / "probe.py"
    path.write_text(
        textwrap.dedent(PROBE).format(fault_names=sorted(FAULTS), report=str(report)),
        encoding="utf-8",
    )
    # the probe does find the truth where it is: a positive control of its scanner
    probe = resolve_agent_class(str(path))
    assert probe.scan({"x": [{"kind": "process_crash"}]}, "gt") == ["gt.x[0].kind: process_crash"]
    assert probe.scan({"ground_truth": []}, "gt") == ["gt: key 'ground_truth'"]

    # in-process: the probe writes what it saw to a file (the sandbox would not let it)
    records = run_suite(
        [str(path)], suite, tmp_path / "probe.jsonl", progress=False, isolation="in-process"
    )

    assert len(records) == len(SCENARIOS) * SEEDS
    assert all(r["agent_errors"] == 0 for r in records)  # bind_ground_truth never called
    assert all(r["uses_ground_truth"] is False for r in records)
    seen = json.loads(report.read_text(encoding="utf-8"))
    assert seen["decisions"] == sum(r["decisions"] for r in records)
    assert seen["scanned"] > seen["decisions"]  # it did read the description and node names
    assert seen["found"] == []


def test_agent_declaring_no_ground_truth_attribute_false_is_not_bound(
    suite: SuiteSpec, tmp_path: Path
) -> None:
    path = tmp_path / "honest.py"
    path.write_text(
        textwrap.dedent(
            """
            class Agent:
                uses_ground_truth = False

                def bind_ground_truth(self, env):
                    raise AssertionError("not asked for")

                def reset(self, seed):
                    pass

                def act(self, observation, info):
                    return "Wait(10)"
            """
        ),
        encoding="utf-8",
    )
    record = run_episode(Job(str(path), "s", "process-crash-train", 0))
    assert record["agent_errors"] == 0
    assert record["uses_ground_truth"] is False


# -- (e) broken agents -------------------------------------------------------------------------


def test_an_agent_that_crashes_does_not_kill_the_run(suite: SuiteSpec, tmp_path: Path) -> None:
    path = tmp_path / "crasher.py"
    path.write_text(
        textwrap.dedent(
            """
            class Agent:
                name = "crasher"

                def reset(self, seed):
                    pass

                def act(self, observation, info):
                    raise RuntimeError("boom")
            """
        ),
        encoding="utf-8",
    )
    records = run_suite([str(path), "oracle"], suite, tmp_path / "c.jsonl", seeds=1, progress=False)
    crashed = [r for r in records if r["agent"] == "crasher"]
    assert len(crashed) == len(SCENARIOS)
    for r in crashed:
        assert r["agent_errors"] == MAX_AGENT_ERRORS  # abandoned after a streak of failures
        assert r["decisions"] == r["agent_errors"]
        assert r["recovered"] is False
        assert r["executed_calls"] == 0
    oracle = [r for r in records if r["agent"] == "oracle"]
    assert len(oracle) == len(SCENARIOS) and all(r["recovered"] for r in oracle)


def test_an_agent_that_sometimes_crashes_plays_the_episode_out(tmp_path: Path) -> None:
    path = tmp_path / "flaky.py"
    path.write_text(
        textwrap.dedent(
            """
            class Agent:
                def reset(self, seed):
                    self.calls = 0

                def act(self, observation, info):
                    self.calls += 1
                    if self.calls % 3:
                        raise ValueError("two calls in three")
                    return "Wait(10)"
            """
        ),
        encoding="utf-8",
    )
    record = run_episode(Job(str(path), "s", "process-crash-train", 0))
    # never MAX_AGENT_ERRORS in a row, so never abandoned, though more than that in all
    assert record["agent_errors"] > MAX_AGENT_ERRORS
    assert record["decisions"] - record["agent_errors"] == record["decisions"] // 3
    assert record["recovered"] is False
    assert record["ticks"] >= 600  # the scenario's budget


def test_an_agent_whose_reset_crashes_does_not_kill_the_run(
    suite: SuiteSpec, tmp_path: Path
) -> None:
    path = tmp_path / "bad_reset.py"
    path.write_text(
        textwrap.dedent(
            """
            class Agent:
                name = "bad_reset"

                def reset(self, seed):
                    raise RuntimeError("reset broke")

                def act(self, observation, info):
                    return "Wait(10)"
            """
        ),
        encoding="utf-8",
    )
    records = run_suite([str(path), "oracle"], suite, tmp_path / "c.jsonl", seeds=1, progress=False)
    broken = [r for r in records if r["agent"] == "bad_reset"]
    assert len(broken) == len(SCENARIOS)
    assert all(r["agent_errors"] > 0 and not r["recovered"] for r in broken)
    assert sum(r["agent"] == "oracle" for r in records) == len(SCENARIOS)


def test_a_bad_agent_spec_fails_before_any_episode(suite: SuiteSpec, tmp_path: Path) -> None:
    out = tmp_path / "never.jsonl"
    with pytest.raises(ValueError, match="unknown agent"):
        run_suite(["random", "no-such-agent"], suite, out, progress=False)
    assert not out.exists()


# -- (f) a killed parent leaves no worker behind ---------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # the parent's id follows the state
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split()[2] != "Z"  # a zombie has exited, waiting to be reaped
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_killing_a_parallel_run_leaves_no_worker_behind(tmp_path: Path) -> None:
    bench = Path(sys.executable).with_name("pase-bench")
    argv = [str(bench), "run", "--suite", "paper", "--agents", "random", "--workers", "2"]
    proc = subprocess.Popen(
        [*argv, "--quiet", "--out", str(tmp_path / "r.jsonl")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        while not lines(tmp_path / "r.jsonl") and time.monotonic() < deadline:
            time.sleep(0.1)  # the workers are running episodes
        children = _children(proc.pid)
        assert len(children) >= 2, "the run never started its workers"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30  # a bound for a loaded machine; they exit within a second
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)]


def test_resuming_over_records_of_other_code_warns(
    suite: SuiteSpec, reference: list[dict[str, Any]], tmp_path: Path, caplog: Any
) -> None:
    out = tmp_path / "mixed.jsonl"
    kept = dict(reference[0], git_commit="0" * 40)  # as if written by another commit
    out.write_text(json.dumps(kept) + "\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="pase_gym.harness.runner"):
        records = run_suite(AGENTS, suite, out, progress=False)
    assert len(records) == N_RECORDS
    assert "1 kept record(s) were written by another commit" in caplog.text
    assert "pase-bench verify" in caplog.text
