"""The mutable simulation state: numpy arrays over the nodes of a compiled topology.

The :class:`Topology` is immutable and shared between copies; everything that changes during an
episode lives in :class:`SimState` and is copied by :meth:`SimState.copy` (cheap: a few dozen
array copies), which is what makes dry runs of a plan affordable.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from pase_gym.sim.roles import ROLE_INDEX, ROLE_NAMES, Kind
from pase_gym.sim.topology import Topology
from pase_gym.sim.workload import resolve_profile, role_demand

INDICATORS = (
    "cpu",
    "memory",
    "disk",
    "network",
    "latency",
    "error_rate",
    "throughput",
    "availability",
)
IND = {name: i for i, name in enumerate(INDICATORS)}
TIMEOUT = 5.0  # seconds a caller waits before it gives up on a call
PINNED_KINDS = (Kind.INSTANCE, Kind.NETWORK, Kind.VOLUME)  # load stays with the node
LOG_LIMIT = 2000  # log lines a state keeps at most: past it the oldest LOG_TRIM go
LOG_TRIM = 1000
LOG_QUEUE_LIMIT = 512  # queued log writes past which they are made without waiting for a reader


class Modifiers:
    """Per-evaluation effects of the active faults, reset at every evaluation.

    The eight rows live in one block so that a reset is a single allocation.
    """

    __slots__ = (
        "block",
        "cap_mult",
        "cpu_add",
        "err_add",
        "lat_add",
        "load_add",
        "mem_add",
        "net_add",
        "reach",
    )

    def __init__(self, n: int) -> None:
        block = np.zeros((8, n))
        block[0] = 1.0
        block[6] = 1.0
        self.block = block
        (
            self.cap_mult,
            self.err_add,
            self.lat_add,
            self.cpu_add,
            self.net_add,
            self.mem_add,
            self.reach,
            self.load_add,
        ) = block


class Fault(Protocol):
    """What the core (dynamics, transition, copies) needs of an injected fault.

    :class:`pase_gym.sim.faults.ActiveFault` implements it; the state depends on this
    interface only, so that the fault models can build on the state without a cycle.
    """

    node: int
    onset: int
    params: dict[str, float]

    @property
    def name(self) -> str:
        """The fault type."""

    @property
    def active(self) -> bool:
        """Injected and not yet cleared."""

    def inject(self, state: SimState) -> None:
        """Onset: change the state."""

    def apply(self, state: SimState, mods: Modifiers) -> None:
        """Write the fault's per-evaluation effects into ``mods``."""

    def advance(self, state: SimState, dt: int) -> None:
        """Integrate the fault's accumulators over ``dt`` ticks."""

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        """A primitive effect happened on ``node``."""

    def takes_kill(self, node: int) -> bool:
        """Whether ``KillProcess`` on host ``node`` kills this fault's own process."""

    def findings(self, state: SimState, node: int) -> list[str]:
        """What a probe of ``node`` shows of this fault now."""

    def clone(self) -> Fault:
        """An independent copy."""

    def describe(self, state: SimState) -> dict[str, Any]:
        """Ground truth for the evaluation side."""


@dataclass
class LogLine:
    """One log or event line: ``tick node: text`` at a severity."""

    tick: int
    node: str
    level: str
    text: str

    def __str__(self) -> str:
        return f"t={self.tick} {self.level} {self.node}: {self.text}"


