"""Fault signatures evaluated on observable signals.

Each fault type declares a symptom signature (:class:`pase_gym.sim.faults.SignatureTerm`):
which indicators move past which thresholds at the faulty node, its host or its callers: facts
about the nodes' own signals, as the node view (``view="node"``) or a probe (``Inspect``) shows
them. This module checks a signature against an :class:`~pase_gym.sim.signals.Observation`,
using the topology only for "who is the host" and "who calls whom" (both public knowledge in a
cloud).
"""

from __future__ import annotations

import numpy as np

from pase_gym.sim.faults import FAULTS, SignatureTerm
from pase_gym.sim.signals import Observation
from pase_gym.sim.state import IND
from pase_gym.sim.topology import Topology


def callers_of(topo: Topology, node: int) -> np.ndarray:
    """Node ids with a dependency on ``node``'s pool (its clients)."""
    return np.unique(topo.dep_src[topo.dep_pool == topo.pool[node]])


def term_value(
    obs: Observation, topo: Topology, host_of: np.ndarray, node: int, term: SignatureTerm
) -> float | None:
    """The observed value a signature term looks at (``None`` when the scope is empty)."""
    col = obs.metrics[:, IND[term.indicator]]
    if term.scope == "node":
        return float(col[node])
    if term.scope == "host":
        return float(col[host_of[node]])
    if term.scope == "hosted":
        ids = np.flatnonzero((host_of == node) & (np.arange(host_of.size) != node))
        if ids.size == 0:
            return None
        return float(col[ids].max() if term.op == ">" else col[ids].min())
    if term.scope == "callers":
        ids = callers_of(topo, node)
        if topo.kind[node] == 1:  # a host's "callers" are the callers of what runs on it
            hosted = np.flatnonzero(host_of == node)
            ids = np.unique(
                np.concatenate(
                    [callers_of(topo, int(h)) for h in hosted] or [np.zeros(0, dtype=np.int64)]
                )
            )
            ids = ids[host_of[ids] != node]
        if ids.size == 0:
            return None
        values = col[ids]
        return float(values.max() if term.op == ">" else values.min())
    raise ValueError(f"unknown signature scope {term.scope!r}")  # pragma: no cover


def signature_matches(
    obs: Observation, topo: Topology, host_of: np.ndarray, fault_type: str, node: int
) -> bool:
    """Whether every term of ``fault_type``'s signature holds at ``node`` in ``obs``.

    A term whose scope is empty (a node nobody calls) is skipped rather than failed.
    """
    for term in FAULTS[fault_type].signature:
        value = term_value(obs, topo, host_of, node, term)
        if value is None:
            continue
        if term.op == ">" and not value > term.threshold:
            return False
        if term.op == "<" and not value < term.threshold:
            return False
    return True
