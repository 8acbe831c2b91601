"""Noisy neighbour (infrastructure family): One tenant instance hogs its host's CPU and I/O; its
neighbours slow down.

Runbook: Cap the noisy instance (throttle to half or less). Source: LitmusChaos node-io-stress;
cloud noisy-neighbour incidents.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class NoisyNeighbour(ActiveFault):
    """One instance hogs its host; capping it (or evicting it) protects the neighbours."""

    spec = FaultSpec(
        name="noisy_neighbour",
        family="infrastructure",
        target="instance",
        description="One tenant instance hogs its host's CPU and I/O; its neighbours slow down.",
        signature=(
            _T("node", "cpu", ">", 0.9),
            _T("host", "cpu", ">", 0.85),
        ),
        symptoms=("resource",),
        recovery="Cap the noisy instance (throttle to half or less).",
        catalogue="LitmusChaos node-io-stress; cloud noisy-neighbour incidents",
        findings=(
            (
                "virsh domstats: the instance has burned ~90% of its host's CPU and most of its "
                "link since t={onset}s"
            ),
        ),
    )

    def apply(self, state: SimState, mods: Modifiers) -> None:
        node = self.node
        if not (state.active[node] and state.up[node]) or state.isolated[node]:
            return
        host = int(state.host_of[node])
        level = float(state.throttle[node])
        harm = max(0.0, level - 0.4) / 0.6
        # the quota bites on the runaway burn first, not on the tenant's own serving share
        mods.cap_mult[node] /= max(level, 0.1)
        mods.cpu_add[node] += 0.9 * level
        mods.cpu_add[host] += 0.7 * level
        mods.net_add[host] += 0.6 * level  # its I/O floods the host's link as well
        if harm > 0:
            neighbours = np.flatnonzero(state.host_of == host)
            neighbours = neighbours[(neighbours != node) & (neighbours != host)]
            mods.cap_mult[neighbours] *= 1.0 - 0.8 * harm
            mods.lat_add[neighbours] += 0.3 * harm

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if node != self.node:
            return
        if effect == "isolate":
            self.resolve(state)
        elif effect == "throttle":
            # contained while capped (the fault keeps applying, and un-capping revives it)
            contained = state.throttle[node] <= 0.5
            self.phase = "contained" if contained else "active"
            self.resolved_at = state.tick if contained else None

    def runbook(self, state: SimState) -> list[RunbookStep]:
        return [("Throttle", (state.name(self.node), 40))]
