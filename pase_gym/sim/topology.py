"""The seeded topology generator and its compilation into index arrays.

``build_topology(nodes, seed)`` lays out an OpenStack-shaped cloud as a typed
:class:`networkx.DiGraph` (controllers with the replicated control plane behind haproxy, compute
hosts with their agents and instances, network nodes, storage nodes, tenant networks, volumes)
and compiles it once into the numpy arrays the dynamics loop over. Spare replicas (for
``ScaleOut``) are laid out up front but inactive, so every array keeps one shape per episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from pase_gym.errors import TopologyError
from pase_gym.sim.roles import (
    COMPUTE_AGENT_ROLES,
    CONTROL_ROLES,
    LOCAL_DEPENDENCIES,
    NETWORK_AGENT_ROLES,
    ROLE_DEPENDENCIES,
    ROLE_INDEX,
    ROLE_NAMES,
    ROLES,
    Kind,
)

SIZE_PRESETS: dict[str, int] = {"tiny": 20, "small": 200, "medium": 2000, "large": 10000}
MIN_NODES, MAX_NODES = 16, 20000
EDGE_TYPES = ("depends_on", "runs_on", "routes_to", "replicates_to")
SPARE_REPLICAS = 2  # inactive replicas laid out per scalable control-plane group


@dataclass(frozen=True)
class Layout:
    """How many of each building block a cloud of a given size gets."""

    controllers: int
    network_nodes: int
    storage_nodes: int
    compute_hosts: int
    instances_per_host: int
    spare_compute: int


def plan_layout(nodes: int) -> Layout:
    """Choose the building blocks for a cloud of about ``nodes`` active nodes."""
    if not MIN_NODES <= nodes <= MAX_NODES:
        raise TopologyError(
            f"cloud size must be between {MIN_NODES} and {MAX_NODES} nodes, got {nodes}"
        )
    if nodes < 60:  # all-in-one controller that also runs the network and storage agents
        c, nn, ns, m = 1, 0, 0, 2
        fixed = c * (1 + len(CONTROL_ROLES)) + len(NETWORK_AGENT_ROLES) + 1
    else:
        c = 3 if nodes < 5000 else 5
        nn = max(2, nodes // 1000)
        ns = max(2, nodes // 800)
        m = 4 if nodes < 1000 else 8
        fixed = c * (1 + len(CONTROL_ROLES)) + nn * (1 + len(NETWORK_AGENT_ROLES)) + ns * 2
    per_host = 1 + len(COMPUTE_AGENT_ROLES) + m + m * 0.5 + m / 6.0
    k = max(1, round((nodes - fixed) / per_host))
    return Layout(c, nn, ns, k, m, spare_compute=max(1, k // 10))


@dataclass(frozen=True)
class Topology:
    """A compiled cloud: the graph plus the static index arrays the dynamics read.

    Per-node arrays are indexed by node id (0..n-1, the graph's insertion order).
    """

    graph: nx.DiGraph
    seed: int
    layout: Layout
    names: tuple[str, ...]
    index: dict[str, int]
    kind: np.ndarray  # int8, :class:`Kind`
    role: np.ndarray  # intp, index into ROLE_NAMES
    host_of: np.ndarray  # intp, host node id (a host is its own host)
    pool: np.ndarray  # intp, dependency pool (replicas of a group share one pool)
    n_pools: int
    group_of: np.ndarray  # intp, scaling group id or -1
    groups: tuple[str, ...]
    group_members: tuple[np.ndarray, ...]  # node ids of each group, spares last
    initially_active: np.ndarray  # bool
    standby_capable: np.ndarray  # bool: Failover has somewhere to go
    base_latency: np.ndarray  # float64, seconds at zero load
    base_memory: np.ndarray  # float64, share of allocation when healthy
    dep_src: np.ndarray  # intp, caller node of each dependency
    dep_pool: np.ndarray  # intp, callee pool of each dependency
    dep_calls: np.ndarray  # float64, calls per request (latency composition)
    depth: int  # longest dependency chain, in hops
    is_process: np.ndarray  # bool: a process that can be restarted/killed
    tls: np.ndarray  # bool
    writes_disk: np.ndarray  # bool
    clustered: np.ndarray  # bool
    pinned: np.ndarray  # bool: instances, tenant networks, volumes (their load stays put)
    pinned_ids: np.ndarray  # int: node ids of the pinned nodes
    shared_roles: np.ndarray  # int: roles whose demand is shared among replicas
    pool2: np.ndarray  # int: pool ids, then pool ids + n_pools (fused err/lat aggregation)
    src2: np.ndarray  # int: dep_src, then dep_src + n
    dpool2: np.ndarray  # int: dep_pool, then dep_pool + n_pools
    edge_index: np.ndarray  # int64 (2, E): every typed edge of the graph, as node ids
    edge_type: np.ndarray  # int64 (E,): index into EDGE_TYPES
    instance_ids: np.ndarray  # int: node ids of the instances
    stops_on_full_disk: np.ndarray  # bool: databases and brokers stop when their disk fills
    grouped_ids: np.ndarray  # int: node ids that belong to a scaling group
    grouped_ids_group: np.ndarray  # int: their group ids
    is_host: np.ndarray  # bool
    slots_per_host: int  # instances a compute host can hold
    group_index: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of node slots, spares included."""
        return len(self.names)

    def role_name(self, node: int) -> str:
        """Role of node id ``node``."""
        return ROLE_NAMES[int(self.role[node])]

    def nodes_of_role(self, role: str) -> np.ndarray:
        """Node ids whose role is ``role`` (spares included)."""
        return np.flatnonzero(self.role == ROLE_INDEX[role])

    def hosted_on(self, host: int) -> np.ndarray:
        """Node ids that run on host ``host`` (the host itself excluded)."""
        ids = np.flatnonzero(self.host_of == host)
        return ids[ids != host]


class _Builder:
    """Accumulates nodes and edges, then compiles."""

    def __init__(self) -> None:
        self.g = nx.DiGraph()
        self.counters: dict[str, int] = {}

    def add(
        self,
        role: str,
        *,
        host: str | None,
        active: bool = True,
        name: str | None = None,
        group: str | None = None,
    ) -> str:
        if name is None:
            self.counters[role] = self.counters.get(role, 0) + 1
            name = f"{role}-{self.counters[role]}"
        r = ROLES[role]
        self.g.add_node(name, role=role, kind=r.kind, host=host or name, active=active, group=group)
        if host is not None:
            self.g.add_edge(name, host, type="runs_on")
        return name

    def edge(self, a: str, b: str, kind: str, calls: float = 1.0) -> None:
        self.g.add_edge(a, b, type=kind, calls=calls)


def build_topology(nodes: int | str = "small", seed: int = 0) -> Topology:
    """Generate and compile a cloud of about ``nodes`` active nodes.

    Args:
        nodes: a node count (16..20000) or a preset name (tiny, small, medium, large).
        seed: seeds the layout draws (instance placement, network and volume assignment).

    Returns:
        The compiled :class:`Topology`.

    Raises:
        TopologyError: on an unknown preset or an out-of-range size.
    """
    if isinstance(nodes, str):
        if nodes not in SIZE_PRESETS:
            raise TopologyError(
                f"unknown cloud size {nodes!r}: expected a node count or one of "
                f"{', '.join(SIZE_PRESETS)}"
            )
        nodes = SIZE_PRESETS[nodes]
    layout = plan_layout(int(nodes))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x70A0]))
    b = _Builder()
    controllers = [b.add("controller", host=None) for _ in range(layout.controllers)]
    replicas: dict[str, list[str]] = {}
    for role in CONTROL_ROLES:
        replicas[role] = [b.add(role, host=h, group=role) for h in controllers]
        if ROLES[role].scalable:
            for i in range(SPARE_REPLICAS):
                host = controllers[(len(controllers) + i) % len(controllers)]
                replicas[role].append(b.add(role, host=host, active=False, group=role))
    if layout.network_nodes:
        net_hosts = [b.add("network-node", host=None) for _ in range(layout.network_nodes)]
    else:
        net_hosts = controllers[:1]
    l3 = [b.add("l3-agent", host=h) for h in net_hosts]
    dhcp = [b.add("dhcp-agent", host=h) for h in net_hosts]
    if layout.storage_nodes:
        sto_hosts = [b.add("storage", host=None) for _ in range(layout.storage_nodes)]
    else:
        sto_hosts = controllers[:1]
    cinder_vol = [b.add("cinder-volume", host=h) for h in sto_hosts]

    n_inst = layout.compute_hosts * layout.instances_per_host
    n_nets = max(1, round(n_inst / 6))
    networks = []
    for i in range(n_nets):
        net = b.add("tenant-network", host=None)
        b.g.nodes[net]["host"] = net_hosts[i % len(net_hosts)]
        b.edge(net, l3[i % len(l3)], "depends_on", 1.0)
        b.edge(net, dhcp[i % len(dhcp)], "depends_on", 0.2)
        networks.append(net)
    for h in range(layout.compute_hosts + layout.spare_compute):
        active = h < layout.compute_hosts
        host = b.add("compute", host=None, active=active, group="compute")
        agents = {r: b.add(r, host=host, active=active) for r in COMPUTE_AGENT_ROLES}
        for caller, deps in LOCAL_DEPENDENCIES.items():
            for callee, calls in deps:
                b.edge(agents[caller], agents[callee], "depends_on", calls)
        if not active:
            continue
        for _ in range(layout.instances_per_host):
            # An instance's dependence on its host's libvirt and ovs-agent is resolved per tick
            # through the (mutable) host assignment, since instances migrate.
            inst = b.add("instance", host=host)
            b.edge(inst, networks[int(rng.integers(len(networks)))], "depends_on", 1.0)
            if rng.random() < 0.5:
                k = int(rng.integers(len(cinder_vol)))
                vol = b.add("volume", host=sto_hosts[k])
                b.edge(vol, cinder_vol[k], "depends_on", 1.0)
                b.edge(inst, vol, "depends_on", 0.5)
    # group dependencies of the replicated control plane and of the agents
    by_role: dict[str, list[str]] = {}
    for name, data in b.g.nodes(data=True):
        by_role.setdefault(data["role"], []).append(name)
    for caller_role, deps in ROLE_DEPENDENCIES.items():
        for caller in by_role.get(caller_role, []):
            for callee_role, calls in deps:
                for callee in replicas[callee_role]:
                    b.edge(caller, callee, "depends_on", calls)
    for role in ("keystone", "nova-api", "placement", "neutron-server", "cinder-api", "glance-api"):
        for lb in replicas["haproxy"]:
            for backend in replicas[role]:
                b.edge(lb, backend, "routes_to")
    for role in ("mysql", "rabbitmq"):
        for a in replicas[role]:
            for c in replicas[role]:
                if a != c:
                    b.edge(a, c, "replicates_to")
    return compile_topology(b.g, seed=int(seed), layout=layout)


