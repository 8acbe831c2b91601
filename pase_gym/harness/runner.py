"""Running agents on suites: one record per episode, appended as it finishes, resumable.

A run is the set of (agent, scenario, seed) episodes of a suite. Each finished episode is
appended to a JSON-lines file and flushed to disk before the next is counted, so a run killed
at any point loses at most the episodes in flight; started again with the same file, it skips
what is there and produces the same final records as an uninterrupted run. Episodes are
independent and seeded from (scenario, seed) only, so the number of worker processes does not
change any result (only the wall-clock ``compute_s`` differs from run to run).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym import __version__
from pase_gym.errors import ResultsError
from pase_gym.harness.agent import agent_name, load_agent
from pase_gym.harness.suites import SuiteSpec
from pase_gym.sim.faults import FAULTS

logger = logging.getLogger(__name__)
Record = dict[str, Any]
MAX_AGENT_ERRORS = 20  # consecutive failing decisions before an episode is abandoned
_AGENT_CACHE: dict[tuple[str, str], Any] = {}


def record_key(agent: str, suite: str, scenario: str, seed: int) -> str:
    """The identity of an episode within a results file."""
    return f"{agent}|{suite}|{scenario}|{seed}"


def git_commit() -> str:
    """The commit of the source checkout, or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def versions() -> dict[str, str]:
    """Versions that can change results."""
    import gymnasium

    return {
        "pase_gym": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
    }


class RunStore:
    """A JSON-lines results file that survives being killed mid-write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Record]:
        """Records by key; a torn last line (a kill mid-write) is cut off the file."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):
            logger.warning(
                "%s: dropping a partial last record (%d bytes)", self.path, len(data) - good_end
            )
            with self.path.open("r+b") as f:
                f.truncate(good_end)
            data = data[:good_end]
        records: dict[str, Record] = {}
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                records[rec["key"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ResultsError(f"{self.path}:{number}: not a results record") from None
        return records

    def append(self, record: Record) -> None:
        """Append one record and force it to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass(frozen=True)
class Job:
    """One episode to run."""

    agent: str
    suite: str
    scenario: str
    seed: int
    device: str = "cpu"
    source: str = ""  # the scenario as the suite names it (a built-in name or a file path)

    @property
    def key(self) -> str:
        return record_key(self.agent, self.suite, self.scenario, self.seed)


def _agent(spec: str, device: str) -> Any:
    key = (spec, device)
    if key not in _AGENT_CACHE:
        _AGENT_CACHE[key] = load_agent(spec, device=device)
    return _AGENT_CACHE[key]


def run_episode(job: Job) -> Record:
    """Run one episode of ``job`` and return its record."""
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids in worker processes)
    from pase_gym.env.core import episode_of

    agent = _agent(job.agent, job.device)
    env = gym.make("PASE-OpenStack-v0", scenario=job.source or job.scenario)
    base: Any = env.unwrapped
    uses_truth = bool(getattr(agent, "uses_ground_truth", False))
    obs, info = env.reset(seed=job.seed)
    total, decisions, compute_s, errors, streak = 0.0, 0, 0.0, 0, 0
    try:  # a broken agent costs it the episode, not the run
        if uses_truth:
            agent.bind_ground_truth(base)
        agent.reset(job.seed)
    except Exception as exc:
        logger.warning("%s: reset failed on %s seed %d: %s", job.agent, job.scenario, job.seed, exc)
        errors += 1
        streak += 1
    done = False
    while not done:
        start = time.perf_counter()
        try:
            action = agent.act(obs, info)
            streak = 0
        except Exception as exc:  # a broken agent costs it the step, not the run
            errors += 1
            streak += 1
            action = f"<agent error: {type(exc).__name__}: {exc}>"
        compute_s += time.perf_counter() - start
        decisions += 1
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done = terminated or truncated or streak >= MAX_AGENT_ERRORS
    episode = episode_of(env)
    report = episode.report()
    truth = episode.ground_truth()
    diag = episode.diagnoses[0] if episode.diagnoses else (None, None)
    spec = episode.scenario
    return {
        "key": job.key,
        "agent": agent_name(agent, job.agent),
        "agent_spec": job.agent,
        "uses_ground_truth": uses_truth,
        "suite": job.suite,
        "scenario": job.scenario,
        "split": spec.split,
        "seed": job.seed,
        "fault_types": [t["fault_type"] for t in truth],
        "fault_nodes": [t["node"] for t in truth],
        "families": [FAULTS[t["fault_type"]].family for t in truth],
        "diagnosis": diag[0],
        "diagnosed_node": diag[1],
        "recovered": report.recovered,
        "mttr": report.mttr,
        "ticks": report.ticks,
        "decisions": decisions,
        "plan_steps": report.recovery_calls,
        "executed_calls": report.executed_calls,
        "safe_calls": report.safe_calls,
        "harmed": len(report.harmed),
        "violations": len(report.violations),
        "cost": round(report.cost, 6),
        "return": round(total, 6),
        "agent_errors": errors,
        "compute_s": compute_s,
        "versions": versions(),
        "git_commit": git_commit(),
    }


class Progress:
    """A progress bar on stderr (redrawn on a terminal, a line per 10% otherwise)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._last_decile = -1

    def update(self, note: str = "") -> None:
        self.done += 1
        frac = self.done / max(self.total, 1)
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        text = (
            f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.0f}s eta {eta:4.0f}s {note}"
        )
        if self.tty:
            sys.stderr.write("\r" + text[:120].ljust(120))
            if self.done == self.total:
                sys.stderr.write("\n")
        elif int(frac * 10) != self._last_decile:
            self._last_decile = int(frac * 10)
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def plan_jobs(agents: Iterable[str], suite: SuiteSpec, seeds: int | None, device: str) -> list[Job]:
    """Every episode of the run, in a fixed order."""
    specs = suite.scenario_specs()
    sources = suite.scenario_sources()
    n_seeds = seeds if seeds is not None else suite.seeds
    return [
        Job(a, suite.name, spec.name, s, device, source)
        for a in agents
        for spec, source in zip(specs, sources, strict=True)
        for s in range(n_seeds)
    ]


def run_suite(
    agents: list[str],
    suite: SuiteSpec,
    out: Path,
    *,
    seeds: int | None = None,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = True,
    on_record: Callable[[Record], None] | None = None,
) -> list[Record]:
    """Run (or resume) ``agents`` on ``suite``, appending to ``out``; all records, sorted."""
    for spec in agents:  # fail fast on a bad agent spec, before any episode runs
        _agent(spec, device)
    store = RunStore(out)
    done = store.load()
    jobs = [j for j in plan_jobs(agents, suite, seeds, device) if j.key not in done]
    bar = Progress(len(jobs), f"{suite.name}") if progress and jobs else None
    if workers <= 1:
        for job in jobs:
            record = run_episode(job)
            store.append(record)
            done[record["key"]] = record
            if on_record:
                on_record(record)
            if bar:
                bar.update(f"{job.agent} {job.scenario} s{job.seed}")
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_episode, job): job for job in jobs}
            for future in as_completed(futures):
                record = future.result()
                store.append(record)
                done[record["key"]] = record
                if on_record:
                    on_record(record)
                if bar:
                    job = futures[future]
                    bar.update(f"{job.agent} {job.scenario} s{job.seed}")
    wanted = {j.key for j in plan_jobs(agents, suite, seeds, device)}
    return [done[k] for k in sorted(done) if k in wanted]
