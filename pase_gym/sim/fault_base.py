"""The base of every injected fault, and where each fault type may strike.

:class:`ActiveFault` is the interface the dynamics and the transition function talk to; the
concrete fault types are in :mod:`pase_gym.sim.fault_models`.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from pase_gym.sim.dynamics import Modifiers
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.roles import ROLE_INDEX, Kind
from pase_gym.sim.state import SimState

_DB_ROLE = ROLE_INDEX["mysql"]


class ActiveFault:
    """Base class: one injected fault on one node."""

    name: ClassVar[str] = ""
    clears_by: ClassVar[tuple[str, ...]] = ()  # effects on the node, in order, that clear it

    def __init__(self, node: int, onset: int, params: dict[str, float] | None = None) -> None:
        self.node = node
        self.onset = onset
        self.params: dict[str, float] = dict(params or {})
        self.phase = "scheduled"
        self.resolved_at: int | None = None
        self.steps_done = 0

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Injected and not yet cleared."""
        return self.phase not in ("scheduled", "resolved")

    def inject(self, state: SimState) -> None:
        """Onset: change the state. Subclasses call ``super().inject``."""
        self.phase = "active"
        state.add_log(self.node, "WARNING", FAULTS[self.name].log_hint)

    def resolve(self, state: SimState) -> None:
        """The root cause is gone."""
        self.phase = "resolved"
        self.resolved_at = state.tick

    def apply(self, state: SimState, mods: Modifiers) -> None:
        """Per-evaluation effects (default: none beyond what ``inject`` changed)."""

    def advance(self, state: SimState, dt: int) -> None:
        """Integrate accumulators over ``dt`` ticks (default: none)."""

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        """A primitive effect happened on ``node``.

        By default the fault follows its :attr:`clears_by` runbook: the effects, in order, on
        the faulty node that remove the root cause (other effects change nothing). Faults whose
        clearing depends on more than that override this method.
        """
        steps = self.clears_by
        if not steps or node != self.node:
            return
        done = self.steps_done
        if effect == steps[done]:
            done += 1
            self.steps_done = done
            if done == len(steps):
                self.resolve(state)
            else:
                self.phase = f"after_{effect}"

    def clone(self) -> ActiveFault:
        """An independent copy."""
        new = copy.copy(self)
        new.params = dict(self.params)
        return new

    def describe(self, state: SimState) -> dict[str, Any]:
        """Ground truth for the evaluation side."""
        return {
            "fault_type": self.name,
            "family": FAULTS[self.name].family,
            "node": state.name(self.node),
            "onset": self.onset,
            "phase": self.phase,
            "resolved_at": self.resolved_at,
        }

    def hosted(self, state: SimState) -> np.ndarray:
        """Nodes on this fault's host node, the host included."""
        return np.flatnonzero(state.host_of == self.node)


def eligible_targets(state: SimState, fault_type: str) -> np.ndarray:
    """Node ids a fault of ``fault_type`` may strike in this topology (active nodes only)."""
    t = state.topo
    target = FAULTS[fault_type].target
    active = state.active
    kind = t.kind
    if target == "service":
        mask = t.is_process & (kind == Kind.SERVICE)
    elif target == "host":
        mask = kind == Kind.HOST
    elif target == "compute_host":
        mask = t.role == ROLE_INDEX["compute"]
    elif target == "disk_host":
        mask = (kind == Kind.HOST) & (
            np.bincount(state.host_of, weights=t.writes_disk, minlength=t.n) > 0
        )
    elif target == "instance":
        mask = kind == Kind.INSTANCE
    elif target == "queue":
        mask = kind == Kind.QUEUE
    elif target == "database":
        mask = t.role == _DB_ROLE
        if fault_type == "db_lock_contention":
            mask = mask & (state.route_w > 0)  # the writer
        elif fault_type == "db_replica_failure":
            mask = mask & (state.route_w <= 0)  # a standby
    elif target == "replicated_service":
        mask = (kind == Kind.SERVICE) & (t.group_of >= 0)
    elif target == "tls_service":
        mask = t.tls & (kind == Kind.SERVICE)
    else:  # pragma: no cover - the catalogue is fixed
        raise ValueError(f"unknown fault target {target!r}")
    if fault_type == "db_lock_contention":
        mask = mask & (np.count_nonzero(t.role == _DB_ROLE) > 1)
    return np.flatnonzero(mask & active)
