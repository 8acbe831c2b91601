"""Running agents on suites: one record per episode, appended as it finishes, resumable.

A run is the set of (agent, scenario, seed) episodes of a suite. Each finished episode is
appended to a JSON-lines file and flushed to disk before the next is counted, so a run killed
at any point loses at most the episodes in flight; started again with the same file, it skips
what is there and produces the same final records as an uninterrupted run. Episodes are
independent and seeded from (scenario, seed) only, so the number of worker processes does not
change any result (only the wall-clock ``compute_s`` differs from run to run).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pase_gym.devices import cpu_threads, worker_threads
from pase_gym.errors import PaseGymError
from pase_gym.harness.agent import (
    REGISTRY,
    agent_name,
    forget_feasibility,
    load_agent,
    reported_feasibility,
)
from pase_gym.harness.records import (
    Record,
    RunStore,
    git_commit,
    record_key,
    scenario_digest,
    versions,
)
from pase_gym.harness.sandbox import Limits, SandboxedAgent, SandboxError
from pase_gym.harness.suites import SuiteSpec
from pase_gym.sim.faults import FAULTS

logger = logging.getLogger(__name__)
MAX_AGENT_ERRORS = 20  # consecutive failing decisions before an episode is abandoned
_AGENT_CACHE: dict[tuple[str, str, str, tuple[str, ...], Limits | None], Any] = {}
IN_PROCESS = "in-process"
PROCESS = "process"
ISOLATIONS = ("auto", IN_PROCESS)
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One episode to run."""

    agent: str
    suite: str
    scenario: str
    seed: int
    device: str = "cpu"
    source: str = ""  # the scenario as the suite names it (a built-in name or a file path)
    isolation: str = "auto"  # "auto": registry agents in-process, others sandboxed
    hide: tuple[str, ...] = ()  # files a sandboxed agent must not see (the results file)
    limits: Limits | None = None  # the sandbox's limits (None: the defaults)

    @property
    def key(self) -> str:
        return record_key(self.agent, self.suite, self.scenario, self.seed)


PARENT_CHECK_S = 0.5  # how often a worker checks that the run that started it is alive


def _exit_with_parent(parent: int) -> None:
    """Worker initialiser: end this worker soon after the run that started it dies.

    A worker whose parent is killed (SIGKILL gives the pool no chance to stop it) is adopted
    by another process; it notices its parent id change and exits at once, so a killed run
    leaves no worker behind to finish episodes nobody records.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(3)

    threading.Thread(target=watch, name="pase-bench-parent-watch", daemon=True).start()


def _start_worker(parent: int, threads: int) -> None:
    """Worker initialiser: exit with the run (:func:`_exit_with_parent`) and give the model
    agents of this worker their share of the cores (``PASE_GYM_THREADS``, unless set)."""
    from pase_gym.devices import THREADS_ENV

    os.environ.setdefault(THREADS_ENV, str(threads))
    _exit_with_parent(parent)


def isolation_of(spec: str, isolation: str) -> str:
    """How ``spec`` runs: the trusted in-tree registry agents, and every agent when the run
    asks for it (``--in-process``), in the evaluator's process; any other agent in the
    sandbox (:mod:`pase_gym.harness.sandbox`)."""
    if isolation == IN_PROCESS or spec in REGISTRY:
        return IN_PROCESS
    return PROCESS


def _agent(
    spec: str,
    device: str,
    isolation: str = "auto",
    hide: tuple[str, ...] = (),
    limits: Limits | None = None,
) -> Any:
    how = isolation_of(spec, isolation)
    key = (spec, device, how, hide, limits)
    if key not in _AGENT_CACHE:
        if how == IN_PROCESS:
            _AGENT_CACHE[key] = load_agent(spec, device=device)
        else:
            _AGENT_CACHE[key] = SandboxedAgent(spec, device=device, hide=hide, limits=limits)
    return _AGENT_CACHE[key]


def close_agents() -> None:
    """Stop every sandboxed agent this process started."""
    for key in [k for k, v in _AGENT_CACHE.items() if hasattr(v, "close")]:
        if getattr(_AGENT_CACHE[key], "isolation", IN_PROCESS) == PROCESS:
            _AGENT_CACHE.pop(key).close()


def filed_name(agent: Any, spec: str) -> str:
    """The name an agent's results are filed under: its own, unless it takes a reference
    agent's name without being that agent (then its spec), so that no submission's rows merge
    into a reference agent's row."""
    name = agent_name(agent, spec)
    if name in REGISTRY and spec != name:
        return spec
    return name


def _make_env(job: Job) -> Any:
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids in worker processes)

    return gym.make("PASE-OpenStack-v4", scenario=job.source or job.scenario)


def traced(info: dict[str, Any]) -> str | None:
    """What a trace keeps of one step: the plan it ran, or ``None`` for an answer that was not
    a plan (replaying ``None`` is scored the same as that answer was)."""
    return None if info.get("plan_error") is not None else str(info["plan"])


UNPLANNED = "<not a plan>"  # what a trace's null replays as: text that never parses


