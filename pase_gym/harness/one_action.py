"""One recovery action per diagnosed fault, read off the public observation.

The detectors that act but do not plan (GCN-FR, Deformable DETR-FD) name a fault type and a
root node, then send the first step of the catalogue's runbook for that type, aimed with what
the observation shows: the host a process ``runs_on`` (from the edges), the group a node
belongs to (its role), the spare replicas a ``ScaleOut`` can bring up (laid-out, unprovisioned
slots of the group). :data:`ACTIONS` also keeps each runbook's second step, for reference: an
agent that acts once per incident does not take it.

Reads only the observation and ``info`` (``node_mask``, ``nodes``, the edges,
``info["node_names"]``); never the ground truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.plan import Call
from pase_gym.sim.roles import ROLE_NAMES, ROLES, Kind
from pase_gym.sim.topology import EDGE_TYPES

N_ROLES = len(ROLE_NAMES)
RUNS_ON = EDGE_TYPES.index("runs_on")
SCALE_OUT = 2  # replicas a ScaleOut asks for (fewer if the group has fewer spares)
THROTTLE = 40  # percent of intake a Throttle allows

ACTIONS: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] = {
    "process_crash": (("Restart", "node"), None),
    "process_hang": (("KillProcess", "node"), ("Restart", "node")),
    "memory_leak": (("Rollback", "node"), ("Restart", "node")),
    "bad_deploy": (("Rollback", "node"), ("Restart", "node")),
    "config_drift": (("Rollback", "node"), ("Restart", "node")),
    "cpu_hog": (("KillProcess", "host"), None),
    "disk_full": (("CleanDisk", "host"), None),
    "network_partition": (("Failover", "host"), None),
    "packet_loss": (("Failover", "host"), None),
    "dns_failure": (("Rollback", "host"), ("FlushCache", "host")),
    "queue_backlog": (("ScaleOut", "nova-conductor"), None),
    "db_lock_contention": (("Failover", "node"), ("Restart", "node")),
    "db_replica_failure": (("Isolate", "node"), ("Restart", "node")),
    "host_power_loss": (("Isolate", "host"), ("ScaleOut", "compute")),
    "noisy_neighbour": (("Throttle", "node"), None),
    "cascading_timeout": (("ScaleOut", "group"), ("Restart", "node")),
}
"""fault type -> (first action, second action); each a (primitive, target) template whose
target is ``node`` (the named root), ``host`` (the host it runs on, itself if it is a host) or
a fixed group name (``group``: the root's own group)."""


def action_for(
    fault: str, node: str, obs: dict[str, Any], info: dict[str, Any], follow_up: bool = False
) -> Call | None:
    """The runbook's first (or, with ``follow_up``, second) step for ``fault`` at ``node``;
    ``None`` where the runbook has no such step or a ``ScaleOut`` has no spare replica."""
    first, second = ACTIONS[fault]
    template = second if follow_up else first
    if template is None:
        return None
    primitive, target = template
    names = names_by_slot(obs, info)
    slot = {n: s for s, n in names.items()}[node]
    nodes = np.asarray(obs["nodes"])
    if primitive == "ScaleOut":
        group = role_of(nodes, slot) if target == "group" else target
        spare = spares(nodes, group)
        if spare == 0:
            return Call("Restart", (node,)) if fault == "cascading_timeout" else None
        return Call("ScaleOut", (group, min(SCALE_OUT, spare)))
    name = names.get(host_of(obs, slot), node) if target == "host" else node
    if primitive == "Throttle":
        return Call("Throttle", (name, THROTTLE))
    return Call(primitive, (name,))


def names_by_slot(obs: dict[str, Any], info: dict[str, Any]) -> dict[int, str]:
    """Slot -> node name: ``info["node_names"]`` lists the provisioned slots in order."""
    slots = np.flatnonzero(np.asarray(obs["node_mask"]) > 0)
    return {int(s): n for s, n in zip(slots, info["node_names"], strict=True)}


def role_of(nodes: np.ndarray, slot: int) -> str:
    """The role of ``slot``, from the role one-hot of ``obs["nodes"]``."""
    return ROLE_NAMES[int(np.argmax(nodes[slot, :N_ROLES]))]


def spares(nodes: np.ndarray, group: str) -> int:
    """Laid-out but unprovisioned replicas of ``group`` (what ScaleOut can add)."""
    role = nodes[:, ROLE_NAMES.index(group)] > 0
    return int(np.count_nonzero(role & (nodes[:, N_ROLES] == 0)))


def host_of(obs: dict[str, Any], slot: int) -> int:
    """The host ``slot`` runs on (itself if it is a host), from the ``runs_on`` edges."""
    nodes = np.asarray(obs["nodes"])
    if ROLES[role_of(nodes, slot)].kind == Kind.HOST:
        return slot
    index = np.asarray(obs["edge_index"])
    keep = (np.asarray(obs["edge_mask"]) > 0) & (np.asarray(obs["edge_type"]) == RUNS_ON)
    hosts = index[1, keep & (index[0] == slot)]
    return int(hosts[0]) if hosts.size else slot
