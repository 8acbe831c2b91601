"""Replay verification: run the episodes of a results file again and compare the records.

A results file is a claim. :class:`~pase_gym.harness.records.RunStore` refuses records that
are malformed or contradict themselves, but a record forged consistently (an unrecovered
episode rewritten as recovered, with a plausible MTTR) passes those checks. Episodes are
seeded from (scenario, seed) alone, so running one again with the same agent gives the same
record, timing and provenance aside (:data:`IGNORED`): any other difference is a finding.
``pase-bench verify --results FILE [--sample N]`` does this for a whole file or a seeded
sample of it: the agent answers again, so its plan trace is checked with every metric.

``--traces-only`` checks less and needs no agent: it steps each record's plan trace through a
fresh episode and recomputes every metric from it (:func:`~pase_gym.harness.runner.replay_trace`).
A changed number, or a trace edited after the run, is named; a trace the agent never produced
but that is consistent with its numbers is not (only re-running the agent tells). Agents whose
decisions are not reproducible (a remote model, an unseeded sampler) can be checked this way
only; a full replay's mismatches say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pase_gym.errors import ResultsError
from pase_gym.harness.records import Record
from pase_gym.harness.runner import Job, replay_trace, run_episode
from pase_gym.harness.suites import SuiteSpec, load_suite

logger = logging.getLogger(__name__)

IGNORED = frozenset({"compute_s", "versions", "git_commit"})
"""Fields that differ between two honest runs of an episode (wall-clock time, provenance)."""


@dataclass(frozen=True)
class Mismatch:
    """A field whose replayed value differs from the claimed one."""

    key: str
    field: str
    claimed: Any
    replayed: Any


def select(records: Sequence[Record], sample: int | None, seed: int) -> list[Record]:
    """All ``records`` (sorted by key), or ``sample`` of them drawn with ``seed``."""
    ordered = sorted(records, key=lambda r: r["key"])
    if sample is None or sample >= len(ordered):
        return ordered
    picks = np.random.default_rng(seed).choice(len(ordered), size=sample, replace=False)
    return [ordered[i] for i in sorted(picks.tolist())]


def _job(
    record: Record,
    suites: dict[str, tuple[SuiteSpec, dict[str, str]]],
    suite: str | None,
    device: str,
    hide: tuple[str, ...] = (),
) -> Job:
    name = suite or record["suite"]
    if name not in suites:  # each suite's scenarios are loaded once, not once per record
        spec = load_suite(name)
        names = (s.name for s in spec.scenario_specs())
        suites[name] = (spec, dict(zip(names, spec.scenario_sources(), strict=True)))
    spec, sources = suites[name]
    if record["scenario"] not in sources:
        raise ResultsError(
            f"{record['key']}: scenario {record['scenario']!r} is not in suite {spec.name!r}; "
            "name the suite the run used with --suite"
        )
    return Job(
        record["agent_spec"],
        record["suite"],
        record["scenario"],
        record["seed"],
        device,
        sources[record["scenario"]],
        "in-process" if record["isolation"] == "in-process" else "auto",  # as it first ran
        hide,
    )


def compare(claimed: Record, replayed: Record) -> list[Mismatch]:
    """The fields of ``claimed`` that ``replayed`` does not reproduce."""
    a: dict[str, Any] = dict(claimed)
    b: dict[str, Any] = dict(replayed)
    return [
        Mismatch(claimed["key"], k, a.get(k), b.get(k))
        for k in sorted(set(a) | set(b))
        if k not in IGNORED and a.get(k) != b.get(k)
    ]


def verify_records(
    records: Sequence[Record],
    *,
    suite: str | None = None,
    device: str = "cpu",
    on_done: Callable[[Record, list[Mismatch]], None] | None = None,
    hide: Sequence[str] = (),
    traces_only: bool = False,
) -> list[Mismatch]:
    """Run every record's episode again and return the fields that differ.

    Args:
        records: the claimed records (from a checked results file).
        suite: the suite (name or path) that resolves the scenarios; default: each record's.
        device: passed to agents that use torch.
        on_done: called after each record with its mismatches (progress).
        hide: files a sandboxed agent must not see (the claimed results file).
        traces_only: step each record's plan trace instead of running its agent.

    Raises:
        ResultsError: a record's scenario cannot be found in its suite.
        SuiteError, AgentError: the suite or the agent cannot be loaded.
    """
    suites: dict[str, tuple[SuiteSpec, dict[str, str]]] = {}
    found: list[Mismatch] = []
    for record in records:
        job = _job(record, suites, suite, device, tuple(hide))
        replayed = replay_trace(job, record) if traces_only else run_episode(job)
        mismatches = compare(record, replayed)
        found.extend(mismatches)
        if on_done is not None:
            on_done(record, mismatches)
    return found


def mismatch_table(mismatches: Sequence[Mismatch], limit: int = 40) -> str:
    """A Markdown table of the mismatches (the first ``limit``)."""
    lines = ["| episode | field | claimed | replayed |", "|---|---|---|---|"]
    for m in mismatches[:limit]:
        lines.append(f"| {m.key} | {m.field} | {m.claimed!r} | {m.replayed!r} |")
    if len(mismatches) > limit:
        lines.append(f"| ... {len(mismatches) - limit} more | | | |")
    return "\n".join(lines) + "\n"
