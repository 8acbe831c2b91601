"""Host power loss (infrastructure family): A compute host loses power: its services and instances
are gone.

Runbook: Disable the host, then evacuate its instances to other hosts. Source: os-faults power
off node; LitmusChaos node-restart.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.roles import Kind
from pase_gym.sim.state import SimState

_T = SignatureTerm


@register_fault
class HostPowerLoss(ActiveFault):
    spec = FaultSpec(
        name="host_power_loss",
        family="infrastructure",
        target="compute_host",
        description="A compute host loses power: its services and instances are gone.",
        signature=(_T("node", "availability", "<", 0.5),),
        symptoms=("unreachable",),
        recovery="Disable the host, then evacuate its instances to other hosts.",
        catalogue="os-faults power off node; LitmusChaos node-restart",
        findings=("BMC: chassis power off since t={onset}s; the host does not answer",),
    )

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.up[self.node] = False

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        # The host stays dark; the incident is over once it is fenced and its instances run
        # elsewhere (recovery itself is judged on the SLOs).
        if node == self.node and effect == "isolate":
            self.phase = "fenced"
        if self.phase == "fenced" and effect in ("isolate", "migrate"):
            t = state.topo
            left = (t.kind == Kind.INSTANCE) & state.active & (state.host_of == self.node)
            if not left.any():
                self.resolve(state)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        return self._evacuation(state)

    def _evacuation(self, state: SimState) -> list[RunbookStep]:
        """Fence the dead host, add one, and move its instances to hosts with room."""
        t = state.topo
        host = self.node
        steps: list[RunbookStep] = [("Isolate", (state.name(host),)), ("ScaleOut", ("compute", 1))]
        members = t.group_members[t.group_index["compute"]]
        spare = members[~state.active[members]]
        on_host = (t.kind == Kind.INSTANCE) & state.active & (state.host_of == host)
        instances = np.flatnonzero(on_host)
        counts = np.bincount(state.host_of[(t.kind == Kind.INSTANCE) & state.active], minlength=t.n)
        # prefer the new host, then live hosts with the most room
        targets = [int(spare[0])] if spare.size else []
        live = members[state.active[members] & state.up[members] & (members != host)]
        targets += [int(h) for h in live[np.argsort(counts[live], kind="stable")]]
        load = {h: int(counts[h]) for h in targets}
        for inst in instances.tolist():
            dest = next((h for h in targets if load[h] < t.slots_per_host), None)
            if dest is None:
                break
            load[dest] += 1
            steps.append(("Migrate", (state.name(inst), state.name(dest))))
        return steps
