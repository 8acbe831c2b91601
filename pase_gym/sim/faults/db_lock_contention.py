"""Db lock contention (data family): A long transaction holds row locks on the primary; queries
queue behind it.

Runbook: Fail the writer over to a replica, then restart the old primary to rejoin. Source: os-
faults mysql/galera; Chaos Mesh IO/time chaos.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.roles import ROLE_INDEX
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm
_DB_ROLE = ROLE_INDEX["mysql"]


@register_fault
class DbLockContention(ActiveFault):
    """A stuck transaction on the writer; fail the writer over, then restart the old one."""

    spec = FaultSpec(
        name="db_lock_contention",
        family="data",
        target="database",
        description="A long transaction holds row locks on the primary; queries queue behind it.",
        signature=(
            _T("node", "latency", ">", 1.0),
            _T("callers", "latency", ">", 1.0),
        ),
        symptoms=("db", "slow"),
        recovery="Fail the writer over to a replica, then restart the old primary to rejoin.",
        catalogue="os-faults mysql/galera; Chaos Mesh IO/time chaos",
        findings=(
            (
                "SHOW ENGINE INNODB STATUS: one transaction has held its row locks for {age} s; "
                "many transactions wait for them"
            ),
        ),
    )

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.lat_add[self.node] += 2.5
        mods.cpu_add[self.node] += 0.1

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        # Restarting the writer in place does not help: the client that holds the locks
        # reconnects and replays its transaction. Once the writes go to a replica, a restart
        # (or a kill) of the old primary ends the stuck transaction for good.
        if node != self.node:
            return
        if effect == "failover":
            self.phase = "failed_over"
        elif effect in ("restart", "kill") and self.phase == "failed_over":
            self.resolve(state)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("Failover", (name,)), ("Restart", (name,))]

    @classmethod
    def target_mask(cls, state: SimState) -> np.ndarray:
        # the writer of a cluster that has a replica to fail over to
        t = state.topo
        db = t.role == _DB_ROLE
        return db & (state.route_w > 0) & (np.count_nonzero(db) > 1)
