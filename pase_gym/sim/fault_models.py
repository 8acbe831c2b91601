"""Fault dynamics: what each injected fault does to the state, and what truly clears it.

Each fault type is a small class. ``inject`` changes the state at onset, ``apply`` writes the
fault's per-evaluation effects into the :class:`Modifiers`, ``advance`` integrates its
accumulators, and ``on_effect`` hears every primitive effect and decides whether the root cause
is gone. Mitigations that do not remove the root cause (restarting a leaking process, flushing a
queue whose consumers are too slow) help for a while and then the symptoms come back, so only a
real recovery keeps the SLOs green for the hold time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.errors import ScenarioError
from pase_gym.sim.dynamics import Modifiers
from pase_gym.sim.fault_base import ActiveFault, eligible_targets
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.roles import Kind
from pase_gym.sim.state import SimState

__all__ = ["FAULT_MODELS", "ActiveFault", "eligible_targets", "make_fault"]


class ProcessCrash(ActiveFault):
    name = "process_crash"
    clears_by = ("restart",)

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.up[self.node] = False


class ProcessHang(ActiveFault):
    name = "process_hang"
    clears_by = ("kill", "restart")

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.hung[self.node] = True


class MemoryLeak(ActiveFault):
    """The running release leaks; only a rollback (then a restart to load it) stops it."""

    name = "memory_leak"
    clears_by = ("rollback", "restart")

    def advance(self, state: SimState, dt: int) -> None:
        node = self.node
        if state.up[node] and state.down_until[node] <= state.tick:
            state.mem_used[node] += self.params.get("rate", 0.02) * dt


class CpuHog(ActiveFault):
    name = "cpu_hog"
    clears_by = ("kill",)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        hosted = self.hosted(state)
        mods.cap_mult[hosted] *= 0.3
        mods.cpu_add[self.node] += 0.9
        mods.lat_add[hosted] += 0.05


class DiskFull(ActiveFault):
    """Logs fill a host's disk; clean it, then restart what the full disk stopped."""

    name = "disk_full"
    clears_by = ("clean_disk",)

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.disk_used[self.node] = max(state.disk_used[self.node], 0.93)

    def advance(self, state: SimState, dt: int) -> None:
        state.disk_used[self.node] = min(1.0, state.disk_used[self.node] + 0.01 * dt)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        if state.disk_used[self.node] >= 0.99:
            hosted = self.hosted(state)
            writers = hosted[state.topo.writes_disk[hosted]]
            mods.err_add[writers] = 1.0 - (1.0 - mods.err_add[writers]) * 0.2


class NetworkPartition(ActiveFault):
    """A host's uplink fails; clustered services on it desync and need a restart after."""

    name = "network_partition"
    clears_by = ("failover",)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.reach[self.node] = 0.0

    def inject(self, state: SimState) -> None:
        super().inject(state)
        hosted = self.hosted(state)
        state.desynced[hosted[state.topo.clustered[hosted]]] = True


class PacketLoss(ActiveFault):
    name = "packet_loss"
    clears_by = ("failover",)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        hosted = self.hosted(state)
        loss = self.params.get("loss", 0.3)
        mods.err_add[hosted] = 1.0 - (1.0 - mods.err_add[hosted]) * (1.0 - 0.5 * loss)
        mods.lat_add[hosted] += 1.5 * loss
        mods.net_add[hosted] += 0.6


class DnsFailure(ActiveFault):
    """Resolver config drift; after the rollback, cached bad answers linger until flushed."""

    name = "dns_failure"
    clears_by = ("rollback", "flush_cache")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        hosted = self.hosted(state)
        procs = hosted[state.topo.is_process[hosted]]
        mods.err_add[procs] = 1.0 - (1.0 - mods.err_add[procs]) * 0.3


class BadDeploy(ActiveFault):
    name = "bad_deploy"
    clears_by = ("rollback", "restart")
    error = 0.45

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.err_add[self.node] = max(mods.err_add[self.node], self.error)


class ConfigDrift(BadDeploy):
    name = "config_drift"
    error = 0.9


