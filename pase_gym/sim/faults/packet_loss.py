"""Packet loss (network family): A host's link drops and delays packets; retransmissions slow
everything on it.

Runbook: Fail the host over to its standby link. Source: Chaos Mesh network-chaos (loss, delay);
LitmusChaos network-loss.
"""

from __future__ import annotations

from typing import ClassVar

from pase_gym.sim.faults.base import ActiveFault, FaultParam, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class PacketLoss(ActiveFault):
    spec = FaultSpec(
        name="packet_loss",
        family="network",
        target="host",
        description=(
            "A host's link drops and delays packets; retransmissions slow everything on it."
        ),
        signature=(
            _T("node", "network", ">", 0.3),
            _T("callers", "latency", ">", 0.5),
        ),
        symptoms=("slow", "unreachable"),
        recovery="Fail the host over to its standby link.",
        catalogue="Chaos Mesh network-chaos (loss, delay); LitmusChaos network-loss",
        findings=(
            (
                "ip -s link: the uplink has dropped a large share of its packets since "
                "t={onset}s; TCP retransmissions are high"
            ),
        ),
        hosted_findings=(
            (
                "this process's connections retransmit heavily: the link of host {host} drops"
                " packets"
            ),
        ),
    )
    PARAMS: ClassVar[dict[str, FaultParam]] = {
        "loss": FaultParam(0.3, 0.05, 1.0, "share of packets dropped on the node's links")
    }

    clears_by = ("failover",)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        hosted = self.hosted(state)
        loss = self.param("loss")
        mods.err_add[hosted] = 1.0 - (1.0 - mods.err_add[hosted]) * (1.0 - 0.5 * loss)
        mods.lat_add[hosted] += 1.5 * loss
        mods.net_add[hosted] += 0.6

    def runbook(self, state: SimState) -> list[RunbookStep]:
        return [("Failover", (state.name(self.node),))]
