"""A scripted diagnostic expert: where to probe, and what the probes' findings mean.

The expert is what a competent operator does with the service view of env v3: at the first
alarm it picks at most :data:`MAX_PROBES` nodes along the alarms' dependency path and runs
``Inspect`` on them, then names the fault from what the tools found there. It reads the
observation and ``info`` only (the alarms, the public topology in ``nodes`` and the edges, the
probe reports); never the ground truth. The hardness report measures it
(:func:`pase_gym.harness.hardness.expert_f1`: can diagnosis be done at all, with a few probes?)
and the ``prober`` agent in ``agents/prober`` acts on it.

**Where to probe** (:func:`probe_candidates`), in this order, each node once:

1. alarmed hosts (a host that does not answer first);
2. tenant resources burning CPU (a tenant alarmed for anything else is a victim);
3. alarmed processes at the *bottom* of the alarm path: none of the services they depend on
   is alarmed (a victim alarms because of its callee; the root's callees are fine), those whose
   own health check failed first (``NodeDown``), then the most alarmed;
4. the host most of the alarmed processes share, if two or more share one.

**What a finding means** (:data:`FINDINGS`): a keyword of the tool output in the report (the
wording of ``systemctl``, ``ps``, ``df``, the BMC, ``rabbitmqctl``, the SQL status and so on)
and the fault type it stands for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pase_gym.sim.roles import ROLE_NAMES, ROLES, Kind
from pase_gym.sim.signals import ALARM_RULES
from pase_gym.sim.topology import EDGE_TYPES

MAX_PROBES = 3
DEPENDS_ON = EDGE_TYPES.index("depends_on")
RUNS_ON = EDGE_TYPES.index("runs_on")
NODE_DOWN = [rule[3] for rule in ALARM_RULES].index("NodeDown")
HIGH_CPU = [rule[3] for rule in ALARM_RULES].index("HighCPU")
KIND_OF_ROLE = np.array([int(ROLES[name].kind) for name in ROLE_NAMES])

FINDINGS: tuple[tuple[str, str], ...] = (
    ("chassis power off", "host_power_loss"),
    ("NO-CARRIER", "network_partition"),
    ("has lost its uplink", "network_partition"),
    ("dropped a large share of its packets", "packet_loss"),
    ("drops packets", "packet_loss"),
    ("resolv.conf changed", "dns_failure"),
    ("answers SERVFAIL", "dns_failure"),
    ("df: / is", "disk_full"),
    ("No space left on device (host", "disk_full"),
    ("runaway process", "cpu_hog"),
    ("saturated by a process outside OpenStack", "cpu_hog"),
    ("virsh domstats", "noisy_neighbour"),
    ("list_queues", "queue_backlog"),
    ("INNODB STATUS", "db_lock_contention"),
    ("wsrep_local_state_comment", "db_replica_failure"),
    ("worker pool has been exhausted", "cascading_timeout"),
    ("RSS has risen", "memory_leak"),
    ("new release was deployed", "bad_deploy"),
    (".conf changed at", "config_drift"),
    ("inactive (dead)", "process_crash"),
    ("state D (uninterruptible sleep)", "process_hang"),
    ("certificate expired", "certificate_expiry"),
    ("spin on a lock", "cpu_memory_deadlock"),
)
"""(keyword in a probe report, the fault type it stands for), checked in this order. A
finding about a process's host (``... host compute-3 ...``) names the host as the root."""
_HOST_IN = re.compile(r"\bhost ([a-z][a-z0-9-]*-\d+)")
_REPLICA = re.compile(
    r"([a-z][a-z0-9-]*-\d+) error rate ([0-9.]+), latency ([0-9.]+) s, availability ([0-9.]+)"
    r"(?:, (\d+) messages waiting)?"
)


