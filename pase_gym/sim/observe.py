"""The observation: what monitoring reads off the state at one tick.

:func:`observe` is the one way from the simulator state to an :class:`Observation` (noisy
metrics, the recent window, alarms, logs, event counts); the env encodes it into arrays and a
scene description. It sits above the dynamics (it re-evaluates a stale state) and the
signals (alarm rules, event vocabulary).
"""

from __future__ import annotations

import numpy as np

from pase_gym.sim.dynamics import ensure_indicators, evaluate
from pase_gym.sim.signals import EVENT_NAMES, Observation, alarms_of
from pase_gym.sim.state import INDICATORS, SimState


def observe(
    state: SimState,
    rng: np.random.Generator,
    *,
    window: int = 8,
    since_tick: int | None = None,
    noise: float = 0.01,
) -> Observation:
    """Read the signals of ``state`` (drawing measurement noise from ``rng``).

    Resets the event counters, so each observation carries the events since the previous one.
    """
    if state.evaluated_at != state.tick:
        evaluate(state, None)
    ensure_indicators(state)
    metrics = state.health + noise * rng.standard_normal(state.health.shape) * (state.health > 0)
    metrics = np.maximum(metrics, 0.0)
    hist = state.history[-window:]
    win = np.zeros((window, state.n, len(INDICATORS)))
    if hist:
        win[window - len(hist) :] = np.stack(hist)
    counts = state.event_counts if state.event_counts.size else np.zeros(len(EVENT_NAMES))
    events = rng.poisson(np.maximum(counts, 0.0)).astype(np.float64)
    state.event_counts = np.zeros(len(EVENT_NAMES))
    start = since_tick if since_tick is not None else state.tick - 30
    first = len(state.log)
    while first > 0 and state.log[first - 1].tick >= start:  # the log is in tick order
        first -= 1
    logs = state.log[first:]
    return Observation(state.tick, metrics, win, alarms_of(state, metrics), logs, events)
