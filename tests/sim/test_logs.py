"""Log lines (pase_gym.sim.logs): shared symptom classes, victims louder than the root cause,
a healthy cloud's background, and a text stream that never changes the dynamics."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import pase_gym.episode as episode_module
from pase_gym.episode import Episode, cached_topology
from pase_gym.sim import logs
from pase_gym.sim.dynamics import advance, calibrate
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.observe import observe
from pase_gym.sim.state import new_state

OWN_LINE_ALLOWED = {"disk"}
"""Classes one fault type may have to itself: a full disk says so on a real host too."""


def test_every_symptom_class_a_fault_lists_exists() -> None:
    for spec in FAULTS.values():
        assert spec.symptoms, spec.name
        assert set(spec.symptoms) <= set(logs.SYMPTOMS), spec.name


def test_no_fault_type_has_a_log_line_of_its_own() -> None:
    users = Counter(cls for spec in FAULTS.values() for cls in set(spec.symptoms))
    alone = {cls for cls, n in users.items() if n < 2}
    assert alone <= OWN_LINE_ALLOWED, alone
    # and no template is repeated in two classes under different meanings
    texts = [text for templates in logs.SYMPTOMS.values() for _, text in templates]
    assert len(texts) == len(set(texts))


def test_victims_are_louder_than_the_root_cause() -> None:
    episode = Episode("db-lock-contention-test", seed=0)
    obs = episode.reset()
    root = episode.ground_truth()[0]["node"]
    writers = Counter(line.node for line in obs.logs if line.tick >= episode.onset)
    assert writers[root] >= 1  # the root cause wrote its onset line
    assert sum(n for node, n in writers.items() if node != root) > 3 * writers[root]


def test_a_healthy_cloud_writes_background_lines_at_the_stated_rate() -> None:
    topo = cached_topology("small", 100)
    state = new_state(topo, "deployment", np.random.default_rng(0))
    calibrate(state)
    ticks = 2000
    advance(state, ticks, np.random.default_rng(1))
    procs = int(np.count_nonzero(state.in_service() & topo.is_process & state.up))
    expected = logs.BACKGROUND_RATE * procs * ticks
    written = len(state.log)  # nothing fails, so every line is background
    assert state.slo_ok
    assert abs(written - expected) < 4 * np.sqrt(expected), (written, expected)


def test_the_log_text_never_changes_the_dynamics(monkeypatch: pytest.MonkeyPatch) -> None:
    first = Episode("queue-backlog-test", seed=3)
    first.reset()
    first.wait(60)
    monkeypatch.setattr(episode_module, "LOG_STREAM", 0xBEEF)
    second = Episode("queue-backlog-test", seed=3)
    second.reset()
    second.wait(60)
    assert np.array_equal(first.state.health, second.state.health)
    assert np.array_equal(first.state.event_counts, second.state.event_counts)
    assert first.state.tick == second.state.tick
    assert [str(x) for x in first.state.log] != [str(x) for x in second.state.log]


def test_a_dry_run_leaves_the_log_stream_alone() -> None:
    episode = Episode("process-crash-test", seed=1)
    episode.reset()
    twin = Episode("process-crash-test", seed=1)
    twin.reset()
    node = episode.ground_truth()[0]["node"]
    episode.simulate(f"Restart({node})")
    episode.wait(30)
    twin.wait(30)
    assert [str(x) for x in episode.state.log] == [str(x) for x in twin.state.log]


def test_a_quiet_copy_writes_no_line_and_runs_the_same_dynamics() -> None:
    episode = Episode("cascading-timeout-test", seed=2)
    episode.reset()
    loud, quiet = episode.state.copy(), episode.state.copy(logs=False)
    before = len(quiet.log)
    for state in (loud, quiet):
        advance(state, 60, np.random.default_rng(7))
    assert len(quiet.log) == before < len(loud.log)
    assert np.array_equal(loud.health, quiet.health) and loud.slo_ok == quiet.slo_ok
    # a dry run's copy clones neither the log nor the event generator, and is never observed
    assert quiet.event_rng is None and loud.event_rng is not episode.state.event_rng
    assert loud.event_rng is not None
    with pytest.raises(ValueError, match="dry run"):
        observe(quiet, np.random.default_rng(0))
    observe(loud, np.random.default_rng(0))  # a full copy is