def public_topology(
    obs: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What an observation says of the cloud's public topology: (provisioned mask, role id
    per slot, ``depends_on`` edges (2, k), ``runs_on`` edges (2, k))."""
    mask = np.asarray(obs["node_mask"]) > 0
    roles = np.argmax(np.asarray(obs["nodes"])[:, : len(ROLE_NAMES)], axis=1)
    keep = np.asarray(obs["edge_mask"]) > 0
    index = np.asarray(obs["edge_index"])[:, keep]
    types = np.asarray(obs["edge_type"])[keep]
    return mask, roles, index[:, types == DEPENDS_ON], index[:, types == RUNS_ON]


def probe_candidates(
    obs: dict[str, Any],
    names: Sequence[str],
    limit: int = MAX_PROBES,
    logged: Iterable[str] = (),
) -> list[str]:
    """Up to ``limit`` node names to ``Inspect`` first, the likeliest root first (see the
    module docstring); ``logged`` names the nodes that wrote the recent log lines."""
    mask, roles, depends, runs = public_topology(obs)
    alarms = (np.asarray(obs["alarms"]) > 0) & mask[:, None]
    alarmed = alarms.any(axis=1)
    kind = KIND_OF_ROLE[roles]
    down = alarms[:, NODE_DOWN]
    n = mask.size
    tenant = np.isin(kind, (Kind.INSTANCE, Kind.NETWORK, Kind.VOLUME))
    host = kind == Kind.HOST
    proc = mask & ~host & ~tenant
    score = np.zeros(n)
    score[host & alarmed] += 100.0 + 50.0 * down[host & alarmed]
    score[tenant & alarms[:, HIGH_CPU]] += 90.0
    score[proc & alarmed] += 20.0 + 30.0 * down[proc & alarmed] + alarms[proc & alarmed].sum(1)
    # the bottom of the alarm path: alarmed, and nothing it depends on is
    callee_alarmed = np.zeros(n, dtype=bool)
    np.logical_or.at(callee_alarmed, depends[0], alarmed[depends[1]])
    score[proc & alarmed & ~callee_alarmed] += 15.0
    # a common dependency of alarmed callers
    callers = np.bincount(depends[1], minlength=n).astype(float)
    alarmed_callers = np.bincount(depends[1], weights=alarmed[depends[0]], minlength=n)
    common = proc & (alarmed_callers >= 2)
    score[common] += 25.0 * alarmed_callers[common] / np.maximum(callers[common], 1.0)
    # a host most alarmed processes share
    # a host whose processes alarm more than those of its peers (same role) do
    on_host = np.bincount(runs[1], weights=(alarmed & proc)[runs[0]], minlength=n)
    for role in np.unique(roles[host & mask]):
        peers = host & mask & (roles == role)
        excess = on_host[peers] - float(np.mean(on_host[peers]))
        score[peers] += np.where(excess >= 1.5, 30.0 + 8.0 * excess, 0.0)
    index = {name: i for i, name in enumerate(names)}
    for name in logged:
        if name in index:
            score[index[name]] += 10.0
    score[~mask] = -np.inf
    order: list[int] = []
    pools_taken: set[int] = set()
    candidates = np.flatnonzero(score > 0)
    while len(order) < limit and candidates.size:
        adjusted = score[candidates].copy()
        for j, i in enumerate(candidates):
            if _pool_of(roles, int(i)) in pools_taken and not down[i]:
                adjusted[j] -= 20.0
        best = int(candidates[int(np.argmax(adjusted))])
        order.append(best)
        pools_taken.add(_pool_of(roles, best))
        candidates = candidates[candidates != best]
    return [names[i] for i in order]


def _pool_of(roles: np.ndarray, node: int) -> int:
    """The replicas a probe of ``node`` stands for: its role (hosts and tenants: itself)."""
    kind = KIND_OF_ROLE[roles[node]]
    if kind in (Kind.HOST, Kind.INSTANCE, Kind.NETWORK, Kind.VOLUME):
        return -1 - int(node)
    return int(roles[node])


def read_findings(probes: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """(fault type, root node) named by the first probe report with a known finding, else
    ``None``. ``probes`` are ``info["probes"]`` entries."""
    for report in probes:
        for line in report.get("lines", ()):
            for keyword, fault in FINDINGS:
                if keyword in str(line):
                    host = _HOST_IN.search(str(line))
                    return fault, host.group(1) if host else str(report.get("node", ""))
    return None


def worst_replica(report: dict[str, Any]) -> str | None:
    """The replica a report's replica line shows in the worst health, when it stands out
    (and is not the probed node itself); ``None`` otherwise."""
    scores: dict[str, float] = {}
    for line in report.get("lines", ()):
        for name, err, lat, avail, waiting in _REPLICA.findall(str(line)):
            scores[name] = (
                float(err) + float(lat) / 5.0 + (1.0 - float(avail)) + (1.0 if waiting else 0.0)
            )
    if len(scores) < 2:
        return None
    ranked = sorted(scores, key=lambda n: -scores[n])
    best, second = ranked[0], ranked[1]
    if scores[best] - scores[second] < 0.1 or best == report.get("node"):
        return None
    return best


def next_probe(
    obs: dict[str, Any],
    names: Sequence[str],
    reports: Sequence[dict[str, Any]],
    logged: Iterable[str] = (),
) -> str | None:
    """The node to ``Inspect`` next, given the reports so far (oldest first): the replica
    the last report points to, else the best-ranked candidate not yet probed."""
    probed = {str(r["node"]) for r in reports if r.get("node")}  # a Trace names no node
    if reports:
        pointer = worst_replica(reports[-1])
        if pointer is not None and pointer not in probed:
            return pointer
    for name in probe_candidates(obs, names, limit=len(names), logged=logged):
        if name not in probed:
            return name
    return None


_LOGS_RE = re.compile(r"Recent logs: (.*)\.$")


def logged_nodes(description: str) -> list[str]:
    """The nodes that wrote the recent log lines the scene description quotes."""
    m = _LOGS_RE.search(description)
    if not m:
        return []
    return [line.partition(": ")[0] for line in m.group(1).split(" | ")]
