"""Episodes per second: the local process pool against a local Ray cluster on the same cores.

Each round is one whole ``run_suite`` call, as ``pase-bench run`` makes it (for Ray: starting
the local cluster, running every episode as a task, shutting it down), with 2 workers, the
rule-based agent, a fresh results file per round. Two suite sizes: the ``smoke`` suite (4
episodes) and the ``paper`` suite at 4 seeds (72 episodes). ``pytest benchmarks/test_bench_ray.py
--benchmark-only --benchmark-columns=median,rounds``; the README's Ray paragraph quotes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import load_suite

pytest.importorskip("ray")

SIZES = {"smoke-4": ("smoke", 1), "paper-72": ("paper", 4)}


@pytest.mark.parametrize("backend", ["local", "ray"])
@pytest.mark.parametrize("size", list(SIZES))
def test_run_suite(benchmark: Any, tmp_path: Path, backend: str, size: str) -> None:
    suite_name, seeds = SIZES[size]
    suite = load_suite(suite_name)
    rounds = iter(range(1000))

    def once() -> list[Any]:
        out = tmp_path / f"run-{next(rounds)}.jsonl"
        return run_suite(
            ["rule_based"], suite, out, seeds=seeds, workers=2, progress=False, backend=backend
        )

    records = benchmark.pedantic(once, rounds=3, iterations=1)
    assert len(records) == len(suite.scenario_specs()) * seeds
