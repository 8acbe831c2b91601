"""The scene description D_t: what a language-model agent reads about the incident.

It summarises the symptoms (alarms, SLO violations, event-stream anomalies, recent logs), the
affected components and their topology context (host, role, what they depend on, who calls
them), and what the probes of the last step found (``Probe results``, at most
:data:`MAX_PROBE_CHARS` characters of them). It is built from observable signals and the
public topology only; it never names the injected fault or reads the ground truth.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import EVENT_NAMES, Observation, baseline_event_rates
from pase_gym.sim.state import SimState
from pase_gym.sim.topology import Topology

MAX_COMPONENTS = 6
MAX_LOGS = 5
MAX_EVENTS = 4
MAX_PROBE_CHARS = 1200  # the probe reports' share of the description (info["probes"] has all)
_ERROR_EVENTS = np.array(
    [i for i, name in enumerate(EVENT_NAMES) if name.endswith(("_ERROR", "_500"))], dtype=np.intp
)


class SceneState(Protocol):
    """What the description reads of the state: the public topology and inventory, the
    workload's name and which nodes break their SLO."""

    @property
    def topo(self) -> Topology: ...

    @property
    def active(self) -> np.ndarray: ...

    @property
    def host_of(self) -> np.ndarray: ...

    @property
    def slo_ok_nodes(self) -> np.ndarray: ...

    @property
    def profile(self) -> str: ...

    def name(self, node: int) -> str: ...


@dataclass(frozen=True)
class SceneSnapshot:
    """A :class:`SceneState` copied off a state at one tick (for a description written later)."""

    topo: Topology
    active: np.ndarray
    host_of: np.ndarray
    slo_ok_nodes: np.ndarray
    profile: str

    @classmethod
    def of(cls, state: SimState) -> SceneSnapshot:
        """The parts of ``state`` the description reads, copied."""
        return cls(
            state.topo,
            state.active.copy(),
            state.host_of.copy(),
            state.slo_ok_nodes.copy(),
            state.profile,
        )

    def name(self, node: int) -> str:
        """Name of node id ``node``."""
        return self.topo.names[node]


def _context(state: SceneState, node: int) -> str:
    t = state.topo
    name = state.name(node)
    role = ROLE_NAMES[int(t.role[node])]
    host = state.name(int(state.host_of[node]))
    deps = sorted(
        {
            state.name(int(n))
            for p in t.dep_pool[t.dep_src == node]
            for n in np.flatnonzero(t.pool == p)[:1]
        }
    )
    dep_roles = sorted({ROLE_NAMES[int(t.role[t.index[d]])] for d in deps})
    callers = t.dep_src[t.dep_pool == t.pool[node]]
    caller_roles = sorted({ROLE_NAMES[int(t.role[c])] for c in callers})
    where = "" if host == name else f" on {host}"
    text = f"{name} ({role}{where}"
    if dep_roles:
        text += f"; depends on {', '.join(dep_roles[:5])}"
    if caller_roles:
        text += f"; called by {', '.join(caller_roles[:5])}"
    return text + ")"


def event_anomalies(
    events: np.ndarray, expected: np.ndarray
) -> tuple[list[tuple[int, float]], list[int]]:
    """What the description says of the event stream: up to :data:`MAX_EVENTS` event types
    far below their expected count (index and drop, the largest shortfalls first, only
    those expected at least 20 times), and up to :data:`MAX_EVENTS` error events seen."""
    drops: list[tuple[int, float]] = []
    for i in np.argsort(-(expected - events)):
        if len(drops) >= MAX_EVENTS or expected[i] < 20:
            break
        drop = 1.0 - events[i] / expected[i]
        if drop > 0.5:
            drops.append((int(i), float(drop)))
    errors = [int(i) for i in _ERROR_EVENTS[events[_ERROR_EVENTS] > 0]][:MAX_EVENTS]
    return drops, errors


def remember_contexts(state: SceneState, obs: Observation, cache: dict[int, str]) -> list[int]:
    """The components the description of ``obs`` names (the most alarmed nodes first), with
    their topology context line added to ``cache`` where it is not there yet.

    The env calls it at every step, read or not, so that a description written later (see
    :class:`~pase_gym.env.info.LazyInfo`) finds the context lines an eager one would have.
    """
    counts: dict[str, int] = {}
    for node, _, _ in obs.alarms:
        counts[node] = counts.get(node, 0) + 1
    ranked = sorted(counts, key=lambda n: -counts[n])
    affected = [state.topo.index[n] for n in ranked[:MAX_COMPONENTS]]
    for a in affected:
        if a not in cache:
            cache[a] = _context(state, a)
    return affected


def describe(
    state: SceneState,
    obs: Observation,
    *,
    interval: int,
    baseline: np.ndarray | None = None,
    cache: dict[int, str] | None = None,
) -> str:
    """A concise natural-language description of the scene in ``obs``.

    Args:
        state: the state the observation was read from (for the public topology), or a
            :class:`SceneSnapshot` of it.
        obs: the observation.
        interval: ticks the observation's event counts cover.
        baseline: healthy events per tick (computed from the state when omitted).
        cache: node id -> topology context line, reused across steps of one episode.
    """
    t = state.topo
    layout = t.layout
    active = int(state.active.sum())
    parts = [
        f"t={obs.tick}s. Cloud of {active} active nodes ({layout.controllers} controllers, "
        f"{layout.compute_hosts} compute hosts), {state.profile} workload."
    ]
    bad = np.flatnonzero(~state.slo_ok_nodes)
    if bad.size == 0 and not obs.alarms:
        parts.append("All service level objectives are met; no alarms.")
    else:
        parts.append(f"{bad.size} node(s) violate their SLO.")
    if obs.alarms:
        by_node: dict[str, list[str]] = defaultdict(list)
        for node, alarm, value in obs.alarms:
            by_node[node].append(f"{alarm} {value:.2f}")
        hosts = Counter(state.name(int(state.host_of[t.index[n]])) for n in by_node)
        ranked = sorted(by_node, key=lambda n: -len(by_node[n]))
        shown = "; ".join(f"{n}: {', '.join(by_node[n])}" for n in ranked[:MAX_COMPONENTS])
        parts.append(f"Alarms on {len(by_node)} node(s): {shown}.")
        common = [h for h, c in hosts.most_common(2) if c > 1]
        if common:
            parts.append(f"Alarmed nodes share host(s): {', '.join(common)}.")
        memo = {} if cache is None else cache
        affected = remember_contexts(state, obs, memo)
        parts.append("Affected components: " + "; ".join(memo[a] for a in affected) + ".")
    if baseline is None:
        baseline = baseline_event_rates(cast(SimState, state))  # reads what a scene has
    drops, errors = event_anomalies(obs.events, baseline * max(interval, 1))
    notes = [f"{EVENT_NAMES[i]} {drop:.0%} below normal" for i, drop in drops]
    if errors:
        notes.append("error events seen: " + ", ".join(EVENT_NAMES[i] for i in errors))
    if notes:
        parts.append("API/RPC event stream: " + "; ".join(notes) + ".")
    if obs.probes:
        text = " | ".join(p.text() for p in obs.probes)
        if len(text) > MAX_PROBE_CHARS:
            text = text[: MAX_PROBE_CHARS - 3].rstrip() + "..."
        parts.append("Probe results: " + text + ".")
    if obs.logs:
        lines = [f"{line.node}: {line.text}" for line in obs.logs[-MAX_LOGS:]]
        parts.append("Recent logs: " + " | ".join(lines) + ".")
    return " ".join(parts)