def _longest_chain(n: int, edges: list[tuple[int, int]]) -> int:
    """Edges on the longest path of the dependency graph over node ids ``0..n-1`` (Kahn's
    order, one pass; what ``networkx.dag_longest_path_length`` gives, at a fraction of its
    cost on a 10,000-node cloud).

    Raises:
        TopologyError: the graph has a cycle (a generator bug, not user input).
    """
    succ: list[list[int]] = [[] for _ in range(n)]
    indegree = [0] * n
    for a, c in edges:
        succ[a].append(c)
        indegree[c] += 1
    order = [v for v in range(n) if indegree[v] == 0]
    longest = [0] * n
    i = 0
    while i < len(order):
        v = order[i]
        i += 1
        for c in succ[v]:
            if longest[v] + 1 > longest[c]:
                longest[c] = longest[v] + 1
            indegree[c] -= 1
            if indegree[c] == 0:
                order.append(c)
    if len(order) < n:
        raise TopologyError("the dependency graph has a cycle")
    return max(longest, default=0)


def compile_topology(g: nx.DiGraph, *, seed: int, layout: Layout) -> Topology:
    """Compile a typed graph into the index arrays of a :class:`Topology`."""
    names = tuple(g.nodes)
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    role = np.array([ROLE_INDEX[g.nodes[v]["role"]] for v in names], dtype=np.intp)
    kind = np.array([int(g.nodes[v]["kind"]) for v in names], dtype=np.int8)
    host_of = np.array([index[g.nodes[v]["host"]] for v in names], dtype=np.intp)
    active = np.array([bool(g.nodes[v]["active"]) for v in names])
    group_names = sorted({g.nodes[v]["group"] for v in names if g.nodes[v]["group"]})
    group_index = {name: i for i, name in enumerate(group_names)}
    group_of = np.array(
        [group_index[g.nodes[v]["group"]] if g.nodes[v]["group"] else -1 for v in names],
        dtype=np.int32,
    )
    members = tuple(np.flatnonzero(group_of == i).astype(np.int32) for i in range(len(group_names)))
    # Replicated control-plane roles share one dependency pool per role; everything else
    # (per-host agents, tenant resources, hosts) is a pool of its own.
    pool = np.full(n, -1, dtype=np.intp)
    next_pool = 0
    for r in CONTROL_ROLES:
        ids = np.flatnonzero(role == ROLE_INDEX[r])
        if ids.size:
            pool[ids] = next_pool
            next_pool += 1
    rest = np.flatnonzero(pool < 0)
    pool[rest] = np.arange(next_pool, next_pool + rest.size, dtype=np.intp)
    n_pools = int(next_pool + rest.size)

    seen: set[tuple[int, int]] = set()
    src, dst_pool, calls = [], [], []
    dependencies: list[tuple[int, int]] = []
    for a, c, data in g.edges(data=True):
        if data["type"] != "depends_on":
            continue
        dependencies.append((index[a], index[c]))
        key = (index[a], int(pool[index[c]]))
        if key in seen:
            continue
        seen.add(key)
        src.append(key[0])
        dst_pool.append(key[1])
        calls.append(float(data.get("calls", 1.0)))
    depth = max(1, _longest_chain(n, dependencies))

    roles = [ROLES[ROLE_NAMES[int(r)]] for r in role]
    proc_kinds = {Kind.SERVICE, Kind.LOAD_BALANCER, Kind.QUEUE, Kind.DATABASE, Kind.CACHE}
    is_process = np.array([r.kind in proc_kinds for r in roles])
    standby = np.zeros(n, dtype=bool)
    standby[kind == Kind.HOST] = True  # bonded uplinks: every host has a standby link
    for r in ("mysql", "rabbitmq", "haproxy"):
        ids = np.flatnonzero(role == ROLE_INDEX[r])
        if ids.size > 1:
            standby[ids] = True
    pinned = np.isin(kind, (Kind.INSTANCE, Kind.NETWORK, Kind.VOLUME))
    edge_arr = np.array(
        [(index[a], index[b], EDGE_TYPES.index(d["type"])) for a, b, d in g.edges(data=True)],
        dtype=np.int64,
    ).reshape(-1, 3)
    return Topology(
        graph=g,
        seed=seed,
        layout=layout,
        names=names,
        index=index,
        kind=kind,
        role=role,
        host_of=host_of,
        pool=pool,
        n_pools=n_pools,
        group_of=group_of,
        groups=tuple(group_names),
        group_members=members,
        initially_active=active,
        standby_capable=standby,
        base_latency=np.array([r.latency for r in roles]),
        base_memory=np.array([r.memory for r in roles]),
        dep_src=np.array(src, dtype=np.intp),
        dep_pool=np.array(dst_pool, dtype=np.intp),
        dep_calls=np.array(calls),
        depth=int(depth),
        is_process=is_process,
        tls=np.array([r.tls for r in roles]),
        writes_disk=np.array([r.writes_disk for r in roles]),
        clustered=np.array([r.clustered for r in roles]),
        pinned=pinned,
        pinned_ids=np.flatnonzero(pinned),
        shared_roles=np.unique(role[~pinned]).astype(np.int64),
        pool2=np.concatenate([pool, pool + n_pools]).astype(np.intp),
        src2=np.concatenate([np.array(src, dtype=np.intp), np.array(src, dtype=np.intp) + n]),
        dpool2=np.concatenate(
            [np.array(dst_pool, dtype=np.intp), np.array(dst_pool, dtype=np.intp) + n_pools]
        ),
        edge_index=edge_arr[:, :2].T.copy(),
        edge_type=edge_arr[:, 2].copy(),
        instance_ids=np.flatnonzero(kind == Kind.INSTANCE),
        stops_on_full_disk=np.array([r.writes_disk for r in roles])
        & np.isin(kind, (Kind.DATABASE, Kind.QUEUE)),
        grouped_ids=np.flatnonzero(group_of >= 0),
        grouped_ids_group=group_of[group_of >= 0],
        is_host=kind == Kind.HOST,
        slots_per_host=layout.instances_per_host + 3,
        group_index=group_index,
    )
