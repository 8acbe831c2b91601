"""The scripted expert: probe along the alarms' dependency path, then the catalogue's runbook.

What a competent operator does with the service view of env v3. When an incident first
raises an alarm it inspects one node at a time (``Inspect(node)``, 5 s each), at most
``MAX_PROBES`` nodes, in the order :func:`pase_gym.harness.expert.next_probe` gives (alarmed
hosts, tenants burning CPU, the bottom of the alarm path, common dependencies, a host many
alarmed processes share; a replica the last report shows in the worst health first). As soon
as a report names what is wrong (:func:`pase_gym.harness.expert.read_findings`) it sends
``Diagnose(fault, root)`` with the catalogue's runbook for that fault type, whole (two or three
steps where the catalogue says so), then monitors with ``Wait(10)``. If alarms are still
raised ``RETRY_AFTER`` seconds later it probes again (a second round), at most ``MAX_ROUNDS``
rounds per incident. It reads the observation and ``info`` only (the alarms, the public
topology, the probe reports), never the ground truth. Fully deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.harness.expert import (
    MAX_PROBES,
    logged_nodes,
    next_probe,
    public_topology,
    read_findings,
)
from pase_gym.sim.plan import Plan, parse_plan
from pase_gym.sim.roles import ROLE_NAMES, ROLES

WAIT = "Wait(10)"
RETRY_AFTER = 60  # simulated seconds after a runbook before probing again
MAX_ROUNDS = 2  # probing rounds per incident
SCALE_OUT = 2  # replicas a ScaleOut asks for

RUNBOOKS: dict[str, str] = {
    "process_crash": "Restart({n})",
    "process_hang": "KillProcess({n}); Restart({n})",
    "memory_leak": "Rollback({n}); Restart({n})",
    "bad_deploy": "Rollback({n}); Restart({n})",
    "config_drift": "Rollback({n}); Restart({n})",
    "cpu_hog": "KillProcess({n})",
    "disk_full": "CleanDisk({n})",
    "network_partition": "Failover({n})",
    "packet_loss": "Failover({n})",
    "dns_failure": "Rollback({n}); FlushCache({n})",
    "host_power_loss": "Isolate({n}); ScaleOut(compute, 1)",
    "noisy_neighbour": "Throttle({n}, 40)",
    "queue_backlog": f"ScaleOut(nova-conductor, {SCALE_OUT})",
    "db_lock_contention": "Failover({n}); Restart({n})",
    "db_replica_failure": "Isolate({n}); Restart({n})",
    "cascading_timeout": f"ScaleOut({{role}}, {SCALE_OUT}); Restart({{n}})",
    "certificate_expiry": "RenewCertificate({n}); Restart({n})",
    "cpu_memory_deadlock": "KillProcess({n}); ResizeResource({n}, memory, 1); Restart({n})",
}
"""The catalogue's runbook per fault type; ``{n}`` is the root the findings name."""
_STOPS_ON_FULL_DISK = frozenset(
    n for n, r in ROLES.items() if r.writes_disk and r.kind.name in ("DATABASE", "QUEUE")
)
_CLUSTERED = frozenset(n for n, r in ROLES.items() if r.clustered)


class Agent:
    """Probe, read the findings, run the runbook (see the module docstring)."""

    name = "prober"

    def __init__(self) -> None:
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Start a new episode (nothing random: the seed is not needed)."""
        self._anchor: tuple[dict[str, Any], dict[str, Any]] | None = None  # first-alarm view
        self._reports: list[dict[str, Any]] = []
        self._rounds = 0
        self._acted_at: int | None = None
        self._diagnosed = False
        self._followup: str | None = None

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        """Probe, act on a finding, or monitor."""
        tick = int(info.get("tick", 0))
        if self._anchor is not None:  # a probing round is under way
            self._reports.extend(info.get("probes") or [])
            found = read_findings(info.get("probes") or [])
            if found is not None:
                return self._runbook(*found, observation, info, tick)
            return self._probe(observation, info)
        if self._followup is not None:
            plan, self._followup = self._followup, None
            return parse_plan(plan)
        if not info.get("alarms"):
            if self._acted_at is None or tick - self._acted_at >= RETRY_AFTER:
                self._rounds, self._acted_at, self._diagnosed = 0, None, False
            return parse_plan(WAIT)
        waited = self._acted_at is None or tick - self._acted_at >= RETRY_AFTER
        if not waited or self._rounds >= MAX_ROUNDS:
            return parse_plan(WAIT)
        self._rounds += 1
        self._anchor = (observation, info)
        self._reports = []
        return self._probe(observation, info)

    # -- probing and acting ------------------------------------------------------------------
    def _probe(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        assert self._anchor is not None
        obs0, info0 = self._anchor
        node = None
        if len(self._reports) < MAX_PROBES:
            names = info0.get("slot_names") or info0["node_names"]
            node = next_probe(
                obs0, names, self._reports, logged_nodes(str(info0.get("description", "")))
            )
        if node is None:  # nothing found: monitor, and try again later
            self._anchor = None
            self._acted_at = int(info.get("tick", 0))
            return parse_plan(WAIT)
        return parse_plan(f"Inspect({node})")

    def _runbook(
        self, fault: str, root: str, observation: dict[str, Any], info: dict[str, Any], tick: int
    ) -> Plan:
        self._anchor = None
        self._acted_at = tick
        names = list(info.get("slot_names") or info["node_names"])
        roles = public_topology(observation)[1]
        role = ROLE_NAMES[int(roles[names.index(root)])] if root in names else ""
        text = RUNBOOKS[fault].format(n=root, role=role)
        hosted = _hosted(observation, names, root)
        if fault == "disk_full":  # restart the database or broker the full disk stopped
            text += "".join(f"; Restart({p})" for p, r in hosted if r in _STOPS_ON_FULL_DISK)
        elif fault == "network_partition":  # clustered services rejoin after a restart
            text += "".join(f"; Restart({p})" for p, r in hosted if r in _CLUSTERED)
        elif fault == "host_power_loss":
            self._followup = _evacuation(observation, names, root)
        prefix = "" if self._diagnosed else f"Diagnose({fault}, {root}); "
        self._diagnosed = True
        return parse_plan(prefix + text)


def _hosted(observation: dict[str, Any], names: list[str], host: str) -> list[tuple[str, str]]:
    """(name, role) of the provisioned nodes that run on ``host`` (the public topology)."""
    if host not in names:
        return []
    h = names.index(host)
    mask, roles, _, runs = public_topology(observation)
    src = runs[0][runs[1] == h]
    return [(names[int(i)], ROLE_NAMES[int(roles[int(i)])]) for i in src if mask[int(i)]]


def _evacuation(observation: dict[str, Any], names: list[str], host: str) -> str | None:
    """Migrate the dead host's instances to the live compute hosts with the fewest (the
    public topology's placement), spread evenly; ``None`` when there is nothing to move."""
    mask, roles, _, runs = public_topology(observation)
    compute = ROLE_NAMES.index("compute")
    placed = runs[:, roles[runs[0]] == ROLE_NAMES.index("instance")]  # instance -> host
    load = np.bincount(placed[1], minlength=mask.size)
    h = names.index(host)
    moving = [int(i) for i in placed[0][placed[1] == h] if mask[int(i)]]
    hosts = [int(i) for i in np.flatnonzero(mask & (roles == compute)) if int(i) != h]
    if not moving or not hosts:
        return None
    calls = []
    for inst in moving:
        dest = min(hosts, key=lambda i: (load[i], i))
        load[dest] += 1
        calls.append(f"Migrate({names[inst]}, {names[dest]})")
    return "; ".join(calls)
