"""Node kinds and OpenStack roles: the vocabulary of the topology.

A *role* is what a node does (``nova-api``, ``compute``, ``instance``); a *kind* is the coarse
type the domain model speaks of (service, host, instance, ...). Role tables here drive the
topology generator, the workload and the fault targeting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Kind(IntEnum):
    """Coarse node type."""

    SERVICE = 0
    HOST = 1
    INSTANCE = 2
    NETWORK = 3
    VOLUME = 4
    LOAD_BALANCER = 5
    QUEUE = 6
    DATABASE = 7
    CACHE = 8


KIND_NAMES = {k: k.name.lower() for k in Kind}
PROCESS_KINDS = (Kind.SERVICE, Kind.LOAD_BALANCER, Kind.QUEUE, Kind.DATABASE, Kind.CACHE)


@dataclass(frozen=True)
class Role:
    """What a node does.

    Attributes:
        name: role name, also the prefix of node names (``nova-api-2``).
        kind: the coarse kind.
        (Capacities are not per role: the generator sizes every replica so that the workload
        profile runs it at a seeded, healthy utilisation; see :mod:`pase_gym.sim.topology`.)
        latency: service time in seconds at zero load.
        memory: resident memory share of its allocation when healthy.
        scalable: whether ``ScaleOut``/``ScaleIn`` may change the replica count.
        tls: whether the role terminates TLS (certificate faults).
        writes_disk: whether the role stops when its host's disk is full.
        clustered: whether the role forms a cluster that a partition splits.
    """

    name: str
    kind: Kind
    latency: float = 0.02
    memory: float = 0.35
    scalable: bool = False
    tls: bool = False
    writes_disk: bool = False
    clustered: bool = False


_S = Kind.SERVICE
ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        # control plane (replicated on controllers, behind haproxy)
        Role("keystone", _S, 0.03, 0.40, scalable=True, tls=True),
        Role("nova-api", _S, 0.04, 0.45, scalable=True, tls=True),
        Role("nova-scheduler", _S, 0.03, 0.35, scalable=True),
        Role("nova-conductor", _S, 0.02, 0.40, scalable=True),
        Role("placement", _S, 0.02, 0.30, scalable=True, tls=True),
        Role("neutron-server", _S, 0.04, 0.45, scalable=True, tls=True),
        Role("cinder-api", _S, 0.03, 0.35, scalable=True, tls=True),
        Role("cinder-scheduler", _S, 0.02, 0.30, scalable=True),
        Role("glance-api", _S, 0.05, 0.40, scalable=True, tls=True, writes_disk=True),
        Role("rabbitmq", Kind.QUEUE, 0.005, 0.30, writes_disk=True, clustered=True),
        Role("mysql", Kind.DATABASE, 0.008, 0.50, writes_disk=True, clustered=True),
        Role("memcached", Kind.CACHE, 0.002, 0.30, scalable=True),
        Role("haproxy", Kind.LOAD_BALANCER, 0.002, 0.20, tls=True),
        # hosts
        Role("controller", Kind.HOST, 0.0, 0.0),
        Role("compute", Kind.HOST, 0.0, 0.0, scalable=True),
        Role("network-node", Kind.HOST, 0.0, 0.0),
        Role("storage", Kind.HOST, 0.0, 0.0),
        # per-host agents
        Role("nova-compute", _S, 0.05, 0.35),
        Role("libvirt", _S, 0.02, 0.30),
        Role("ovs-agent", _S, 0.01, 0.25),
        Role("l3-agent", _S, 0.02, 0.30),
        Role("dhcp-agent", _S, 0.02, 0.30),
        Role("cinder-volume", _S, 0.05, 0.35, writes_disk=True),
        # tenant resources
        Role("instance", Kind.INSTANCE, 0.01, 0.50),
        Role("tenant-network", Kind.NETWORK, 0.002, 0.0),
        Role("volume", Kind.VOLUME, 0.004, 0.0),
    )
}
ROLE_NAMES: tuple[str, ...] = tuple(ROLES)
ROLE_INDEX: dict[str, int] = {name: i for i, name in enumerate(ROLE_NAMES)}

CONTROL_ROLES = (
    "keystone",
    "nova-api",
    "nova-scheduler",
    "nova-conductor",
    "placement",
    "neutron-server",
    "cinder-api",
    "cinder-scheduler",
    "glance-api",
    "rabbitmq",
    "mysql",
    "memcached",
    "haproxy",
)
API_ROLES = ("keystone", "nova-api", "placement", "neutron-server", "cinder-api", "glance-api")
COMPUTE_AGENT_ROLES = ("nova-compute", "libvirt", "ovs-agent")
NETWORK_AGENT_ROLES = ("l3-agent", "dhcp-agent")

# Role-level dependencies of the control plane: caller role -> roles it calls, with the number
# of calls per request it serves (used for latency composition).
ROLE_DEPENDENCIES: dict[str, tuple[tuple[str, float], ...]] = {
    "haproxy": (),
    "keystone": (("mysql", 1.0), ("memcached", 1.0)),
    "nova-api": (("keystone", 1.0), ("mysql", 1.0), ("rabbitmq", 0.5), ("memcached", 0.5)),
    "nova-scheduler": (("rabbitmq", 0.5), ("placement", 1.0), ("mysql", 1.0)),
    "nova-conductor": (("rabbitmq", 0.5), ("mysql", 2.0)),
    "placement": (("mysql", 1.0), ("keystone", 0.2)),
    "neutron-server": (("mysql", 2.0), ("rabbitmq", 0.5), ("keystone", 0.5)),
    "cinder-api": (("mysql", 1.0), ("rabbitmq", 0.5), ("keystone", 0.5)),
    "cinder-scheduler": (("rabbitmq", 0.5), ("mysql", 1.0)),
    "glance-api": (("mysql", 1.0), ("keystone", 0.5)),
    "rabbitmq": (),
    "mysql": (),
    "memcached": (),
    # agents call the replicated control plane (group deps) and same-host agents (local deps)
    "nova-compute": (
        ("rabbitmq", 0.5),
        ("neutron-server", 0.3),
        ("glance-api", 0.2),
        ("nova-conductor", 0.5),
    ),
    "libvirt": (),
    # The agents' serving path (the tenant data plane) needs only the broker to stay in sync;
    # their calls into neutron-server happen on the control plane's request path, which the
    # event chains model.
    "ovs-agent": (("rabbitmq", 0.3),),
    "l3-agent": (("rabbitmq", 0.3),),
    "dhcp-agent": (("rabbitmq", 0.3),),
    "cinder-volume": (("rabbitmq", 0.5), ("mysql", 0.5)),
}
# Same-host dependencies: caller role -> roles on the same host.
LOCAL_DEPENDENCIES: dict[str, tuple[tuple[str, float], ...]] = {
    "nova-compute": (("libvirt", 1.0), ("ovs-agent", 0.3)),
}

# Request types of the workload: per request, the visits it pays to each role.
REQUEST_TYPES: dict[str, dict[str, float]] = {
    "boot": {
        "haproxy": 4,
        "nova-api": 1,
        "keystone": 1,
        "nova-scheduler": 1,
        "placement": 2,
        "nova-conductor": 2,
        "nova-compute": 1,
        "libvirt": 1,
        "glance-api": 1,
        "neutron-server": 2,
        "ovs-agent": 1,
        "dhcp-agent": 1,
        "rabbitmq": 4,
        "mysql": 6,
        "memcached": 2,
    },
    "volume": {
        "haproxy": 3,
        "cinder-api": 2,
        "cinder-scheduler": 1,
        "cinder-volume": 2,
        "nova-api": 1,
        "nova-compute": 1,
        "keystone": 1,
        "rabbitmq": 3,
        "mysql": 4,
        "memcached": 1,
    },
    "network": {
        "haproxy": 3,
        "neutron-server": 3,
        "l3-agent": 1,
        "dhcp-agent": 1,
        "ovs-agent": 1,
        "keystone": 1,
        "rabbitmq": 2,
        "mysql": 4,
        "memcached": 1,
    },
    "cleanup": {
        "haproxy": 3,
        "nova-api": 1,
        "nova-compute": 1,
        "cinder-api": 1,
        "cinder-volume": 1,
        "neutron-server": 1,
        "keystone": 1,
        "rabbitmq": 2,
        "mysql": 3,
    },
}

# Workload profiles, after the data set's campaigns: requests per tick per 100 instances.
PROFILES: dict[str, dict[str, float]] = {
    "deployment": {"boot": 10.0, "volume": 5.0, "network": 5.0, "cleanup": 4.0},
    "network": {"boot": 4.0, "volume": 2.0, "network": 14.0, "cleanup": 3.0},
    "storage": {"boot": 4.0, "volume": 14.0, "network": 2.0, "cleanup": 4.0},
}
PROFILE_ALIASES = {"DEPL": "deployment", "NET": "network", "STO": "storage"}

# Roles an operator can scale (``ScaleOut``/``ScaleIn`` groups); ``compute`` adds hosts.
SCALABLE_ROLES: tuple[str, ...] = tuple(name for name, role in ROLES.items() if role.scalable)
HOST_ROLES: tuple[str, ...] = tuple(name for name, role in ROLES.items() if role.kind == Kind.HOST)
