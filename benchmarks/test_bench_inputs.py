"""Input validation benchmarks: how long the checks of hostile or huge inputs take.

Run with ``pytest benchmarks/test_bench_inputs.py --benchmark-only``. One round is:

* ``check_largest_scenario``: ``pase-gym check-scenario`` of a legal file at the largest
  cloud (20,000 nodes) with onsets near a 100,000 s budget: load, validate, build the cloud,
  schedule the faults (the clock is not run);
* ``refuse_alias_bomb``: loading a ~500-byte scenario whose aliases stand for ~3.5e9 values
  (refused before anything is expanded);
* ``refuse_long_action``: ``to_plan`` of a structured action with 1,000,000 calls (refused
  before any call is read);
* ``load_results``: reading and checking a results file of 500 records.

Each benchmarked call also asserts its outcome, so the smoke run (``--benchmark-disable``)
checks that the figures measure what they claim.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.cli import main as pase_gym_main
from pase_gym.env.actions import to_plan
from pase_gym.env.core import episode_of
from pase_gym.episode import cached_topology
from pase_gym.errors import PlanError, ScenarioError
from pase_gym.harness.records import RunStore, record_key
from pase_gym.harness.runner import Job, run_episode
from pase_gym.scenarios import load_scenario

LARGEST = """\
name: largest
split: test
topology: {nodes: 20000, seed: 0}
budget: 100000
faults:
  - {type: [process_crash, memory_leak, disk_full, cpu_hog], onset: [90000, 99000]}
  - {type: process_hang, role: nova-api, onset: 99990}
  - {type: host_power_loss, onset: 99990}
"""


def _bomb(levels: int = 10, fan: int = 9) -> str:
    text = "&a0 [" + ",".join(["x"] * fan) + "]"
    for i in range(1, levels):
        text = f"&a{i} [{text}" + f",*a{i - 1}" * (fan - 1) + "]"
    return (
        f"name: bomb\nsplit: test\ntopology:\n  nodes: {text}\nfaults: [{{type: process_crash}}]\n"
    )


def test_check_largest_scenario(benchmark: Any, tmp_path: Path) -> None:
    path = tmp_path / "largest.yaml"
    path.write_text(LARGEST, encoding="utf-8")

    def check() -> int:
        return pase_gym_main(["check-scenario", str(path)], out=io.StringIO())

    # the topology cache is emptied before each round: a check builds the cloud from scratch
    clear = cached_topology.cache_clear
    assert benchmark.pedantic(check, setup=clear, rounds=3, iterations=1, warmup_rounds=0) == 0


def test_refuse_alias_bomb(benchmark: Any, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(), encoding="utf-8")

    def load() -> str:
        try:
            load_scenario(path)
        except ScenarioError as exc:
            return str(exc)
        return ""

    assert "aliases are expanded" in benchmark.pedantic(load, rounds=20, iterations=1)


def test_refuse_long_action(benchmark: Any) -> None:
    env = gym.make("PASE-OpenStack-Tiny-v4")
    env.reset(seed=0)
    topo, shapes = episode_of(env).topology, env.unwrapped.shapes  # type: ignore[attr-defined]
    action = {"steps": [{"primitive": 0, "node": 0}] * 1_000_000}

    def decode() -> str:
        try:
            to_plan(action, topo, shapes)
        except PlanError as exc:
            return str(exc)
        return ""

    assert "at most 64 steps" in benchmark.pedantic(decode, rounds=200, iterations=1)


@pytest.fixture(scope="module")
def results_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    record = run_episode(Job("random", "t", "process-crash-train", 0))
    lines = []
    for seed in range(500):
        rec: dict[str, Any] = dict(record, seed=seed)
        rec["key"] = record_key("random", "t", "process-crash-train", seed)
        lines.append(json.dumps(rec, sort_keys=True))
    path = tmp_path_factory.mktemp("results") / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_results(benchmark: Any, results_file: Path) -> None:
    records = benchmark.pedantic(lambda: RunStore(results_file).load(), rounds=20, iterations=1)
    assert len(records) == 500
