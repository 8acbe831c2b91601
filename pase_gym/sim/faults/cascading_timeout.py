"""Cascading timeout (cascade family): The service's worker pool jams; callers time out and retry,
and the retries keep it saturated.

Runbook: Add replicas to absorb the retry storm, then restart the jammed one. Source: Chaos Mesh
http-chaos (delay); retry-storm post-mortems.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultParam, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.logs import symptom_line
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class CascadingTimeout(ActiveFault):
    """A jammed worker pool; restarting it only helps once the retry storm has room.

    After the restart, the callers replay the requests they queued while the pool was jammed:
    a storm of ``storm`` x (desired replicas) x (replica capacity) extra requests per tick for
    ``STORM_TICKS``, spread over the replicas in service. If it pushes the restarted replica
    past 85% utilisation, the pool jams again; with enough replicas it rides the storm out.
    """

    spec = FaultSpec(
        name="cascading_timeout",
        family="cascade",
        target="replicated_service",
        description=(
            "The service's worker pool jams; callers time out and retry, and the retries keep it "
            "saturated."
        ),
        signature=(
            _T("node", "latency", ">", 1.5),
            _T("callers", "error_rate", ">", 0.1),
        ),
        symptoms=("slow",),
        recovery="Add replicas to absorb the retry storm, then restart the jammed one.",
        catalogue="Chaos Mesh http-chaos (delay); retry-storm post-mortems",
        findings=(
            (
                "the worker pool has been exhausted since t={onset}s: every greenthread waits on "
                "a call; callers retry what times out"
            ),
        ),
    )
    PARAMS: ClassVar[dict[str, FaultParam]] = {
        "storm": FaultParam(
            0.45, 0.1, 2.0, "retry load after a restart, as a share of the group's capacity"
        )
    }

    STORM_TICKS = 30

    restarted_at = 0.0  # the tick of the restart that started the watch (set then)

    def inject(self, state: SimState) -> None:
        super().inject(state)
        self.phase = "jammed"

    @property
    def active(self) -> bool:
        return self.phase in ("active", "jammed", "watching")

    def _members(self, state: SimState) -> np.ndarray:
        t = state.topo
        return t.group_members[int(t.group_of[self.node])]

    def apply(self, state: SimState, mods: Modifiers) -> None:
        if self.phase == "jammed":
            mods.cap_mult[self.node] *= 0.15
            mods.lat_add[self.node] += 2.0
        elif self.phase == "watching":
            members = self._members(state)
            serving = members[state.active[members] & state.in_service()[members]]
            desired = int(state.desired[int(state.topo.group_of[self.node])])
            storm = self.param("storm") * desired * float(np.max(state.cap0[members]))
            mods.load_add[serving] += storm / max(serving.size, 1)

    def advance(self, state: SimState, dt: int) -> None:
        if self.phase == "watching" and state.evaluated_at > self.restarted_at:
            # judged on an evaluation made after the restart, when the node serves again
            if state.util[self.node] > 0.85 and state.works[self.node]:
                self.phase = "jammed"
                symptom_line(state, self.node, "slow")
            elif state.tick - self.restarted_at > self.STORM_TICKS:
                self.resolve(state)

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if node == self.node and effect == "restart" and self.phase == "jammed":
            self.phase = "watching"
            self.restarted_at = float(state.tick)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        t = state.topo
        group = ROLE_NAMES[int(t.role[self.node])]
        gid = t.group_index[group]
        spare = int(np.count_nonzero(~state.active[t.group_members[gid]]))
        steps: list[RunbookStep] = [("ScaleOut", (group, min(2, spare)))] if spare else []
        return [*steps, ("Restart", (state.name(self.node),))]
