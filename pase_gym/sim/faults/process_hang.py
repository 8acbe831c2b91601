"""Process hang (process family): The process freezes: sockets accept, nothing answers, CPU drops
to idle.

Runbook: A hung process ignores SIGTERM: kill it, then restart it. Source: os-faults freeze
(SIGSTOP); Chaos Mesh process-chaos.
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import SimState

_T = SignatureTerm


@register_fault
class ProcessHang(ActiveFault):
    spec = FaultSpec(
        name="process_hang",
        family="process",
        target="service",
        description="The process freezes: sockets accept, nothing answers, CPU drops to idle.",
        signature=(
            _T("node", "latency", ">", 2.0),
            _T("node", "cpu", "<", 0.15),
        ),
        symptoms=("slow",),
        recovery="A hung process ignores SIGTERM: kill it, then restart it.",
        catalogue="os-faults freeze (SIGSTOP); Chaos Mesh process-chaos",
        findings=(
            (
                "ps: the main process has been in state D (uninterruptible sleep) for {age} s; "
                "its health endpoint does not answer"
            ),
        ),
    )

    clears_by = ("kill", "restart")

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.hung[self.node] = True

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("KillProcess", (name,)), ("Restart", (name,))]
