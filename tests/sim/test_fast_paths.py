"""The fast paths give what the plain ones give, to the bit: the service view over every
snapshot at once, the reset that builds the cloud once and skips the observation nobody reads,
and the per-topology provisioning cache."""

from __future__ import annotations

import numpy as np
import pytest

import pase_gym.sim.observe as observe_module
from pase_gym.episode import Episode
from pase_gym.scenarios import load_scenario
from pase_gym.sim.kernel import fused_kernel
from pase_gym.sim.observe import (
    PROCESS_DETAIL,
    SERVICE_LEVEL,
    observe,
    service_view,
    skip_observation,
)
from pase_gym.sim.state import LOG_LIMIT, LogLine, SimState, new_state

SCENARIOS = ("default", "process-hang-test", "db-lock-contention-train", "tiny-mix-train")


def _service_view_by_snapshot(state: SimState, metrics: np.ndarray) -> np.ndarray:
    """The service view one snapshot and one column at a time (the definition)."""
    t = state.topo
    out = np.array(metrics, dtype=np.float64, copy=True)
    ids = np.flatnonzero(t.is_process & state.active)
    if ids.size == 0:
        return out
    pools = t.pool[ids]
    size = int(t.pool.max()) + 1
    weight = np.maximum(state.route_w[ids], 0.0)
    unweighted = np.bincount(pools, weights=weight, minlength=size)[pools] <= 0
    weight = np.where(unweighted, 1.0, weight)
    total = np.bincount(pools, weights=weight, minlength=size)
    flat = out.reshape(-1, t.n, out.shape[-1])
    for rows in flat:
        for col in SERVICE_LEVEL:
            sums = np.bincount(pools, weights=weight * rows[ids, col], minlength=size)
            rows[ids, col] = sums[pools] / total[pools]
        rows[np.ix_(np.flatnonzero(t.is_process), PROCESS_DETAIL)] = 0.0
    return out


def _states() -> list[SimState]:
    states = []
    for name in SCENARIOS:
        episode = Episode(name, 3)
        episode.reset()
        episode.wait(40)
        states.append(episode.state)
    # a pool nobody routes to (every replica's weight zero): its plain mean
    drained = states[0].copy()
    nova = drained.topo.nodes_of_role("nova-api")
    drained.route_w[nova] = 0.0
    states.append(drained)
    return states


@pytest.mark.parametrize("path", ["numpy", "fused"])
@pytest.mark.parametrize("index", range(len(SCENARIOS) + 1))
def test_the_service_view_of_every_snapshot_at_once_is_the_one_by_one_view(
    index: int, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path == "numpy":
        monkeypatch.setattr(observe_module, "fused_kernel", lambda: None)
    elif fused_kernel() is None:
        pytest.skip("the fused kernel is off here (no numba, or PASE_GYM_KERNEL=numpy)")
    state = _states()[index]
    rng = np.random.default_rng(index)
    window = rng.random((5, state.n, 8)) * (rng.random((5, state.n, 8)) > 0.2)
    for metrics in (state.health, window, window[:1]):
        expected = _service_view_by_snapshot(state, metrics)
        shown = service_view(state, metrics)
        assert shown.dtype == expected.dtype and shown.shape == expected.shape
        assert np.array_equal(shown, expected)  # bit for bit, not approximately
    assert not np.array_equal(service_view(state, window), window)  # it does change something


def _same_state(a: SimState, b: SimState) -> None:
    for key, value in a.__dict__.items():
        other = b.__dict__[key]
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, other), key
        elif isinstance(value, np.random.Generator):
            assert value.bit_generator.state == other.bit_generator.state, key
    assert [h.tobytes() for h in a.history] == [h.tobytes() for h in b.history]
    assert [str(x) for x in a.log] == [str(x) for x in b.log]
    assert (a.tick, a.slo_ok, a.incident_open_at) == (b.tick, b.slo_ok, b.incident_open_at)
    assert a.ground_truth() == b.ground_truth()


