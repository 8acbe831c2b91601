"""Distributed evaluation on Ray: the same records as the local runner, a killed worker's
episode run again and written once, and a clear error without ray."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from agent_files import write_agent

from pase_gym.harness.ray_backend import RayBackendError, ray_episodes
from pase_gym.harness.runner import run_suite
from pase_gym.harness.suites import load_suite

VOLATILE = {"compute_s", "git_commit", "versions"}
SUITE = (
    "name: ray-test\nscenarios: [process-crash-train, disk-full-train, cpu-hog-train]\nseeds: 2\n"
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("ray") / "ray-test.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return load_suite(str(path))


def strip(records: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


@pytest.mark.slow
def test_ray_gives_the_local_runners_records(suite: Any, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    agents = ["random", "rule_based", "oracle"]
    local = run_suite(agents, suite, tmp_path / "local.jsonl", progress=False)
    ray = run_suite(agents, suite, tmp_path / "ray.jsonl", progress=False, backend="ray", workers=2)
    assert strip(ray) == strip(local)


@pytest.mark.slow
def test_a_killed_workers_episode_is_run_again_and_written_once(suite: Any, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    marker = tmp_path / "killed-once"
    act = f"""
        marker = Path({str(marker)!r})
        if self.seed == 1 and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-episode
        return "Wait(10)"
    """
    header = "import os, signal\nfrom pathlib import Path"
    agent = write_agent(
        tmp_path / "fragile.py", act, name="fragile", reset="self.seed = seed", header=header
    )
    out = tmp_path / "r.jsonl"
    records = run_suite(
        [agent], suite, out, progress=False, backend="ray", workers=2, isolation="in-process"
    )
    assert marker.exists()  # a worker did die
    assert len(records) == 6 and len(out.read_text(encoding="utf-8").splitlines()) == 6


def test_without_ray_the_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayBackendError, match=r"pip install 'pase-gym\[ray\]'"):
        next(ray_episodes([], workers=1))
