"""Certificate expiry (security family): The TLS certificate of an endpoint expires; every client
handshake fails.

Runbook: Renew the certificate, then restart the service to load it. Source: cert-manager
incidents; os-faults (service).
"""

from __future__ import annotations

from pase_gym.sim.faults.base import ActiveFault, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class CertificateExpiry(ActiveFault):
    spec = FaultSpec(
        name="certificate_expiry",
        family="security",
        target="tls_service",
        description="The TLS certificate of an endpoint expires; every client handshake fails.",
        signature=(
            _T("node", "error_rate", ">", 0.9),
            _T("callers", "error_rate", ">", 0.1),
        ),
        symptoms=("auth",),
        recovery="Renew the certificate, then restart the service to load it.",
        catalogue="cert-manager incidents; os-faults (service)",
        findings=("openssl x509 -enddate: the TLS certificate expired at t={onset}s",),
    )

    clears_by = ("renew_cert", "restart")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.err_add[self.node] = 1.0
        mods.cpu_add[self.node] -= 0.05

    def runbook(self, state: SimState) -> list[RunbookStep]:
        name = state.name(self.node)
        return [("RenewCertificate", (name,)), ("Restart", (name,))]