@dataclass
class SimState:
    """Everything that changes during an episode.

    Array attributes are per node (indexed by node id) unless noted. Derived attributes
    (``health``, ``err``, ``lat``, ``load``, ``util``, ``slo_ok_nodes``) are written by
    :func:`pase_gym.sim.dynamics.evaluate` and describe the state at ``evaluated_at``.
    """

    topo: Topology
    profile: str
    tick: int
    # configuration the agent can change
    active: np.ndarray
    up: np.ndarray
    hung: np.ndarray
    desynced: np.ndarray
    isolated: np.ndarray
    drained: np.ndarray
    down_until: np.ndarray  # int64: a (re)starting process serves again from this tick
    route_w: np.ndarray  # load-balancer weight
    throttle: np.ndarray  # share of intake/CPU allowed
    cpu_alloc: np.ndarray
    mem_alloc: np.ndarray
    disk_alloc: np.ndarray
    host_of: np.ndarray  # intp: mutable because instances migrate
    # accumulators
    mem_used: np.ndarray  # in units of the original allocation
    disk_used: np.ndarray  # hosts: share of disk
    backlog: np.ndarray  # queues: messages waiting
    # calibration (fixed per episode, kept here because it depends on the profile)
    cap0: np.ndarray
    pinned_load: np.ndarray
    demand: np.ndarray  # per role
    slo_latency: np.ndarray
    slo_error: float
    desired: np.ndarray  # per group: replicas the SLO wants in service
    # derived by evaluate()
    health: np.ndarray
    err: np.ndarray
    lat: np.ndarray
    load: np.ndarray
    util: np.ndarray
    works: np.ndarray
    slo_ok_nodes: np.ndarray
    role_err: np.ndarray  # per role, last evaluation: share of its requests that failed
    retry_err: np.ndarray  # per role: error share among the replicas serving it (retries)
    evaluated_at: int = -1
    health_at: int = -1
    derived: Any = None  # intermediates of the last evaluation (see dynamics.ensure_indicators)
    slo_ok: bool = True
    slo_ok_since: int | None = 0
    incident_open_at: int | None = None
    faults: list[Fault] = field(default_factory=list)
    pending: list[Fault] = field(default_factory=list)
    # the lines written so far (read them through .log, which makes the queued writes first)
    lines: list[LogLine] = field(default_factory=list)
    # log writes not made yet, in order: (writer, arguments). The log generator draws only
    # when they are made, so a log nobody reads costs no text (pase_gym.sim.logs queues them)
    log_queue: list[tuple[Callable[..., None], tuple[Any, ...]]] = field(default_factory=list)
    log_queued: int = 0  # writes queued so far, made or not
    log_written: int = 0  # writes made so far
    # observations whose lines are due when the log has made a given number of writes:
    # (that number, weak reference to the observation's LogLines)
    log_waiting: list[tuple[int, Any]] = field(default_factory=list)
    lost_messages: float = 0.0
    history_ticks: list[int] = field(default_factory=list)
    history: list[np.ndarray] = field(default_factory=list)
    history_len: int = 12
    event_counts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # draws the log text only (pase_gym.sim.logs), apart from the dynamics' generator
    log_rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    # draws the event stream's counting noise (pase_gym.sim.observe), apart from the dynamics'
    # generator, so that what the event stream counts never moves the dynamics; None: the
    # generator observe() is given
    event_rng: np.random.Generator | None = None
    # a dry run's copy: writes no log lines and is never observed (no event generator)
    quiet: bool = False
    # probe reports (pase_gym.sim.probes) not yet handed out: the next observation takes them
    probes: list[Any] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of node slots."""
        return self.topo.n

    def node_id(self, name: str) -> int:
        """Node id of ``name``; ``KeyError`` if it is not in the topology."""
        return self.topo.index[name]

    def name(self, node: int) -> str:
        """Name of node id ``node``."""
        return self.topo.names[node]

    @property
    def log(self) -> list[LogLine]:
        """The log lines written so far, oldest first (at most :data:`LOG_LIMIT`)."""
        if self.log_queue:
            self.flush_log()
        return self.lines

    def add_log(self, node: int, level: str, text: str) -> None:
        """Append a log line for ``node`` at the current tick (bounded memory)."""
        self.add_lines([LogLine(self.tick, self.topo.names[node], level, text)])

    def add_lines(self, lines: list[LogLine]) -> None:
        """Append log lines after the queued writes, keeping what appending them one at a
        time to a log of at most :data:`LOG_LIMIT` lines (dropping the oldest
        :data:`LOG_TRIM` each time it overflows) would keep."""
        if self.log_queue:
            self.flush_log()
        self.write_lines(lines)

    def write_lines(self, lines: list[LogLine]) -> None:
        """Append ``lines`` now (for the writers of the queue; others use :meth:`add_lines`)."""
        self.lines.extend(lines)
        while len(self.lines) > LOG_LIMIT:
            del self.lines[:LOG_TRIM]

    def queue_log(self, writer: Callable[..., None], *args: Any) -> None:
        """Queue ``writer(state, *args)``: it writes its lines when the log is next read (or
        the queue passes :data:`LOG_QUEUE_LIMIT` writes), after every write queued before."""
        self.log_queue.append((writer, args))
        self.log_queued += 1
        if len(self.log_queue) > LOG_QUEUE_LIMIT:
            self.flush_log()

    def flush_log(self) -> None:
        """Make the queued writes, in order.

        An observation waiting for the log as it stood after ``k`` writes takes its lines
        just before write ``k`` is made.
        """
        if self.quiet:
            self.log_queue.clear()  # a dry run's copy never draws from the shared generator
            return
        end = self.log_queued
        made = 0
        queue = self.log_queue
        while self.log_written < end:
            if self.log_waiting:
                self._hand_out(self.log_written)
            writer, args = queue[made]
            writer(self, *args)
            made += 1
            self.log_written += 1
        del queue[:made]
        if self.log_waiting:
            self._hand_out(self.log_written)

    def wait_for_log(self, lines: Any) -> None:
        """Have ``lines.settle(self.lines)`` called when the log stands as it does now (at
        once if nothing is queued)."""
        if not self.log_queue:
            lines.settle(self.lines)
            return
        waiting = self.log_waiting
        while waiting and waiting[0][1]() is None:  # observations nobody holds any more
            del waiting[0]
        # marks never decrease: the list stays in the order it is handed out
        waiting.append((self.log_queued, weakref.ref(lines)))

    def __getstate__(self) -> dict[str, Any]:
        # weak references do not pickle: the waiting observations go as strong ones
        out = self.__dict__.copy()
        out["log_waiting"] = [(k, r()) for k, r in self.log_waiting if r() is not None]
        return out

    def __setstate__(self, values: dict[str, Any]) -> None:
        waiting = values.pop("log_waiting", [])
        self.__dict__.update(values)
        self.log_waiting = [(k, weakref.ref(lines)) for k, lines in waiting]

    def _hand_out(self, written: int) -> None:
        """Settle the observations due when ``written`` writes have been made (the list is
        in mark order, so only its head is looked at)."""
        waiting = self.log_waiting
        done = 0
        while done < len(waiting) and waiting[done][0] <= written:
            target = waiting[done][1]()
            if target is not None:
                target.settle(self.lines)
            done += 1
        if done:
            del waiting[:done]

    def copy(self, *, logs: bool = True) -> SimState:
        """A deep copy sharing only the immutable topology.

        With ``logs=False`` the copy is a dry run's: it writes no log lines and cannot be
        observed (the log and the event counts never change the dynamics, and nobody reads the
        copy's), which spares cloning the log and event generators (a third of the copy's time).
        """
        # a shallow copy first, bypassing __getstate__ (which pickling needs, not copies)
        new = object.__new__(SimState)
        new.__dict__.update(self.__dict__)
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                setattr(new, key, value.copy())
        new.faults = [f.clone() for f in self.faults]
        new.pending = [f.clone() for f in self.pending]
        new.lines = list(self.lines)
        new.log_queue = list(self.log_queue)  # the writes are immutable; each copy makes its own
        new.log_waiting = []  # the source's observations wait for the source
        new.probes = list(self.probes)
        new.history = list(self.history)
        new.history_ticks = list(self.history_ticks)
        if logs and not self.quiet:
            new.log_rng = clone_generator(self.log_rng)
            if self.event_rng is not None:
                new.event_rng = clone_generator(self.event_rng)
        else:
            new.quiet = True  # never draws from the shared generators
            new.event_rng = None
            new.log_queue = []  # nor makes the queued writes (its log is never read)
        return new

    def in_service(self) -> np.ndarray:
        """Nodes that are provisioned and not fenced off or drained (directly or via host)."""
        host = self.host_of
        return (
            self.active
            & ~self.isolated
            & ~self.drained
            & ~self.isolated[host]
            & ~self.drained[host]
        )

    def ground_truth(self) -> list[dict[str, Any]]:
        """The injected faults (evaluation side only: agents never see this)."""
        return [f.describe(self) for f in [*self.faults, *self.pending]]


def clone_generator(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator in the same state (three times faster than a deepcopy)."""
    bit = type(rng.bit_generator)(0)
    bit.state = rng.bit_generator.state
    return np.random.Generator(bit)


