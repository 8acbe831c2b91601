"""The floor: a uniformly random legal one-call plan at every step."""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.plan import Call, Plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.roles import SCALABLE_ROLES

_ACTIONS = (
    "Restart",
    "KillProcess",
    "Isolate",
    "Rollback",
    "Drain",
    "Failover",
    "CleanDisk",
    "RenewCertificate",
    "FlushCache",
    "Throttle",
    "ScaleOut",
    "Wait",
)
_GROUPS = SCALABLE_ROLES


class Agent:
    """Picks a primitive and its arguments uniformly at random (nodes from the alarms and
    the description's inventory: any node named in ``info['nodes']`` if present, else those in
    the alarms, else a Wait)."""

    name = "random"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        nodes = list(info.get("node_names") or [])
        name = _ACTIONS[int(self.rng.integers(len(_ACTIONS)))]
        spec = PRIMITIVES[name]
        args: list[str | int] = []
        for param in spec.params:
            if param.type is ParamType.NODE:
                if not nodes:
                    return Plan((Call("Wait", (10,)),))
                args.append(nodes[int(self.rng.integers(len(nodes)))])
            elif param.type is ParamType.GROUP:
                args.append(_GROUPS[int(self.rng.integers(len(_GROUPS)))])
            elif param.type is ParamType.INT:
                args.append(int(self.rng.integers(param.lo, min(param.hi, param.lo + 30) + 1)))
            else:
                args.append(param.choices[int(self.rng.integers(len(param.choices)))])
        return Plan((Call(name, tuple(args)),))
