"""Network partition (network family): A host's uplink fails: nothing on it can be reached;
clustered services on it fall out of their cluster.

Runbook: Fail the host over to its standby link, then restart clustered services on it so they
rejoin. Source: os-faults network partition; Chaos Mesh network-chaos (partition).
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class NetworkPartition(ActiveFault):
    """A host's uplink fails; clustered services on it desync and need a restart after."""

    spec = FaultSpec(
        name="network_partition",
        family="network",
        target="host",
        description=(
            "A host's uplink fails: nothing on it can be reached; clustered services on it fall "
            "out of their cluster."
        ),
        signature=(
            _T("node", "network", "<", 0.05),
            _T("callers", "error_rate", ">", 0.05),
        ),
        symptoms=("unreachable",),
        recovery=(
            "Fail the host over to its standby link, then restart clustered services on it so they"
            " rejoin."
        ),
        catalogue="os-faults network partition; Chaos Mesh network-chaos (partition)",
        findings=(
            (
                "BMC: chassis power on; ip link: the uplink has been NO-CARRIER since t={onset}s;"
                " the standby link is up"
            ),
        ),
        hosted_findings=("this process cannot reach its peers: host {host} has lost its uplink",),
    )

    clears_by = ("failover",)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.reach[self.node] = 0.0

    def inject(self, state: SimState) -> None:
        super().inject(state)
        hosted = self.hosted(state)
        state.desynced[hosted[state.topo.clustered[hosted]]] = True

    def runbook(self, state: SimState) -> list[RunbookStep]:
        t = state.topo
        hosted = t.hosted_on(self.node)
        clustered = hosted[t.clustered[hosted] & state.active[hosted]]
        steps: list[RunbookStep] = [("Failover", (state.name(self.node),))]
        return steps + [("Restart", (state.name(int(c)),)) for c in clustered]
