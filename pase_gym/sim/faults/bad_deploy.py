"""Bad deploy (deploy family): A new release of the service fails part of its requests.

Runbook: Roll the release back. Source: os-faults (deploy); post-mortems of bad releases.
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class BadDeploy(ActiveFault):
    spec = FaultSpec(
        name="bad_deploy",
        family="deploy",
        target="service",
        description="A new release of the service fails part of its requests.",
        signature=(_T("node", "error_rate", ">", 0.2),),
        symptoms=("exited", "stack_trace", "auth"),
        recovery="Roll the release back.",
        catalogue="os-faults (deploy); post-mortems of bad releases",
    )

    clears_by = ("rollback", "restart")
    error = 0.45

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.err_add[self.node] = max(mods.err_add[self.node], self.error)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("Rollback", (name,)), ("Restart", (name,))]
