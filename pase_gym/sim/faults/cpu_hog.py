"""Cpu hog (resource family): A runaway process on a host eats its CPU; every service there slows
down.

Runbook: Kill the runaway process on the host. Source: LitmusChaos node-cpu-hog; Chaos Mesh
stress-chaos (cpu).
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class CpuHog(ActiveFault):
    spec = FaultSpec(
        name="cpu_hog",
        family="resource",
        target="host",
        description="A runaway process on a host eats its CPU; every service there slows down.",
        signature=(_T("node", "cpu", ">", 0.9),),
        symptoms=("resource",),
        recovery="Kill the runaway process on the host.",
        catalogue="LitmusChaos node-cpu-hog; Chaos Mesh stress-chaos (cpu)",
        findings=(
            (
                "top: a runaway process (not an OpenStack service) has used ~90% of the CPU since"
                " t={onset}s"
            ),
        ),
        hosted_findings=(
            (
                "this process gets little CPU: host {host} is saturated by a process outside "
                "OpenStack"
            ),
        ),
    )

    clears_by = ("kill",)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        hosted = self.hosted(state)
        mods.cap_mult[hosted] *= 0.3
        mods.cpu_add[self.node] += 0.9
        mods.lat_add[hosted] += 0.05

    def runbook(self, state: SimState) -> list[RunbookStep]:
        return [("KillProcess", (state.name(self.node),))]

    def takes_kill(self, node: int) -> bool:
        # KillProcess on the host kills the runaway process, not a service
        return node == self.node
