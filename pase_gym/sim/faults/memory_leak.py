"""Memory leak (resource family): A faulty release leaks memory until the kernel kills the process,
again and again.

Runbook: Restarting only buys time: roll the release back. Source: LitmusChaos pod-memory-hog;
Chaos Mesh stress-chaos (memory).
"""

from __future__ import annotations

from typing import ClassVar

from pase_gym.sim.faults.base import ActiveFault, FaultParam, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import SimState

_T = SignatureTerm


@register_fault
class MemoryLeak(ActiveFault):
    """The running release leaks; only a rollback (then a restart to load it) stops it."""

    spec = FaultSpec(
        name="memory_leak",
        family="resource",
        target="service",
        description=(
            "A faulty release leaks memory until the kernel kills the process, again and again."
        ),
        signature=(_T("node", "memory", ">", 0.8),),
        symptoms=("resource",),
        recovery="Restarting only buys time: roll the release back.",
        catalogue="LitmusChaos pod-memory-hog; Chaos Mesh stress-chaos (memory)",
        findings=(
            (
                "the running release grows its resident memory steadily: RSS has risen every "
                "minute since t={onset}s; a previous release is kept for rollback"
            ),
        ),
    )
    PARAMS: ClassVar[dict[str, FaultParam]] = {
        "rate": FaultParam(
            0.02, 0.001, 0.2, "memory leaked per simulated second, as a share of the node's memory"
        )
    }

    clears_by = ("rollback", "restart")

    def advance(self, state: SimState, dt: int) -> None:
        node = self.node
        if state.up[node] and state.down_until[node] <= state.tick:
            state.mem_used[node] += self.param("rate") * dt

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("Rollback", (name,)), ("Restart", (name,))]
