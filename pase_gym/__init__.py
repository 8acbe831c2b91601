"""pase-gym: a seeded, fast, OpenStack-shaped simulated cloud for self-healing agents."""

from __future__ import annotations

from pase_gym.errors import PaseGymError, PlanError, ScenarioError, SimulationError, TopologyError
from pase_gym.sim.faults import list_faults
from pase_gym.sim.primitives import list_primitives

__version__ = "0.1.0"

__all__ = [
    "PaseGymError",
    "PlanError",
    "ScenarioError",
    "SimulationError",
    "TopologyError",
    "__version__",
    "list_faults",
    "list_primitives",
]
