"""Cpu memory deadlock (hybrid family): Threads spin on a lock while memory pressure grows: CPU
pegged, memory climbing, no answers. It comes back after a restart unless the memory limit is
raised.

Runbook: Kill the process, raise its memory allocation, then restart it. Source: hybrid CPU-
memory stress (Chaos Mesh stress-chaos cpu+memory).
"""

from __future__ import annotations

from typing import Any

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.logs import symptom_line
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class CpuMemoryDeadlock(ActiveFault):
    """Memory pressure past 80% of the limit triggers a spinning lock; raise the limit."""

    spec = FaultSpec(
        name="cpu_memory_deadlock",
        family="hybrid",
        target="service",
        description=(
            "Threads spin on a lock while memory pressure grows: CPU pegged, memory climbing, no "
            "answers. It comes back after a restart unless the memory limit is raised."
        ),
        signature=(
            _T("node", "cpu", ">", 0.9),
            _T("node", "memory", ">", 0.7),
            _T("node", "latency", ">", 2.0),
        ),
        symptoms=("resource",),
        recovery="Kill the process, raise its memory allocation, then restart it.",
        catalogue="hybrid CPU-memory stress (Chaos Mesh stress-chaos cpu+memory)",
        findings=(
            (
                "ps: threads spin on a lock (CPU pegged) while memory nears its limit, since "
                "t={onset}s"
            ),
        ),
    )

    plateau = 0.95  # working set, in units of the original allocation

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.mem_used[self.node] = max(state.mem_used[self.node], 0.6)

    def advance(self, state: SimState, dt: int) -> None:
        node = self.node
        if state.up[node] and state.down_until[node] <= state.tick and not state.hung[node]:
            state.mem_used[node] = min(self.plateau, state.mem_used[node] + 0.02 * dt)
        if (
            state.mem_used[node] / state.mem_alloc[node] > 0.8
            and not state.hung[node]
            and (state.up[node] and state.down_until[node] <= state.tick)
        ):
            state.hung[node] = True
            symptom_line(state, node, "resource")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        if state.hung[self.node]:
            mods.cpu_add[self.node] += 0.95

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if (
            node == self.node
            and effect == "restart"
            and (self.plateau / state.mem_alloc[node] <= 0.8)
        ):
            self.resolve(state)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [
            ("KillProcess", (name,)),
            ("ResizeResource", (name, "memory", 1)),
            ("Restart", (name,)),
        ]
