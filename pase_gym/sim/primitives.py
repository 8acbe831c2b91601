"""The recovery primitive library: typed parameters, symbolic preconditions, cost, safety.

Everything here is data. The plan parser reads the parameter types, the transition function
reads the preconditions and durations, action masks and the safety checker evaluate the same
preconditions (see :mod:`pase_gym.sim.predicates`), so nothing is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pase_gym.sim.signals import EVENT_CHAINS


class ParamType(str, Enum):
    """What a primitive parameter accepts."""

    NODE = "node"  # a node name of the current topology
    GROUP = "group"  # a scaling / service group name (e.g. ``nova-api``, ``compute``)
    INT = "int"  # an integer in [lo, hi]
    RESOURCE = "resource"  # one of ``choices``


class Safety(str, Enum):
    """How much harm a primitive can do when applied to the wrong target."""

    SAFE = "safe"
    RISKY = "risky"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True)
class Param:
    """One typed parameter of a primitive."""

    name: str
    type: ParamType
    doc: str
    lo: int = 0
    hi: int = 0
    choices: tuple[str, ...] = ()
    # the values a flat discrete action space offers (pase_gym.wrappers.DiscretePlanAction)
    presets: tuple[int | str, ...] = ()


@dataclass(frozen=True)
class Precondition:
    """A symbolic precondition: ``predicate(param [, arg])`` must hold (or not, if negated).

    ``predicate`` names a function in :data:`pase_gym.sim.predicates.PREDICATES`; ``arg``
    optionally names a second parameter whose value the predicate also reads.
    """

    param: str
    predicate: str
    arg: str | None = None
    negate: bool = False
    message: str = ""

    def describe(self) -> str:
        """Readable form, e.g. ``not hung(node)``."""
        inner = f"{self.predicate}({self.param}{', ' + self.arg if self.arg else ''})"
        return f"not {inner}" if self.negate else inner


@dataclass(frozen=True)
class PrimitiveSpec:
    """A recovery primitive's signature and metadata."""

    name: str
    params: tuple[Param, ...]
    preconditions: tuple[Precondition, ...]
    duration: int
    cost: float
    safety: Safety
    summary: str
    duration_param: str | None = None  # the duration is this (int) parameter's value
    effects: tuple[str, ...] = field(default=())

    def param_names(self) -> tuple[str, ...]:
        """Parameter names in call order."""
        return tuple(p.name for p in self.params)

    def signature(self) -> str:
        """``Name(param: type, ...)`` as shown in prompts and docs."""
        inner = ", ".join(f"{p.name}: {p.type.value}" for p in self.params)
        return f"{self.name}({inner})"


def _node(name: str, doc: str) -> Param:
    return Param(name, ParamType.NODE, doc)


def _pre(
    param: str, predicate: str, message: str, *, arg: str | None = None, negate: bool = False
) -> Precondition:
    return Precondition(param, predicate, arg, negate, message)


_EXISTS = _pre("node", "exists", "the node must exist and be provisioned")

