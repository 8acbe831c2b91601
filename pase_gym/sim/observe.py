"""The observation: what monitoring reads off the state at one tick.

:func:`observe` is the one way from the simulator state to an :class:`Observation` (noisy
metrics, the recent window, alarms, logs, event counts); the env encodes it into arrays and a
scene description. It sits above the dynamics (it re-evaluates a stale state) and the
signals (alarm rules, event vocabulary).
"""

from __future__ import annotations

import numpy as np

from pase_gym.sim.dynamics import ensure_indicators, evaluate
from pase_gym.sim.kernel import fused_kernel
from pase_gym.sim.signals import EVENT_NAMES, LogLines, Observation, alarms_of
from pase_gym.sim.state import IND, INDICATORS, SimState
from pase_gym.sim.topology import Topology

VIEWS = ("service", "node")
"""What monitoring shows by default: ``service`` (since env v3) or every process's own metrics."""
PROCESS_DETAIL = np.array([IND[c] for c in ("cpu", "memory", "disk", "network")])
"""A process's own resource use: behind a probe in the service view."""
SERVICE_LEVEL = np.array([IND[c] for c in ("latency", "error_rate", "throughput")])
"""What the load balancer and API monitoring show per service: the mean over its replicas."""


def service_view(state: SimState, metrics: np.ndarray) -> np.ndarray:
    """``metrics`` (``(..., n, 8)``) as the default monitoring (since env v3) shows them.

    Hosts and tenant resources (instances, networks, volumes) keep their own rows (node and
    hypervisor monitoring). A process row keeps its own availability (the load balancer's
    health check) but its latency, error rate and throughput are its service's: the mean
    over the provisioned replicas of its pool, weighted by the load balancer's weights (what
    the service's clients see: one process that answers slowly raises its whole service's
    latency, not its own; a database's standbys, which take no writes, do not count while the
    writer does); its CPU, memory, disk and network use are not shown (zero) until a probe
    (``Inspect``) reads them.
    """
    out = np.array(metrics, dtype=np.float64, copy=True)
    _to_service_view(state, out.reshape(-1, state.topo.n, out.shape[-1]))
    return out


def _to_service_view(state: SimState, flat: np.ndarray) -> None:
    """:func:`service_view` in place on ``flat`` (``(k, n, 8)``), every snapshot at once.

    One ``bincount`` sums every (snapshot, column, pool) cell, adding each cell's replicas in
    node order as a per-snapshot, per-column sum would, so the result is the same to the bit.
    """
    t = state.topo
    kernel = fused_kernel()
    if kernel is not None:
        size = t.n_pools
        kernel.service_view(
            flat,
            t.is_process,
            state.active,
            t.pool,
            state.route_w,
            size,
            SERVICE_LEVEL,
            PROCESS_DETAIL,
        )
        return
    proc = t.is_process & state.active
    if not proc.any():
        return
    ids = np.flatnonzero(proc)
    pools = t.pool[ids]
    size = t.n_pools
    weight = np.maximum(state.route_w[ids], 0.0)
    total = np.bincount(pools, weights=weight, minlength=size)
    unweighted = total[pools] <= 0  # a pool nobody routes to: its plain mean
    weight = np.where(unweighted, 1.0, weight)
    total = np.bincount(pools, weights=weight, minlength=size)
    k = flat.shape[0]
    cols = len(SERVICE_LEVEL)
    values = flat[:, ids][:, :, SERVICE_LEVEL].transpose(0, 2, 1)  # (k, cols, replicas)
    cells = (np.arange(k * cols)[:, None] * size + pools).ravel()
    sums = np.bincount(cells, weights=(weight * values).ravel(), minlength=k * cols * size)
    mean = sums.reshape(k, cols, size)[:, :, pools] / total[pools]
    flat[:, ids[:, None], SERVICE_LEVEL] = mean.transpose(0, 2, 1)
    flat[:, _process_slots(t)[:, None], PROCESS_DETAIL] = 0.0


def _process_slots(topo: Topology) -> np.ndarray:
    slots = _PROCESS_SLOTS.get(id(topo))
    if slots is None or slots[0] is not topo:
        if len(_PROCESS_SLOTS) > 64:
            _PROCESS_SLOTS.clear()
        slots = _PROCESS_SLOTS[id(topo)] = (topo, np.flatnonzero(topo.is_process))
    return slots[1]


_PROCESS_SLOTS: dict[int, tuple[Topology, np.ndarray]] = {}


def observe(
    state: SimState,
    rng: np.random.Generator,
    *,
    window: int = 8,
    since_tick: int | None = None,
    noise: float = 0.01,
    view: str = "service",
) -> Observation:
    """Read the signals of ``state`` (drawing measurement noise from ``rng``, and the event
    counts' noise from ``state.event_rng`` when the state has its own).

    Resets the event counters, so each observation carries the events since the previous one.

    Raises:
        ValueError: ``state`` is a dry run's copy (``state.copy(logs=False)``).
    """
    if state.quiet:
        raise ValueError(
            "a dry run's copy (state.copy(logs=False)) writes no log and counts no events, so it "
            "cannot be observed; observe a copy made with state.copy()"
        )
    if state.evaluated_at != state.tick:
        evaluate(state, None)
    ensure_indicators(state)
    metrics = state.health + noise * rng.standard_normal(state.health.shape) * (state.health > 0)
    metrics = np.maximum(metrics, 0.0)
    hist = state.history[-window:]
    win = np.zeros((window + 1, state.n, len(INDICATORS)))
    if hist:
        win[window + 1 - len(hist) :] = hist
    if view == "service":
        win[0] = metrics  # the current snapshot and the window in one pass
        _to_service_view(state, win)
        metrics = win[0].copy()
    elif view != "node":
        raise ValueError(f"view must be one of {VIEWS}, found {view!r}")
    counts = state.event_counts if state.event_counts.size else np.zeros(len(EVENT_NAMES))
    counter = state.event_rng if state.event_rng is not None else rng
    events = counter.poisson(np.maximum(counts, 0.0)).astype(np.float64)
    state.event_counts = np.zeros(len(EVENT_NAMES))
    start = since_tick if since_tick is not None else state.tick - 30
    logs = LogLines(state, start)  # taken from the log when first read
    probes, state.probes = state.probes, []
    win = win[1:]
    return Observation(state.tick, metrics, win, alarms_of(state, metrics), logs, events, probes)


def skip_observation(state: SimState, rng: np.random.Generator) -> None:
    """What :func:`observe` changes, without building the observation: the indicators enter
    the metric history, the measurement and event-count noise are drawn (and dropped), the
    event counters restart and the pending probe reports are dropped.

    The env's reset uses it where episodes used to make an observation nobody read, so that
    the seeded streams, and with them every trajectory, stay what they were.
    """
    if state.quiet:
        raise ValueError("a dry run's copy (state.copy(logs=False)) is never observed")
    if state.evaluated_at != state.tick:
        evaluate(state, None)
    ensure_indicators(state)
    rng.standard_normal(state.health.shape)
    counts = state.event_counts if state.event_counts.size else np.zeros(len(EVENT_NAMES))
    counter = state.event_rng if state.event_rng is not None else rng
    counter.poisson(np.maximum(counts, 0.0))
    state.event_counts = np.zeros(len(EVENT_NAMES))
    state.probes = []