@dataclass
class _Played:
    """What an episode's loop leaves for its record besides the env."""

    total: float = 0.0
    decisions: int = 0
    compute_s: float = 0.0
    errors: int = 0
    failure: str | None = None
    trace: list[str | None] = field(default_factory=list)
    feasibility: list[float | None] = field(default_factory=list)
    plan_good: list[bool | None] = field(default_factory=list)

    def verified(self, base: Any, action: Any, score: float | None) -> None:
        """Keep the agent's feasibility score of this step's plan and, when it gave one, the
        plan's real outcome by the simulator's dry run (evaluation side)."""
        self.feasibility.append(score)
        self.plan_good.append(None if score is None else plan_is_good(base, action))


def plan_is_good(base: Any, action: Any) -> bool:
    """Whether ``action`` recovers the episode with no harm and no violation, by a dry run
    of the current state (a malformed action is not good)."""
    try:
        p = base.simulate(action)
    except PaseGymError:
        return False
    return bool(p.recovered and not p.harmed and not p.violations)


def run_episode(job: Job) -> Record:
    """Run one episode of ``job`` and return its record."""
    agent = _agent(job.agent, job.device, job.isolation, job.hide, job.limits)
    isolation = getattr(agent, "isolation", IN_PROCESS)
    env = _make_env(job)
    base: Any = env.unwrapped
    uses_truth = bool(getattr(agent, "uses_ground_truth", False))
    obs, info = env.reset(seed=job.seed)
    played = _Played()
    streak = 0
    try:  # a broken agent costs it the episode, not the run
        if uses_truth:
            agent.bind_ground_truth(base)
        agent.reset(job.seed)
    except SandboxError as exc:  # stopped by the sandbox: the episode is failed, with why
        played.failure = f"reset(): {exc}"
    except Exception as exc:
        logger.warning("%s: reset failed on %s seed %d: %s", job.agent, job.scenario, job.seed, exc)
        played.errors += 1
        streak += 1
    done = played.failure is not None
    while not done:
        start = time.perf_counter()
        acted = False
        forget_feasibility(agent)
        try:
            action = agent.act(obs, info)
            acted = True
            streak = 0
        except SandboxError as exc:
            played.compute_s += time.perf_counter() - start
            played.decisions += 1
            played.failure = f"act(): {exc}"
            break
        except Exception as exc:  # a broken agent costs it the step, not the run
            played.errors += 1
            streak += 1
            action = f"<agent error: {type(exc).__name__}: {exc}>"
        played.compute_s += time.perf_counter() - start
        played.decisions += 1
        played.verified(base, action, reported_feasibility(agent) if acted else None)
        obs, reward, terminated, truncated, info = env.step(action)
        played.trace.append(traced(info))
        played.total += float(reward)
        done = terminated or truncated or streak >= MAX_AGENT_ERRORS
    if played.failure is not None:
        logger.warning(
            "%s on %s seed %d stopped: %s", job.agent, job.scenario, job.seed, played.failure
        )
        played.errors += 1
    return _record(job, env, played, filed_name(agent, job.agent), uses_truth, isolation)


def replay_trace(job: Job, claimed: Record) -> Record:
    """The record that ``claimed``'s plan trace gives when stepped through a fresh episode of
    ``job``, without the agent: the agent's own fields (its name, decisions, errors, isolation,
    failure) are taken from ``claimed``, every other field is recomputed, the trace included
    (each plan as the env read it back, up to the step that ended the episode)."""
    env = _make_env(job)
    env.reset(seed=job.seed)
    played = _Played(
        decisions=claimed["decisions"],
        errors=claimed["agent_errors"],
        failure=claimed["agent_failure"],
    )
    scores = claimed.get("feasibility") or [None] * len(claimed["trace"])
    for plan, score in zip(claimed["trace"], scores, strict=False):
        action = UNPLANNED if plan is None else plan
        played.verified(env.unwrapped, action, score)
        _, reward, terminated, truncated, info = env.step(action)
        played.trace.append(traced(info))
        played.total += float(reward)
        if terminated or truncated:
            break
    return _record(
        job, env, played, claimed["agent"], claimed["uses_ground_truth"], claimed["isolation"]
    )


def _record(
    job: Job, env: Any, played: _Played, name: str, uses_truth: bool, isolation: str
) -> Record:
    from pase_gym.env.core import episode_of

    episode = episode_of(env)
    report = episode.report()
    truth = episode.ground_truth()
    diag = episode.diagnoses[0] if episode.diagnoses else (None, None)
    spec = episode.scenario
    verified: dict[str, Any] = {}
    if any(f is not None for f in played.feasibility):
        steps = len(played.trace)
        verified = {
            "feasibility": played.feasibility[:steps],
            "plan_good": played.plan_good[:steps],
        }
    record: Record = {
        "key": job.key,
        "agent": name,
        "agent_spec": job.agent,
        "uses_ground_truth": uses_truth,
        "suite": job.suite,
        "scenario": job.scenario,
        "scenario_sha256": scenario_digest(spec),
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
        "decisions": played.decisions,
        "trace": played.trace,
        "plan_steps": report.recovery_calls,
        "executed_calls": report.executed_calls,
        "safe_calls": report.safe_calls,
        "harmed": len(report.harmed),
        "violations": len(report.violations),
        "cost": round(report.cost, 6),
        "return": round(played.total, 6),
        "agent_errors": played.errors,
        "compute_s": played.compute_s,
        "isolation": isolation,
        "agent_failure": played.failure,
        "versions": versions(),
        "git_commit": git_commit(),
    }
    record.update(verified)  # type: ignore[typeddict-item]
    return record


