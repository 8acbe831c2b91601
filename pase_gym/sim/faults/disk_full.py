"""Disk full (resource family): A host's disk fills up; writes fail and the database on it stops.

Runbook: Free the disk, then restart what stopped because of it. Source: LitmusChaos disk-fill;
os-faults (filesystem).
"""

from __future__ import annotations

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.roles import Kind
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class DiskFull(ActiveFault):
    """Logs fill a host's disk; clean it, then restart what the full disk stopped."""

    spec = FaultSpec(
        name="disk_full",
        family="resource",
        target="disk_host",
        description="A host's disk fills up; writes fail and the database on it stops.",
        signature=(_T("node", "disk", ">", 0.97),),
        symptoms=("disk",),
        recovery="Free the disk, then restart what stopped because of it.",
        catalogue="LitmusChaos disk-fill; os-faults (filesystem)",
        findings=("df: / is 97-100% full; /var/log holds most of it",),
        hosted_findings=("this process's writes fail with No space left on device (host {host})",),
    )

    clears_by = ("clean_disk",)

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.disk_used[self.node] = max(state.disk_used[self.node], 0.93)

    def advance(self, state: SimState, dt: int) -> None:
        state.disk_used[self.node] = min(1.0, state.disk_used[self.node] + 0.01 * dt)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        if state.disk_used[self.node] >= 0.99:
            hosted = self.hosted(state)
            writers = hosted[state.topo.writes_disk[hosted]]
            mods.err_add[writers] = 1.0 - (1.0 - mods.err_add[writers]) * 0.2

    def runbook(self, state: SimState) -> list[RunbookStep]:
        t = state.topo
        hosted = t.hosted_on(self.node)
        stopped = hosted[
            t.writes_disk[hosted] & np.isin(t.kind[hosted], (Kind.DATABASE, Kind.QUEUE))
        ]
        steps: list[RunbookStep] = [("CleanDisk", (state.name(self.node),))]
        return steps + [("Restart", (state.name(int(s)),)) for s in stopped]
