"""The log is written when read: queued writes make, in order and from the log's own
generator, the lines an eager log would have written, whenever they are read."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from pase_gym.episode import Episode
from pase_gym.sim.dynamics import advance
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.signals import LogLines, Observation
from pase_gym.sim.state import LOG_QUEUE_LIMIT, SimState


def _lines(obs: Observation) -> list[str]:
    return [str(line) for line in obs.logs]


def _run(name: str, seed: int, read_at_once: bool) -> tuple[list[list[str]], list[str]]:
    """Observations of an episode (waits, probes, the oracle's plan), their lines read at once
    or only at the end (newest first), and the whole log."""
    episode = Episode(name, seed)
    observations = [episode.reset()]
    seen = [_lines(observations[0])] if read_at_once else []
    for i in range(14):
        if i == 6:
            episode.step(oracle_plan(episode.state))
        elif i % 3 == 1:
            episode.step("QueryLogs(nova-api-1, 30); Wait(5)")
        else:
            episode.wait(10)
        observations.append(episode.observe())
        if read_at_once:
            seen.append(_lines(observations[-1]))
    if not read_at_once:
        seen = [_lines(obs) for obs in reversed(observations)][::-1]
    return seen, [str(line) for line in episode.state.log]


@pytest.mark.parametrize(
    ("name", "seed"), [("db-lock-contention-test", 0), ("default", 3), ("tiny-mix-train", 1)]
)
def test_lines_read_late_are_the_lines_read_at_once(name: str, seed: int) -> None:
    at_once, log_at_once = _run(name, seed, True)
    late, log_late = _run(name, seed, False)
    assert late == at_once
    assert log_late == log_at_once
    assert sum(len(lines) for lines in late) > 10  # the runs wrote lines


def test_a_log_nobody_reads_is_not_written() -> None:
    episode = Episode("db-lock-contention-test", 0)
    episode.reset()
    for _ in range(5):
        episode.wait(10)
        episode.observe()
    state = episode.state
    assert state.log_queue and state.log_written < state.log_queued
    before = len(state.lines)
    assert len(state.log) > before  # reading makes them
    assert not state.log_queue and state.log_written == state.log_queued
    assert not state.log_waiting  # every observation was handed its lines (or is gone)


def test_the_queue_stays_bounded_when_nobody_reads() -> None:
    episode = Episode("db-lock-contention-test", 0)
    episode.reset()
    for _ in range(2 * LOG_QUEUE_LIMIT):
        episode.wait(1, step=1)
    assert 0 < len(episode.state.log_queue) <= LOG_QUEUE_LIMIT
    assert episode.state.log_written >= LOG_QUEUE_LIMIT


def test_a_copy_writes_what_its_source_writes() -> None:
    episode = Episode("process-hang-test", 2)
    episode.reset()
    episode.wait(20)
    assert episode.state.log_queue
    twin = episode.state.copy()
    assert [str(x) for x in twin.log] == [str(x) for x in episode.state.log]


def test_a_dry_run_never_draws_from_the_log_generator() -> None:
    plain, dry = Episode("process-hang-test", 2), Episode("process-hang-test", 2)
    plain.reset()
    dry.reset()
    plain.wait(20)
    dry.wait(20)
    dry.simulate("QueryLogs(keystone-1, 60); Inspect(keystone-3); Wait(10)")
    dry.simulate(oracle_plan(dry.state))
    for episode in (plain, dry):
        episode.wait(20)
    assert [str(x) for x in dry.state.log] == [str(x) for x in plain.state.log]


def test_an_observation_outlives_its_state() -> None:
    episode = Episode("db-lock-contention-test", 0)
    episode.reset()
    episode.wait(10)
    obs = episode.observe()
    expected = Episode("db-lock-contention-test", 0)
    expected.reset()
    expected.wait(10)
    lines = _lines(expected.observe())
    episode.reset(seed=5)  # the state the observation was made of is gone from the episode
    gc.collect()
    assert _lines(obs) == lines and lines


def test_log_lines_behave_as_a_sequence() -> None:
    episode = Episode("db-lock-contention-test", 0)
    episode.reset()
    episode.wait(10)
    logs = episode.observe().logs
    assert isinstance(logs, LogLines)
    items = list(logs)
    assert len(logs) == len(items) > 2 and bool(logs)
    assert logs[-2:] == items[-2:] and logs[0] == items[0]
    assert logs == items and logs == LogLines.of(items) and logs != items[1:]
    assert not LogLines() and LogLines() == []
    assert repr(logs).startswith("[LogLine(")
    with pytest.raises(TypeError):
        hash(logs)


def test_observations_made_without_a_queue_take_their_lines_at_once() -> None:
    state: SimState = Episode("default", 0).state
    state.add_log(0, "WARNING", "a line")
    lines = LogLines(state, 0)
    assert lines._state is None and [x.text for x in lines] == ["a line"]
    assert np.array_equal([x.tick for x in lines], [state.tick])


def test_a_state_and_its_waiting_observation_pickle_together() -> None:
    import copy
    import pickle

    episode = Episode("db-lock-contention-test", 0)
    episode.reset()
    episode.wait(10)
    obs = episode.observe()
    episode.wait(10)
    expected = [str(x) for x in copy.deepcopy((episode.state, obs))[1].logs]
    state, restored = pickle.loads(pickle.dumps((episode.state, obs)))
    assert restored.logs._state is state and state.log_waiting
    advance(state, 10, np.random.default_rng(0))  # later writes are not its lines
    assert [str(x) for x in restored.logs] == expected == [str(x) for x in obs.logs]
    alone = pickle.loads(pickle.dumps(episode.state))  # its observation stays behind
    assert [str(x) for x in alone.log] == [str(x) for x in episode.state.log]
