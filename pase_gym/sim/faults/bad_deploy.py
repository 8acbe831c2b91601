"""Bad deploy (deploy family): A new release of the service fails part of its requests.

Runbook: Roll the release back. Source: os-faults (deploy); post-mortems of bad releases.
"""

from __future__ import annotations

from typing import ClassVar

from pase_gym.sim.faults.base import (
    ActiveFault,
    FaultParam,
    FaultSpec,
    RunbookStep,
    SignatureTerm,
)
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
        findings=(
            (
                "a new release was deployed at t={onset}s (the previous one is kept for "
                "rollback); requests fail with an unhandled exception in the new code"
            ),
        ),
    )

    clears_by = ("rollback", "restart")
    PARAMS: ClassVar[dict[str, FaultParam]] = {
        "error": FaultParam(0.45, 0.05, 1.0, "share of the node's requests that fail")
    }

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.err_add[self.node] = max(mods.err_add[self.node], self.param("error"))

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("Rollback", (name,)), ("Restart", (name,))]