class QueueBacklog(ActiveFault):
    """A message surge the consumers cannot drain; add consumers until they can.

    The backlog grows by ``inflow + surge - capacity`` messages per tick, where the capacity
    is that of the nova-conductor replicas in service. Flushing the queue empties it, but with
    too few consumers it fills again; enough consumers drain it and keep it empty.
    """

    name = "queue_backlog"

    def _rates(self, state: SimState) -> tuple[float, float]:
        ids = state.topo.nodes_of_role("nova-conductor")
        serving = state.works[ids] & state.in_service()[ids]
        capacity = float(np.sum(state.cap0[ids] * state.cpu_alloc[ids] * serving))
        initial = float(np.sum(state.cap0[ids] * state.topo.initially_active[ids]))
        inflow = float(np.sum(state.load[ids])) + self.params.get("surge", 0.75) * initial
        return inflow, capacity

    def advance(self, state: SimState, dt: int) -> None:
        inflow, capacity = self._rates(state)
        node = self.node
        state.backlog[node] = max(0.0, state.backlog[node] + (inflow - capacity) * dt)
        if state.backlog[node] <= 0.0 and capacity > inflow:
            self.resolve(state)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        _, capacity = self._rates(state)
        backlog = state.backlog[self.node]
        mods.lat_add[self.node] += min(backlog / max(capacity, 1e-6), 60.0)
        mods.mem_add[self.node] += min(backlog / (40.0 * max(capacity, 1e-6)), 1.0)
        mods.cpu_add[state.topo.nodes_of_role("nova-conductor")] += 0.2


class DbLockContention(ActiveFault):
    """A stuck transaction on the writer; fail the writer over, then restart the old one."""

    name = "db_lock_contention"

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.lat_add[self.node] += 2.5
        mods.cpu_add[self.node] += 0.1

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if node == self.node and effect in ("restart", "kill"):
            self.resolve(state)


class DbReplicaFailure(ActiveFault):
    name = "db_replica_failure"
    clears_by = ("restart",)

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.desynced[self.node] = True


class HostPowerLoss(ActiveFault):
    name = "host_power_loss"

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.up[self.node] = False

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        # The host stays dark; the incident is over once it is fenced and its instances run
        # elsewhere (recovery itself is judged on the SLOs).
        if node == self.node and effect == "isolate":
            self.phase = "fenced"
        if self.phase == "fenced" and effect in ("isolate", "migrate"):
            t = state.topo
            left = (t.kind == Kind.INSTANCE) & state.active & (state.host_of == self.node)
            if not left.any():
                self.resolve(state)


class NoisyNeighbour(ActiveFault):
    """One instance hogs its host; capping it (or evicting it) protects the neighbours."""

    name = "noisy_neighbour"

    def apply(self, state: SimState, mods: Modifiers) -> None:
        node = self.node
        if not (state.active[node] and state.up[node]) or state.isolated[node]:
            return
        host = int(state.host_of[node])
        level = float(state.throttle[node])
        harm = max(0.0, level - 0.4) / 0.6
        # the quota bites on the runaway burn first, not on the tenant's own serving share
        mods.cap_mult[node] /= max(level, 0.1)
        mods.cpu_add[node] += 0.9 * level
        mods.cpu_add[host] += 0.7 * level
        if harm > 0:
            neighbours = np.flatnonzero(state.host_of == host)
            neighbours = neighbours[(neighbours != node) & (neighbours != host)]
            mods.cap_mult[neighbours] *= 1.0 - 0.8 * harm
            mods.lat_add[neighbours] += 0.3 * harm

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if node != self.node:
            return
        if effect == "isolate":
            self.resolve(state)
        elif effect == "throttle":
            # contained while capped (the fault keeps applying, and un-capping revives it)
            contained = state.throttle[node] <= 0.5
            self.phase = "contained" if contained else "active"
            self.resolved_at = state.tick if contained else None


class CascadingTimeout(ActiveFault):
    """A jammed worker pool; restarting it only helps once the retry storm has room.

    After the restart, the callers replay the requests they queued while the pool was jammed:
    a storm of ``storm`` x (desired replicas) x (replica capacity) extra requests per tick for
    ``STORM_TICKS``, spread over the replicas in service. If it pushes the restarted replica
    past 85% utilisation, the pool jams again; with enough replicas it rides the storm out.
    """

    name = "cascading_timeout"
    STORM_TICKS = 30

    def inject(self, state: SimState) -> None:
        super().inject(state)
        self.phase = "jammed"

    @property
    def active(self) -> bool:
        return self.phase in ("active", "jammed", "watching")

    def _members(self, state: SimState) -> np.ndarray:
        t = state.topo
        return t.group_members[int(t.group_of[self.node])]

    def apply(self, state: SimState, mods: Modifiers) -> None:
        if self.phase == "jammed":
            mods.cap_mult[self.node] *= 0.15
            mods.lat_add[self.node] += 2.0
        elif self.phase == "watching":
            members = self._members(state)
            serving = members[state.active[members] & state.in_service()[members]]
            desired = int(state.desired[int(state.topo.group_of[self.node])])
            storm = self.params.get("storm", 0.45) * desired * float(np.max(state.cap0[members]))
            mods.load_add[serving] += storm / max(serving.size, 1)

    def advance(self, state: SimState, dt: int) -> None:
        if self.phase == "watching" and state.evaluated_at > self.params["restarted_at"]:
            # judged on an evaluation made after the restart, when the node serves again
            if state.util[self.node] > 0.85 and state.works[self.node]:
                self.phase = "jammed"
                state.add_log(self.node, "ERROR", "worker pool exhausted; requests queued")
            elif state.tick - self.params["restarted_at"] > self.STORM_TICKS:
                self.resolve(state)

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if node == self.node and effect == "restart" and self.phase == "jammed":
            self.phase = "watching"
            self.params["restarted_at"] = float(state.tick)


