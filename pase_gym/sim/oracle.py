"""The oracle planner: reads the ground truth and writes the runbook plan that clears it.

It is the ceiling agent of the benchmark and the proof, in the tests, that every fault of
every built-in scenario is recoverable. It reads the injected faults directly, which no agent
may do; the harness labels it as using the ground truth.
"""

from __future__ import annotations

import math

import numpy as np

from pase_gym.sim.fault_base import ActiveFault
from pase_gym.sim.plan import Call, Diagnosis, Plan
from pase_gym.sim.roles import ROLE_NAMES, Kind
from pase_gym.sim.state import SimState


def _conductor_scale(state: SimState, fault: ActiveFault) -> int:
    """Consumers to add so that the conductors drain the surge with 15% headroom."""
    ids = state.topo.nodes_of_role("nova-conductor")
    per = float(np.max(state.cap0[ids]))
    initial = float(np.sum(state.cap0[ids] * state.topo.initially_active[ids]))
    inflow = float(np.sum(state.load[ids])) + fault.params.get("surge", 0.75) * initial
    capacity = float(np.sum(state.cap0[ids] * state.active[ids]))
    need = math.ceil(max(0.0, inflow * 1.15 - capacity) / per)
    spare = int(np.count_nonzero(~state.active[ids]))
    return max(1, min(need, spare))


def _evacuation(state: SimState, host: int) -> list[Call]:
    """Fence a dead compute host, add one, and move its instances to hosts with room."""
    t = state.topo
    calls = [Call("Isolate", (state.name(host),)), Call("ScaleOut", ("compute", 1))]
    members = t.group_members[t.group_index["compute"]]
    spare = members[~state.active[members]]
    instances = np.flatnonzero((t.kind == Kind.INSTANCE) & state.active & (state.host_of == host))
    counts = np.bincount(state.host_of[(t.kind == Kind.INSTANCE) & state.active], minlength=t.n)
    # prefer the new host, then live hosts with the most room
    targets = [int(spare[0])] if spare.size else []
    live = members[state.active[members] & state.up[members] & (members != host)]
    targets += [int(h) for h in live[np.argsort(counts[live], kind="stable")]]
    load = {h: int(counts[h]) for h in targets}
    for inst in instances.tolist():
        dest = next((h for h in targets if load[h] < t.slots_per_host), None)
        if dest is None:
            break
        load[dest] += 1
        calls.append(Call("Migrate", (state.name(inst), state.name(dest))))
    return calls


def _calls_for(state: SimState, fault: ActiveFault) -> list[Call]:
    t = state.topo
    node = fault.node
    name = state.name(node)
    kind = fault.name
    if kind == "process_crash" or kind == "db_replica_failure":
        return [Call("Restart", (name,))]
    if kind == "process_hang":
        return [Call("KillProcess", (name,)), Call("Restart", (name,))]
    if kind in ("memory_leak", "bad_deploy", "config_drift"):
        return [Call("Rollback", (name,)), Call("Restart", (name,))]
    if kind == "cpu_hog":
        return [Call("KillProcess", (name,))]
    if kind == "disk_full":
        hosted = t.hosted_on(node)
        stopped = hosted[
            t.writes_disk[hosted] & np.isin(t.kind[hosted], (Kind.DATABASE, Kind.QUEUE))
        ]
        return [Call("CleanDisk", (name,))] + [
            Call("Restart", (state.name(int(s)),)) for s in stopped
        ]
    if kind == "network_partition":
        hosted = t.hosted_on(node)
        clustered = hosted[t.clustered[hosted] & state.active[hosted]]
        return [Call("Failover", (name,))] + [
            Call("Restart", (state.name(int(c)),)) for c in clustered
        ]
    if kind == "packet_loss":
        return [Call("Failover", (name,))]
    if kind == "dns_failure":
        return [Call("Rollback", (name,)), Call("FlushCache", (name,))]
    if kind == "queue_backlog":
        return [Call("ScaleOut", ("nova-conductor", _conductor_scale(state, fault)))]
    if kind == "db_lock_contention":
        return [Call("Failover", (name,)), Call("Restart", (name,))]
    if kind == "host_power_loss":
        return _evacuation(state, node)
    if kind == "noisy_neighbour":
        return [Call("Throttle", (name, 40))]
    if kind == "cascading_timeout":
        group = ROLE_NAMES[int(t.role[node])]
        gid = t.group_index[group]
        spare = int(np.count_nonzero(~state.active[t.group_members[gid]]))
        calls = [Call("ScaleOut", (group, min(2, spare)))] if spare else []
        return [*calls, Call("Restart", (name,))]
    if kind == "certificate_expiry":
        return [Call("RenewCertificate", (name,)), Call("Restart", (name,))]
    if kind == "cpu_memory_deadlock":
        return [
            Call("KillProcess", (name,)),
            Call("ResizeResource", (name, "memory", 1)),
            Call("Restart", (name,)),
        ]
    raise ValueError(f"the oracle has no runbook for {kind!r}")  # pragma: no cover


def oracle_plan(state: SimState, skip: set[int] | None = None) -> Plan:
    """The ground-truth plan for every active fault of ``state`` (empty plan if none).

    Args:
        state: the state whose injected faults the oracle reads.
        skip: ``id()`` of faults already handled (a runbook in progress is not restarted).
    """
    faults = [f for f in state.faults if f.active and id(f) not in (skip or set())]
    if not faults:
        return Plan.empty()
    calls: list[Call] = []
    for fault in faults:
        for call in _calls_for(state, fault):
            if call not in calls:
                calls.append(call)
    first = faults[0]
    return Plan(tuple(calls), Diagnosis(first.name, state.name(first.node)))