@pytest.mark.parametrize("skip_to_incident", [True, False])
@pytest.mark.parametrize("name", SCENARIOS)
def test_a_started_episode_is_a_constructed_and_reset_one(
    name: str, skip_to_incident: bool
) -> None:
    """``Episode.started`` builds the cloud once and makes no observation, yet leaves every
    generator, array and record where ``Episode(...)`` then ``reset()`` leave them."""
    plain = Episode(name, 11)
    plain.reset(skip_to_incident=skip_to_incident)
    fast = Episode.started(name, 11, skip_to_incident=skip_to_incident)
    _same_state(plain.state, fast.state)
    assert plain.rng.bit_generator.state == fast.rng.bit_generator.state
    for _ in range(3):  # and they go on alike
        plain.wait(10)
        fast.wait(10)
        a, b = plain.observe(), fast.observe()
        assert np.array_equal(a.metrics, b.metrics) and np.array_equal(a.events, b.events)
    _same_state(plain.state, fast.state)


def test_skipping_an_observation_changes_what_observing_changes() -> None:
    observed = Episode("process-hang-test", 5)
    observed.reset()
    observed.wait(7)
    skipped = Episode("process-hang-test", 5)
    skipped.reset()
    skipped.wait(7)
    observe(observed.state, observed.rng)
    skip_observation(skipped.state, skipped.rng)
    _same_state(observed.state, skipped.state)
    assert observed.rng.bit_generator.state == skipped.rng.bit_generator.state
    assert not skipped.state.event_counts.any() and skipped.state.probes == []
    with pytest.raises(ValueError, match="dry run"):
        skip_observation(skipped.state.copy(logs=False), skipped.rng)


def test_the_provisioning_cache_is_never_written_through() -> None:
    spec = load_scenario("default")
    episode = Episode(spec, 0)
    profile = spec.workload.profiles()[0]
    first = new_state(episode.topology, profile, np.random.default_rng(1))
    for key in ("active", "route_w", "demand", "pinned_load", "desired", "cap0"):
        getattr(first, key)[...] = 0  # a state owns its arrays
    second = new_state(episode.topology, profile, np.random.default_rng(1))
    third = new_state(episode.topology, profile, np.random.default_rng(1))
    for key in ("active", "route_w", "demand", "pinned_load", "desired", "cap0", "disk_used"):
        assert np.array_equal(getattr(second, key), getattr(third, key)), key
        assert getattr(second, key).any(), key
        assert getattr(second, key).flags.writeable, key


@pytest.mark.parametrize("batch", [1, 7, 999, 2600])
def test_appending_lines_in_batches_keeps_what_one_at_a_time_keeps(batch: int) -> None:
    one, many = Episode("default", 0).state, Episode("default", 0).state
    texts = [f"line {i}" for i in range(5200)]
    for i, text in enumerate(texts):
        one.tick = i
        one.add_log(0, "WARNING", text)
    for start in range(0, len(texts), batch):
        stop = min(start + batch, len(texts))
        many.add_lines([LogLine(i, one.name(0), "WARNING", texts[i]) for i in range(start, stop)])
    assert [str(x) for x in many.log] == [str(x) for x in one.log]
    assert 1000 < len(one.log) <= LOG_LIMIT


def test_group_member_counts_are_the_per_group_counts() -> None:
    """The spare and provisioned replicas of every group, counted in one pass, are what
    counting each group's members gives (the action masks and ScaleOut/ScaleIn read them)."""
    from pase_gym.sim.predicates import _active_count, _spare

    checked = 0
    for state in _states():
        members = state.topo.group_members
        rng = np.random.default_rng(checked)
        for active in (state.active, rng.random(state.n) < 0.5):  # and a scrambled inventory
            state.active = active.copy()
            ids = np.arange(len(members))
            spare = [int(np.count_nonzero(~state.active[m])) for m in members]
            live = [int(np.count_nonzero(state.active[m])) for m in members]
            assert _spare(state, ids).tolist() == spare
            assert _active_count(state, ids).tolist() == live
            assert _spare(state, ids[::-1]).tolist() == spare[::-1]
            checked += 1
    assert checked >= 8