class CertificateExpiry(ActiveFault):
    name = "certificate_expiry"
    clears_by = ("renew_cert", "restart")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        mods.err_add[self.node] = 1.0
        mods.cpu_add[self.node] -= 0.05


class CpuMemoryDeadlock(ActiveFault):
    """Memory pressure past 80% of the limit triggers a spinning lock; raise the limit."""

    name = "cpu_memory_deadlock"
    plateau = 0.95  # working set, in units of the original allocation

    def inject(self, state: SimState) -> None:
        super().inject(state)
        state.mem_used[self.node] = max(state.mem_used[self.node], 0.6)

    def advance(self, state: SimState, dt: int) -> None:
        node = self.node
        if state.up[node] and state.down_until[node] <= state.tick and not state.hung[node]:
            state.mem_used[node] = min(self.plateau, state.mem_used[node] + 0.02 * dt)
        if (
            state.mem_used[node] / state.mem_alloc[node] > 0.8
            and not state.hung[node]
            and (state.up[node] and state.down_until[node] <= state.tick)
        ):
            state.hung[node] = True
            state.add_log(node, "ERROR", "BUG: soft lockup - CPU stuck")

    def apply(self, state: SimState, mods: Modifiers) -> None:
        if state.hung[self.node]:
            mods.cpu_add[self.node] += 0.95

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        if (
            node == self.node
            and effect == "restart"
            and (self.plateau / state.mem_alloc[node] <= 0.8)
        ):
            self.resolve(state)


FAULT_MODELS: dict[str, type[ActiveFault]] = {
    cls.name: cls
    for cls in (
        ProcessCrash,
        ProcessHang,
        MemoryLeak,
        CpuHog,
        DiskFull,
        NetworkPartition,
        PacketLoss,
        DnsFailure,
        BadDeploy,
        ConfigDrift,
        QueueBacklog,
        DbLockContention,
        DbReplicaFailure,
        HostPowerLoss,
        NoisyNeighbour,
        CascadingTimeout,
        CertificateExpiry,
        CpuMemoryDeadlock,
    )
}


def make_fault(
    state: SimState,
    fault_type: str,
    node: str | None,
    onset: int,
    rng: np.random.Generator,
    params: dict[str, float] | None = None,
    source: str = "<mapping>",
    key: str = "faults",
) -> ActiveFault:
    """Build a scheduled fault, choosing its node with ``rng`` when ``node`` is ``None``.

    Raises:
        ScenarioError: unknown fault type, unknown node, or a node the fault cannot strike.
    """
    if fault_type not in FAULT_MODELS:
        raise ScenarioError(
            f"unknown fault type {fault_type!r}; expected one of {', '.join(FAULT_MODELS)}",
            source=source,
            key=f"{key}.type",
        )
    targets = eligible_targets(state, fault_type)
    if node is None:
        if targets.size == 0:
            raise ScenarioError(
                f"this topology has no node that {fault_type} can strike "
                f"(it needs a {FAULTS[fault_type].target})",
                source=source,
                key=key,
            )
        idx = int(targets[int(rng.integers(targets.size))])
    else:
        if node not in state.topo.index:
            raise ScenarioError(
                f"unknown node {node!r} in this topology", source=source, key=f"{key}.node"
            )
        idx = state.topo.index[node]
        if idx not in set(targets.tolist()):
            raise ScenarioError(
                f"{fault_type} cannot strike {node!r}: it needs an active "
                f"{FAULTS[fault_type].target}",
                source=source,
                key=f"{key}.node",
            )
    return FAULT_MODELS[fault_type](idx, onset, params)
