"""Dns failure (network family): A host's resolver config drifts; services there cannot resolve
their peers and cached bad answers linger.

Runbook: Roll the host's config back, then flush its resolver cache. Source: Chaos Mesh dns-
chaos; LitmusChaos pod-dns-error.
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class DnsFailure(ActiveFault):
    """Resolver config drift; after the rollback, cached bad answers linger until flushed."""

    spec = FaultSpec(
        name="dns_failure",
        family="network",
        target="host",
        description=(
            "A host's resolver config drifts; services there cannot resolve their peers and cached"
            " bad answers linger."
        ),
        signature=(
            _T("hosted", "error_rate", ">", 0.5),
            _T("node", "network", ">", 0.02),
        ),
        symptoms=("unreachable",),
        recovery="Roll the host's config back, then flush its resolver cache.",
        catalogue="Chaos Mesh dns-chaos; LitmusChaos pod-dns-error",
        findings=(
            (
                "/etc/resolv.conf changed at t={onset}s (the previous version is kept); lookups "
                "of peers return SERVFAIL; the local resolver cache holds bad answers"
            ),
        ),
        hosted_findings=(
            (
                "getaddrinfo: this process cannot resolve its peers' names: the resolver of "
                "host {host} answers SERVFAIL"
            ),
        ),
    )

    clears_by = ("rollback", "flush_cache")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        hosted = self.hosted(state)
        procs = hosted[state.topo.is_process[hosted]]
        mods.err_add[procs] = 1.0 - (1.0 - mods.err_add[procs]) * 0.3

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("Rollback", (name,)), ("FlushCache", (name,))]