def new_state(
    topo: Topology, profile: str, rng: np.random.Generator, intensity: float = 1.0
) -> SimState:
    """A healthy state of ``topo`` under ``profile``, with capacities sized by ``rng``.

    Every replica gets the capacity that runs it at a seeded utilisation between 0.30 and 0.50
    under the profile's demand, which is how a cloud operator provisions a healthy cloud.
    """
    profile = resolve_profile(profile)
    n = topo.n
    kind = topo.kind
    plan = _provisioning(topo, profile, float(intensity))
    active = plan.active.copy()
    target_u = rng.uniform(0.30, 0.50, size=len(ROLE_NAMES))[topo.role]
    cap0 = np.maximum(plan.role_base[topo.role], 1e-3) / target_u
    cap0[kind == Kind.HOST] = 1.0
    zeros = np.zeros(n)
    falses = np.zeros(n, dtype=bool)
    mem = topo.base_memory.copy()
    disk = np.where(kind == Kind.HOST, rng.uniform(0.25, 0.55, size=n), 0.0)
    demand = plan.demand.copy()
    route_w = plan.route_w.copy()
    pinned_load = plan.pinned_load.copy()
    desired = plan.desired.copy()
    state = SimState(
        topo=topo,
        profile=profile,
        tick=0,
        active=active,
        up=active.copy(),
        hung=falses.copy(),
        desynced=falses.copy(),
        isolated=falses.copy(),
        drained=falses.copy(),
        down_until=np.zeros(n, dtype=np.int64),
        route_w=route_w,
        throttle=np.ones(n),
        cpu_alloc=np.ones(n),
        mem_alloc=np.ones(n),
        disk_alloc=np.ones(n),
        host_of=topo.host_of.copy(),
        mem_used=mem,
        disk_used=disk,
        backlog=zeros.copy(),
        cap0=cap0,
        pinned_load=pinned_load,
        demand=demand,
        slo_latency=np.zeros(n),
        slo_error=0.05,
        desired=desired,
        health=np.zeros((n, len(INDICATORS))),
        err=zeros.copy(),
        lat=zeros.copy(),
        load=zeros.copy(),
        util=zeros.copy(),
        works=active.copy(),
        slo_ok_nodes=np.ones(n, dtype=bool),
        role_err=np.zeros(len(ROLE_NAMES)),
        retry_err=np.zeros(len(ROLE_NAMES)),
    )
    return state


