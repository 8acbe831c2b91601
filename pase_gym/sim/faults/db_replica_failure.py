"""Db replica failure (data family): A database replica desyncs from the cluster and refuses
queries.

Runbook: Fence the replica, then restart it so it resyncs and rejoins. Source: os-faults galera;
Percona/Galera runbooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.roles import ROLE_INDEX
from pase_gym.sim.state import SimState

_T = SignatureTerm
_DB_ROLE = ROLE_INDEX["mysql"]


@register_fault
class DbReplicaFailure(ActiveFault):
    spec = FaultSpec(
        name="db_replica_failure",
        family="data",
        target="database",
        description="A database replica desyncs from the cluster and refuses queries.",
        signature=(
            _T("node", "error_rate", ">", 0.5),
            _T("node", "cpu", "<", 0.5),
        ),
        symptoms=("db", "stack_trace"),
        recovery="Fence the replica, then restart it so it resyncs and rejoins.",
        catalogue="os-faults galera; Percona/Galera runbooks",
        findings=(
            (
                "wsrep_local_state_comment: Inconsistent since t={onset}s; the node must be "
                "fenced before it rejoins the cluster"
            ),
        ),
    )

    clears_by = ("isolate", "restart")  # a replica restarted unfenced rejoins desynced

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.desynced[self.node] = True

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        fenced = self.steps_done > 0
        super().on_effect(state, effect, node, **kw)
        if node == self.node and effect == "restart" and not fenced:
            # unfenced, the replica rejoins while the cluster still writes to it and comes
            # back desynced: the restart alone does not clear it
            state.desynced[self.node] = True

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("Isolate", (name,)), ("Restart", (name,))]

    @classmethod
    def target_mask(cls, state: SimState) -> np.ndarray:
        # a standby: a database node that takes no writes
        return (state.topo.role == _DB_ROLE) & (state.route_w <= 0)