PRIMITIVES: dict[str, PrimitiveSpec] = {
    spec.name: spec
    for spec in (
        PrimitiveSpec(
            "Wait",
            (
                Param(
                    "ticks",
                    ParamType.INT,
                    "simulated seconds to wait",
                    lo=1,
                    hi=600,
                    presets=(10, 30),
                ),
            ),
            (),
            duration=0,
            cost=0.0,
            safety=Safety.SAFE,
            summary="Do nothing and observe for a while.",
            duration_param="ticks",
            effects=("time passes",),
        ),
        PrimitiveSpec(
            "Restart",
            (_node("node", "a service, queue, database, cache or load balancer"),),
            (
                _EXISTS,
                _pre("node", "is_process", "only a service process can be restarted"),
                _pre("node", "host_up", "the node's host must be powered and reachable"),
                _pre(
                    "node",
                    "hung",
                    "a hung process ignores the stop signal; kill it first",
                    negate=True,
                ),
            ),
            duration=8,
            cost=1.0,
            safety=Safety.SAFE,
            summary="Restart the service process; it rejoins its pool (undoes Isolate/Drain).",
            effects=("process restarted", "memory reset", "isolation and drain cleared"),
        ),
        PrimitiveSpec(
            "KillProcess",
            (
                _node(
                    "node",
                    "a service (kills its main process) or a host (kills its runaway process)",
                ),
            ),
            (
                _EXISTS,
                _pre("node", "has_process", "there must be a running process to kill"),
                _pre("node", "host_up", "the node's host must be powered and reachable"),
            ),
            duration=2,
            cost=0.5,
            safety=Safety.RISKY,
            summary="SIGKILL the node's main (or runaway) process; a service stays down until "
            "restarted.",
            effects=("process killed",),
        ),
        PrimitiveSpec(
            "ScaleOut",
            (
                Param("group", ParamType.GROUP, "a scalable group, e.g. nova-api or compute"),
                Param("count", ParamType.INT, "replicas to add", lo=1, hi=8, presets=(1, 2)),
            ),
            (
                _pre("group", "scalable", "the group must be scalable"),
                _pre(
                    "group", "has_spare", "not enough spare capacity to add that many", arg="count"
                ),
            ),
            duration=20,
            cost=4.0,
            safety=Safety.SAFE,
            summary="Provision more replicas of a group (new hosts for ``compute``).",
            effects=("replicas added",),
        ),
        PrimitiveSpec(
            "ScaleIn",
            (
                Param("group", ParamType.GROUP, "a scalable group"),
                Param("count", ParamType.INT, "replicas to remove", lo=1, hi=8, presets=(1,)),
            ),
            (
                _pre("group", "scalable", "the group must be scalable"),
                _pre("group", "has_active", "the group has fewer replicas than that", arg="count"),
            ),
            duration=5,
            cost=0.5,
            safety=Safety.RISKY,
            summary="Remove replicas of a group (the newest first).",
            effects=("replicas removed",),
        ),
        PrimitiveSpec(
            "Reroute",
            (
                Param("group", ParamType.GROUP, "the traffic's service group"),
                _node("source", "the replica to move traffic away from"),
                _node("target", "the replica to move it to"),
            ),
            (
                _pre("source", "exists", "the source must exist"),
                _pre("target", "exists", "the target must exist"),
                _pre("source", "in_group", "the source must belong to the group", arg="group"),
                _pre("target", "in_group", "the target must belong to the group", arg="group"),
                _pre("target", "serving", "the target must be up and in service"),
                _pre(
                    "source",
                    "same_node",
                    "source and target must differ",
                    arg="target",
                    negate=True,
                ),
            ),
            duration=3,
            cost=0.5,
            safety=Safety.SAFE,
            summary="Shift the load balancer's weight from one replica to another.",
            effects=("traffic moved",),
        ),
        PrimitiveSpec(
            "Isolate",
            (_node("node", "the node to fence off"),),
            (
                _EXISTS,
                _pre("node", "in_service", "the node is already out of service"),
            ),
            duration=3,
            cost=0.5,
            safety=Safety.RISKY,
            summary="Fence a node off: no traffic, no calls, no spread; Restart brings it back.",
            effects=("node isolated",),
        ),
        PrimitiveSpec(
            "Migrate",
            (
                _node("instance", "the instance to move"),
                _node("host", "the compute host to move it to"),
            ),
            (
                _pre("instance", "exists", "the instance must exist"),
                _pre("instance", "is_instance", "only instances can be migrated"),
                _pre("host", "is_compute_host", "the target must be a compute host"),
                _pre("host", "exists", "the target host must be provisioned"),
                _pre("host", "up", "the target host must be up"),
                _pre("host", "has_room", "the target host must have room for an instance"),
                _pre(
                    "instance", "movable", "its host is down: fence it (Isolate) before evacuating"
                ),
                _pre(
                    "instance",
                    "on_host",
                    "the instance is already on that host",
                    arg="host",
                    negate=True,
                ),
            ),
            duration=15,
            cost=2.0,
            safety=Safety.RISKY,
            summary="Move an instance to another compute host (evacuate if its host is down).",
            effects=("instance moved",),
        ),
        PrimitiveSpec(
            "Rollback",
            (_node("node", "a service or host whose release or config changed"),),
            (
                _EXISTS,
                _pre("node", "has_previous", "there is no previous release or config to return to"),
                _pre("node", "host_up", "the node's host must be powered and reachable"),
            ),
            duration=12,
            cost=1.5,
            safety=Safety.RISKY,
            summary="Return the node's release and config to the previous version; a service "
            "runs it after its next Restart, a host's config applies at once.",
            effects=("release reverted", "config reverted"),
        ),
        PrimitiveSpec(
            "ResizeResource",
            (
                _node("node", "a service or instance"),
                Param(
                    "resource",
                    ParamType.RESOURCE,
                    "which allocation to grow",
                    choices=("cpu", "memory", "disk"),
                    presets=("cpu", "memory"),
                ),
                Param("amount", ParamType.INT, "how many units to add", lo=1, hi=4, presets=(1,)),
            ),
            (
                _EXISTS,
                _pre("node", "is_resizable", "only services and instances have allocations"),
                _pre("node", "host_up", "the node's host must be powered and reachable"),
            ),
            duration=6,
            cost=2.0,
            safety=Safety.SAFE,
            summary="Grow a node's cpu/memory/disk allocation (cgroup or flavor).",
            effects=("allocation grown",),
        ),
        PrimitiveSpec(
            "FlushQueue",
            (_node("queue", "a message queue node"),),
            (
                _pre("queue", "exists", "the queue must exist"),
                _pre("queue", "is_queue", "only message queues can be flushed"),
                _pre("queue", "up", "the queue broker must be running"),
            ),
            duration=2,
            cost=0.5,
            safety=Safety.DESTRUCTIVE,
            summary="Purge the queue's backlog; the purged messages are lost.",
            effects=("backlog dropped",),
        ),
        PrimitiveSpec(
            "Failover",
            (
                _node(
                    "node",
                    "a database, queue or load balancer with a standby, or a host with a "
                    "standby link",
                ),
            ),
            (
                _EXISTS,
                _pre("node", "has_standby", "the node has no standby to fail over to"),
            ),
            duration=10,
            cost=1.5,
            safety=Safety.RISKY,
            summary="Switch the node's role to its standby (replica promotion, standby link).",
            effects=("standby promoted",),
        ),
        PrimitiveSpec(
            "Throttle",
            (
                _node("node", "the node whose intake to cap"),
                Param(
                    "percent",
                    ParamType.INT,
                    "share of intake/CPU allowed (100 = no cap)",
                    lo=10,
                    hi=100,
                    presets=(40,),
                ),
            ),
            (_EXISTS,),
            duration=2,
            cost=0.5,
            safety=Safety.SAFE,
            summary="Cap a node's intake or CPU share (rate limit, cgroup quota).",
            effects=("intake capped",),
        ),
        PrimitiveSpec(
            "Drain",
            (_node("node", "a service replica or compute host"),),
            (
                _EXISTS,
                _pre("node", "in_service", "the node is already out of service"),
            ),
            duration=5,
            cost=0.5,
            safety=Safety.SAFE,
            summary="Stop sending new work to the node, finishing what it has; Restart undoes it.",
            effects=("node drained",),
        ),
        PrimitiveSpec(
            "CleanDisk",
            (_node("node", "a host"),),
            (
                _EXISTS,
                _pre("node", "is_host", "only hosts have disks to clean"),
                _pre("node", "up", "the host must be up"),
            ),
            duration=6,
            cost=0.5,
            safety=Safety.SAFE,
            summary="Rotate logs and remove temporary files on a host.",
            effects=("disk freed",),
        ),
        PrimitiveSpec(
            "RenewCertificate",
            (_node("node", "a service that terminates TLS"),),
            (
                _EXISTS,
                _pre("node", "is_process", "only services hold certificates"),
            ),
            duration=4,
            cost=0.5,
            safety=Safety.SAFE,
            summary="Issue a fresh TLS certificate (takes effect after a restart).",
            effects=("certificate renewed",),
        ),
        PrimitiveSpec(
            "FlushCache",
            (_node("node", "a host (resolver cache) or a cache service"),),
            (
                _EXISTS,
                _pre("node", "up", "the node must be up"),
            ),
            duration=2,
            cost=0.2,
            safety=Safety.SAFE,
            summary="Drop cached lookups (resolver cache on a host, memcached contents).",
            effects=("cache flushed",),
        ),
        PrimitiveSpec(
            "Inspect",
            (_node("node", "any node: a service, queue, database, host or instance"),),
            (_EXISTS,),
            duration=5,
            cost=0.1,
            safety=Safety.SAFE,
            summary="Look closely at one node (read-only): its process state, its own metrics, "
            "what its tools report and its last log lines.",
            effects=("probe report",),
        ),
        PrimitiveSpec(
            "QueryLogs",
            (
                _node("node", "a node (a host's logs include what runs on it)"),
                Param(
                    "seconds",
                    ParamType.INT,
                    "how far back to read",
                    lo=10,
                    hi=600,
                    presets=(60,),
                ),
            ),
            (_EXISTS,),
            duration=2,
            cost=0.05,
            safety=Safety.SAFE,
            summary="Read a node's log lines of the last seconds (read-only), beyond the "
            "short tail the scene shows.",
            effects=("probe report",),
        ),
        PrimitiveSpec(
            "Trace",
            (
                Param(
                    "request",
                    ParamType.RESOURCE,
                    "the workload's request type to trace",
                    choices=tuple(EVENT_CHAINS),  # boot, volume, network, cleanup
                    presets=("boot", "volume", "network"),
                ),
            ),
            (),
            duration=3,
            cost=0.05,
            safety=Safety.SAFE,
            summary="Trace one request type of the workload (read-only): each hop's component "
            "and how many requests pass it, and which replicas served the hop where they fail.",
            effects=("probe report",),
        ),
    )
}

