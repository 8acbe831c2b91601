"""Process crash (process family): The service's process exits and stays down; its replicas take
its load.

Runbook: Restart the process. Source: os-faults kill/restart service; LitmusChaos pod-delete.
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import SimState

_T = SignatureTerm


@register_fault
class ProcessCrash(ActiveFault):
    spec = FaultSpec(
        name="process_crash",
        family="process",
        target="service",
        description="The service's process exits and stays down; its replicas take its load.",
        signature=(_T("node", "availability", "<", 0.5),),
        symptoms=("exited",),
        recovery="Restart the process.",
        catalogue="os-faults kill/restart service; LitmusChaos pod-delete",
        findings=(
            (
                "systemctl: {node}.service: inactive (dead) since t={onset}s; main process "
                "exited, status=1/FAILURE"
            ),
        ),
    )

    clears_by = ("restart",)

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.up[self.node] = False

    def runbook(self, state: SimState) -> list[RunbookStep]:
        return [("Restart", (state.name(self.node),))]