class _Provisioning(NamedTuple):
    """What :func:`new_state` derives from the topology and the workload alone (no draws)."""

    active: np.ndarray
    demand: np.ndarray
    route_w: np.ndarray
    pinned_load: np.ndarray
    role_base: np.ndarray  # per role: the largest healthy load of one of its replicas
    desired: np.ndarray


_PROVISIONING: dict[tuple[int, str, float], tuple[Topology, _Provisioning]] = {}


def _provisioning(topo: Topology, profile: str, intensity: float) -> _Provisioning:
    """The healthy cloud's loads under a workload, computed once per (topology, profile,
    intensity); :func:`new_state` copies what it changes."""
    key = (id(topo), profile, intensity)
    hit = _PROVISIONING.get(key)
    if hit is not None and hit[0] is topo:
        return hit[1]
    n = topo.n
    active = topo.initially_active.copy()
    kind = topo.kind
    instances = int(np.count_nonzero(active & (kind == Kind.INSTANCE)))
    demand = role_demand(profile, instances, intensity)
    route_w = np.ones(n)
    mysql = topo.nodes_of_role("mysql")
    route_w[mysql[1:]] = 0.0  # a single writer; the other Galera nodes are hot standbys
    # Share of its role's demand each node would carry when everything is healthy.
    share = np.zeros(n)
    w = route_w * active
    role_w = np.bincount(topo.role, weights=w, minlength=len(ROLE_NAMES))
    served = role_w[topo.role] > 0
    share[served] = w[served] / role_w[topo.role][served]
    pinned = np.isin(kind, PINNED_KINDS)
    role_count = np.bincount(topo.role, weights=active.astype(float), minlength=len(ROLE_NAMES))
    pinned_load = np.zeros(n)
    pinned_load[pinned] = demand[topo.role[pinned]] / np.maximum(role_count[topo.role[pinned]], 1)
    base = np.where(pinned, pinned_load, demand[topo.role] * share)
    # Standbys and spares get the same hardware as their active peers.
    role_base = np.zeros(len(ROLE_NAMES))
    np.maximum.at(role_base, topo.role, base)
    desired = np.array([int(np.count_nonzero(active[m])) for m in topo.group_members])
    plan = _Provisioning(active, demand, route_w, pinned_load, role_base, desired)
    for array in plan:
        array.flags.writeable = False
    if len(_PROVISIONING) > 256:
        _PROVISIONING.clear()
    _PROVISIONING[key] = (topo, plan)
    return plan


def role_id(name: str) -> int:
    """Index of role ``name`` in :data:`ROLE_NAMES`."""
    return ROLE_INDEX[name]
