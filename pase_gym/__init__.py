"""pase-gym: a seeded, fast, OpenStack-shaped simulated cloud for self-healing agents."""

from __future__ import annotations

from pase_gym.env import ENV_IDS, register_envs
from pase_gym.errors import PaseGymError, PlanError, ScenarioError, SimulationError, TopologyError
from pase_gym.scenarios import list_scenarios, load_scenario
from pase_gym.sim.faults import list_faults
from pase_gym.sim.plan import Call, Diagnosis, Plan, parse_plan
from pase_gym.sim.primitives import list_primitives

__version__ = "0.1.0"

register_envs()

__all__ = [
    "ENV_IDS",
    "Call",
    "Diagnosis",
    "Episode",
    "PaseGymError",
    "Plan",
    "PlanError",
    "ScenarioError",
    "SimulationError",
    "TopologyError",
    "__version__",
    "list_faults",
    "list_primitives",
    "list_scenarios",
    "load_scenario",
    "parse_plan",
]


def __getattr__(name: str) -> object:
    # Episode pulls in the whole simulator; import it on first use.
    if name == "Episode":
        from pase_gym.episode import Episode

        return Episode
    raise AttributeError(f"module 'pase_gym' has no attribute {name!r}")
