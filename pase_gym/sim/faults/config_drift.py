"""Config drift (deploy family): A config value drifts (wrong broker credentials); the service
cannot reach a dependency. The old config only applies after a restart.

Runbook: Roll the config back, then restart the service. Source: configuration drift incidents;
LitmusChaos (config).
"""

from __future__ import annotations

from typing import ClassVar

from pase_gym.sim.faults.bad_deploy import BadDeploy
from pase_gym.sim.faults.base import FaultParam, FaultSpec, SignatureTerm
from pase_gym.sim.faults.registry import register_fault

_T = SignatureTerm


@register_fault
class ConfigDrift(BadDeploy):
    spec = FaultSpec(
        name="config_drift",
        family="deploy",
        target="service",
        description=(
            "A config value drifts (wrong broker credentials); the service cannot reach a "
            "dependency. The old config only applies after a restart."
        ),
        signature=(_T("node", "error_rate", ">", 0.2),),
        symptoms=("stack_trace", "auth"),
        recovery="Roll the config back, then restart the service.",
        catalogue="configuration drift incidents; LitmusChaos (config)",
        findings=(
            (
                "/etc/{node}/{node}.conf changed at t={onset}s: its transport_url credentials "
                "differ from the broker's; the previous config is kept for rollback"
            ),
        ),
    )

    PARAMS: ClassVar[dict[str, FaultParam]] = {
        "error": FaultParam(0.9, 0.05, 1.0, "share of the node's requests that fail")
    }
