"""Workload profiles: the request mix that flows through the cloud.

A profile gives request rates (per tick, per 100 active instances) for each request type; each
request type visits a set of roles a number of times (:data:`pase_gym.sim.roles.REQUEST_TYPES`).
The product is the demand each role sees per tick before retries and noise.
"""

from __future__ import annotations

import numpy as np

from pase_gym.errors import TopologyError
from pase_gym.sim.roles import PROFILE_ALIASES, PROFILES, REQUEST_TYPES, ROLE_INDEX, ROLE_NAMES

TENANT_LOAD = 1.0  # requests per tick each instance serves its tenant (data plane)


def resolve_profile(name: str) -> str:
    """Canonical profile name for ``name`` (``DEPL``/``NET``/``STO`` aliases accepted)."""
    canonical = PROFILE_ALIASES.get(name, name)
    if canonical not in PROFILES:
        choices = ", ".join([*PROFILES, *PROFILE_ALIASES])
        raise TopologyError(f"unknown workload profile {name!r}: expected one of {choices}")
    return canonical


def role_demand(profile: str, instances: int, intensity: float = 1.0) -> np.ndarray:
    """Requests per tick that each role receives under ``profile``.

    Args:
        profile: a profile name (see :data:`pase_gym.sim.roles.PROFILES`).
        instances: number of active tenant instances (the demand scales with it).
        intensity: a multiplier on every rate.

    Returns:
        float64 array indexed like :data:`ROLE_NAMES`.
    """
    rates = PROFILES[resolve_profile(profile)]
    demand = np.zeros(len(ROLE_NAMES))
    scale = intensity * max(instances, 1) / 100.0
    for request, rate in rates.items():
        for role, visits in REQUEST_TYPES[request].items():
            demand[ROLE_INDEX[role]] += rate * visits * scale
    demand[ROLE_INDEX["instance"]] = TENANT_LOAD * max(instances, 1)
    demand[ROLE_INDEX["tenant-network"]] = TENANT_LOAD * max(instances, 1)
    demand[ROLE_INDEX["volume"]] = 0.5 * TENANT_LOAD * max(instances, 1)
    return demand
