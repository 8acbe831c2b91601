"""The act-once detectors (GCN-FR, DETR-FD): one recovery action per diagnosed fault, read
off the public observation; their loop (:class:`ActOnce`); their training data
(:func:`snapshots`).

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pase_gym.sim.plan import Call, Diagnosis, Plan
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


WAIT = Plan((Call("Wait", (10,)),))


class ActOnce:
    """The act-once loop of a detector (GCN-FR, DETR-FD): subclasses give :meth:`predict`.

    ``Wait(10)`` while no alarm is raised; at the first alarmed step, ``Diagnose(type, node)``
    with the runbook's first step (:func:`action_for`); then monitoring. If alarms are still
    raised :attr:`FOLLOW_UP_AFTER` simulated seconds later it predicts again and, only if the
    prediction changed (a new reading of the incident), sends the first step for it, once.
    It never chains a runbook's second step. Deterministic: ``seed`` changes nothing.
    """

    FOLLOW_UP_AFTER = 60  # simulated seconds after the first action before a second one

    def predict(self, observation: dict[str, Any], info: dict[str, Any]) -> tuple[str, str]:
        """(fault type, root-cause node name) from the observation alone."""
        raise NotImplementedError

    def reset(self, seed: int) -> None:
        """Forget the episode (the agent draws no random numbers: ``seed`` changes nothing)."""
        self._first: tuple[str, str, Call | None] | None = None  # (type, node, action)
        self._first_tick = 0
        self._steps = 0
        self._follow_up_done = False
        self.last_prediction: tuple[str, str] | None = None

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        self._steps += 1
        tick = int(info.get("tick", 20 * self._steps))
        alarmed = float(np.asarray(observation["alarms"]).sum()) > 0
        if self._first is None:
            if not alarmed:
                return WAIT
            fault, node = self.predict(observation, info)
            call = action_for(fault, node, observation, info)
            self._first, self._first_tick = (fault, node, call), tick
            return Plan((call,) if call else (), Diagnosis(fault, node))
        if self._follow_up_done or not alarmed or tick - self._first_tick < self.FOLLOW_UP_AFTER:
            return WAIT
        self._follow_up_done = True
        fault, node = self.predict(observation, info)
        if (fault, node) == self._first[:2]:
            return WAIT  # one action per reading of the incident; no runbook chaining
        call = action_for(fault, node, observation, info)
        if call is None or call == self._first[2]:
            return WAIT
        return Plan((call,))


@dataclass(frozen=True)
class Snapshot:
    """One labelled observation of an incident: what the detectors train on."""

    obs: dict[str, Any]
    faults: list[tuple[str, int | None]]  # each active fault: (type, slot; None if unprovisioned)
    seed: int
    scenario: str
    size: str  # "native" or the augmented cloud size


def snapshots(
    scenarios: Sequence[str],
    episodes: int,
    snapshots_per_episode: int,
    seed: int,
    augment_size: str | None = "small",
    progress: bool = True,
    who: str = "a detector",
) -> list[Snapshot]:
    """Labelled observations of the train split, for the act-once detectors' training.

    Every scenario is run with ``start="incident"`` for episode seeds ``0..episodes-1`` at its
    own cloud size and, where that is not ``augment_size``, also at that size (the test
    clouds'). Each episode gives up to ``snapshots_per_episode`` observations a few seconds
    apart (a ``Wait`` of 1 to 10 s, drawn from ``seed``, plus the env's monitoring), those with
    at least one alarm only. The labels are the env's ground truth (the evaluation side, read
    here for training labels only).

    Raises:
        ValueError: a scenario is not of the train split (``who`` names the trainer).
    """
    import gymnasium as gym
    from tqdm import tqdm

    import pase_gym  # noqa: F401  (registers the env ids)
    from pase_gym.scenarios import load_scenario

    rng = np.random.default_rng(seed)
    runs: list[tuple[str, str | None]] = []
    for name in scenarios:
        spec = load_scenario(name)
        if spec.split != "train":
            raise ValueError(
                f"{name} is a {spec.split}-split scenario: {who} trains on the train split only"
            )
        runs.append((name, None))
        if augment_size and spec.topology.nodes != augment_size:
            runs.append((name, augment_size))
    out: list[Snapshot] = []
    bar = tqdm(runs, desc="collect", unit="run", disable=not progress)
    for name, size in bar:
        env = gym.make("PASE-OpenStack-v4", scenario=name, nodes=size, start="incident")
        base: Any = env.unwrapped  # the evaluation side: training labels only
        for ep in range(episodes):
            obs, info = env.reset(seed=ep)
            for k in range(snapshots_per_episode):
                if k:
                    wait = Plan((Call("Wait", (int(rng.integers(1, 11)),)),))
                    obs, _, terminated, truncated, info = env.step(wait)
                    if terminated or truncated:
                        break
                if obs["alarms"].sum() == 0:
                    continue
                truth = base.ground_truth()
                active = [t for t in truth if t["phase"] != "resolved"] or truth
                by_name = {n: s for s, n in names_by_slot(obs, info).items()}
                faults: list[tuple[str, int | None]] = [
                    (str(t["fault_type"]), by_name.get(t["node"])) for t in active
                ]
                out.append(Snapshot(obs, faults, ep, name, size or "native"))
        env.close()
        bar.set_postfix_str(f"{name}{'@' + size if size else ''} ({len(out)} snapshots)")
    return out