def progress_bar(total: int, label: str) -> tqdm[Any]:
    """A progress bar on stderr: redrawn on a terminal, a line every 30 s otherwise."""
    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=label,
        file=sys.stderr,
        unit="ep",
        dynamic_ncols=tty,
        ascii=not tty,
        mininterval=0.2 if tty else 30.0,
    )


def _warn_about_mixed_provenance(out: Path, kept: Iterable[Record], to_run: int) -> None:
    """A resumed run whose kept records come from other code says so: its table would mix
    versions. (Resuming trusts the kept records; ``pase-bench verify`` checks them.)"""
    if not to_run:
        return
    here = (git_commit(), versions()["pase_gym"])
    other = sum((r["git_commit"], r["versions"].get("pase_gym")) != here for r in kept)
    if other:
        logger.warning(
            "%s: %d kept record(s) were written by another commit or version than this run "
            "(%s); the results will mix them (pase-bench verify --results %s checks them)",
            out,
            other,
            here[0][:12],
            out,
        )


def _completed(
    jobs: list[Job], workers: int, backend: str, address: str | None
) -> Iterator[tuple[Job, Record]]:
    """Run ``jobs``; yield ``(job, record)`` as each finishes (in any order)."""
    if backend == "ray":
        from pase_gym.harness.ray_backend import ray_episodes

        yield from ray_episodes(jobs, workers, address, run=run_episode)
    elif workers <= 1:
        for job in jobs:
            yield job, run_episode(job)
    else:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), worker_threads(workers)),
        ) as pool:
            futures = {pool.submit(run_episode, job): job for job in jobs}
            for future in as_completed(futures):
                yield futures[future], future.result()


def plan_jobs(
    agents: Iterable[str],
    suite: SuiteSpec,
    seeds: int | None,
    device: str,
    isolation: str = "auto",
    hide: tuple[str, ...] = (),
    limits: Limits | None = None,
) -> list[Job]:
    """Every episode of the run, in a fixed order."""
    specs = suite.scenario_specs()
    sources = suite.scenario_sources()
    n_seeds = seeds if seeds is not None else suite.seeds
    return [
        Job(a, suite.name, spec.name, s, device, source, isolation, hide, limits)
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
    isolation: str = "auto",
    limits: Limits | None = None,
    hide: Iterable[str | Path] = (),
    backend: str = "local",
    address: str | None = None,
) -> list[Record]:
    """Run (or resume) ``agents`` on ``suite``, appending to ``out``; all records, sorted.

    ``isolation="auto"`` runs the registry's reference agents in-process and every other agent
    in the sandbox (:mod:`pase_gym.harness.sandbox`), which never sees ``out``;
    ``"in-process"`` runs every agent in the evaluator's process (the records say so).
    ``hide`` names more files a sandboxed agent must not see (secrets, answer keys).
    ``backend="ray"`` runs the episodes as Ray tasks (:mod:`pase_gym.harness.ray_backend`;
    ``address`` joins a running cluster), with the same records.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, found {backend!r}")
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, found {isolation!r}")
    cpu_threads()  # a bad PASE_GYM_THREADS stops the run here, before any episode
    store = RunStore(out)
    created = not store.path.exists()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.touch()  # it exists before any sandbox starts, so that each hides it
    from pase_gym.harness.hidden import hidden_paths

    # the results file, the files the caller names, and the hidden split where a key is set
    hidden = (
        str(store.path.resolve()),
        *(str(Path(p).resolve()) for p in hide),
        *hidden_paths(),
    )
    try:
        for spec in agents:  # fail fast on a bad agent spec, before any episode runs
            _agent(spec, device, isolation, hidden, limits)
    except BaseException:
        if created and store.path.stat().st_size == 0:
            store.path.unlink()
        close_agents()
        raise
    done = store.load()
    jobs = [
        j
        for j in plan_jobs(agents, suite, seeds, device, isolation, hidden, limits)
        if j.key not in done
    ]
    _warn_about_mixed_provenance(out, done.values(), len(jobs))
    bar = progress_bar(len(jobs), suite.name) if progress and jobs else None
    for job, record in _completed(jobs, workers, backend, address):
        store.append(record)
        done[record["key"]] = record
        if on_record:
            on_record(record)
        if bar:
            bar.set_postfix_str(f"{job.agent} {job.scenario} s{job.seed}", refresh=False)
            bar.update()
    if bar:
        bar.close()
    close_agents()  # sandboxed agents end with the run (the workers' with their processes)
    wanted = {j.key for j in plan_jobs(agents, suite, seeds, device)}
    return [done[k] for k in sorted(done) if k in wanted]