PROBES = frozenset({"Inspect", "QueryLogs", "Trace"})
"""The read-only diagnostic primitives (:mod:`pase_gym.sim.probes`): they change nothing."""

INERT = PROBES | frozenset({"Wait"})
"""The primitives that change nothing in the cloud (the probes, and waiting): a plan of these
alone proposes no recovery."""


def get_primitive(name: str) -> PrimitiveSpec:
    """The spec of primitive ``name`` (case-sensitive); ``KeyError`` if unknown."""
    return PRIMITIVES[name]


def list_primitives() -> list[dict[str, object]]:
    """Names and metadata of every recovery primitive, in library order."""
    out: list[dict[str, object]] = []
    for spec in PRIMITIVES.values():
        out.append(
            {
                "name": spec.name,
                "signature": spec.signature(),
                "params": [
                    {
                        "name": p.name,
                        "type": p.type.value,
                        "doc": p.doc,
                        **({"range": [p.lo, p.hi]} if p.type is ParamType.INT else {}),
                        **({"choices": list(p.choices)} if p.choices else {}),
                    }
                    for p in spec.params
                ],
                "preconditions": [pre.describe() for pre in spec.preconditions],
                "duration": spec.duration_param or spec.duration,
                "cost": spec.cost,
                "safety": spec.safety.value,
                "summary": spec.summary,
            }
        )
    return out
