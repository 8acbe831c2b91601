"""The fault catalogue: what each fault is, where it strikes, how it shows, what clears it.

Faults are grouped in families drawn from public chaos catalogues (os-faults, Chaos Mesh,
LitmusChaos) and from the failure classes of Failure-Dataset-OpenStack. The *dynamics* of each
fault (what it does to the arrays tick by tick, and which primitive effects clear it) live in
:mod:`pase_gym.sim.fault_models`; this module is metadata only, so that parsers, prompts and
docs can read it without touching the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "test", "unseen")


@dataclass(frozen=True)
class SignatureTerm:
    """One observable symptom: ``indicator`` at ``scope`` moves past ``threshold``.

    ``scope`` is ``node`` (the faulty node itself), ``host`` (the host it runs on),
    ``hosted`` (the worst of what runs on a host) or ``callers`` (the worst of the nodes that
    depend on it). ``op`` is ``>`` or ``<``.
    """

    scope: str
    indicator: str
    op: str
    threshold: float


@dataclass(frozen=True)
class FaultSpec:
    """Metadata of one fault type."""

    name: str
    family: str
    target: str  # "service", "host", "compute_host", "instance", "queue", "database", ...
    description: str
    signature: tuple[SignatureTerm, ...]
    log_hint: str  # a fragment of the log lines the fault writes
    recovery: str  # the runbook in words; the oracle turns it into a plan
    catalogue: str  # where the fault type comes from


@dataclass(frozen=True)
class FamilySpec:
    """A fault family and the splits it may appear in."""

    name: str
    splits: tuple[str, ...]
    description: str


FAMILIES: dict[str, FamilySpec] = {
    f.name: f
    for f in (
        FamilySpec("process", ("train", "test"), "a service process dies or stops answering"),
        FamilySpec("resource", ("train", "test"), "a node runs out of memory, CPU or disk"),
        FamilySpec("network", ("train", "test"), "links, routes or name resolution break"),
        FamilySpec("deploy", ("train", "test"), "a release or config change breaks a service"),
        FamilySpec("data", ("train", "test"), "the message queue or the database degrades"),
        FamilySpec("infrastructure", ("train", "test"), "hosts and tenants disturb the cloud"),
        FamilySpec("cascade", ("train", "test"), "a slow dependency drags its callers down"),
        FamilySpec("security", ("unseen",), "credentials and certificates stop being valid"),
        FamilySpec("hybrid", ("unseen",), "several resources fail together in one node"),
    )
}

_T = SignatureTerm

FAULTS: dict[str, FaultSpec] = {
    f.name: f
    for f in (
        FaultSpec(
            "process_crash",
            "process",
            "service",
            "The service's process exits and stays down; its replicas take its load.",
            (_T("node", "availability", "<", 0.5),),
            "exited with status",
            "Restart the process.",
            "os-faults kill/restart service; LitmusChaos pod-delete",
        ),
        FaultSpec(
            "process_hang",
            "process",
            "service",
            "The process freezes: sockets accept, nothing answers, CPU drops to idle.",
            (_T("node", "latency", ">", 2.0), _T("node", "cpu", "<", 0.15)),
            "heartbeat missed",
            "A hung process ignores SIGTERM: kill it, then restart it.",
            "os-faults freeze (SIGSTOP); Chaos Mesh process-chaos",
        ),
        FaultSpec(
            "memory_leak",
            "resource",
            "service",
            "A faulty release leaks memory until the kernel kills the process, again and again.",
            (_T("node", "memory", ">", 0.8),),
            "Out of memory",
            "Restarting only buys time: roll the release back.",
            "LitmusChaos pod-memory-hog; Chaos Mesh stress-chaos (memory)",
        ),
        FaultSpec(
            "cpu_hog",
            "resource",
            "host",
            "A runaway process on a host eats its CPU; every service there slows down.",
            (_T("node", "cpu", ">", 0.9),),
            "load average",
            "Kill the runaway process on the host.",
            "LitmusChaos node-cpu-hog; Chaos Mesh stress-chaos (cpu)",
        ),
        FaultSpec(
            "disk_full",
            "resource",
            "disk_host",
            "A host's disk fills up; writes fail and the database on it stops.",
            (_T("node", "disk", ">", 0.97),),
            "No space left on device",
            "Free the disk, then restart what stopped because of it.",
            "LitmusChaos disk-fill; os-faults (filesystem)",
        ),
        FaultSpec(
            "network_partition",
            "network",
            "host",
            "A host's uplink fails: nothing on it can be reached; clustered services on it "
            "fall out of their cluster.",
            (_T("node", "network", "<", 0.05), _T("callers", "error_rate", ">", 0.05)),
            "No route to host",
            "Fail the host over to its standby link, then restart clustered services on it "
            "so they rejoin.",
            "os-faults network partition; Chaos Mesh network-chaos (partition)",
        ),
        FaultSpec(
            "packet_loss",
            "network",
            "host",
            "A host's link drops and delays packets; retransmissions slow everything on it.",
            (_T("node", "network", ">", 0.3), _T("callers", "latency", ">", 0.5)),
            "retransmit",
            "Fail the host over to its standby link.",
            "Chaos Mesh network-chaos (loss, delay); LitmusChaos network-loss",
        ),
        FaultSpec(
            "dns_failure",
            "network",
            "host",
            "A host's resolver config drifts; services there cannot resolve their peers and "
            "cached bad answers linger.",
            (_T("hosted", "error_rate", ">", 0.5), _T("node", "network", ">", 0.02)),
            "Temporary failure in name resolution",
            "Roll the host's config back, then flush its resolver cache.",
            "Chaos Mesh dns-chaos; LitmusChaos pod-dns-error",
        ),
        FaultSpec(
            "bad_deploy",
            "deploy",
            "service",
            "A new release of the service fails part of its requests.",
            (_T("node", "error_rate", ">", 0.2),),
            "Traceback (most recent call last)",
            "Roll the release back.",
            "os-faults (deploy); post-mortems of bad releases",
        ),
        FaultSpec(
            "config_drift",
            "deploy",
            "service",
            "A config value drifts (wrong broker credentials); the service cannot reach a "
            "dependency. The old config only applies after a restart.",
            (_T("node", "error_rate", ">", 0.5),),
            "AccessRefused",
            "Roll the config back, then restart the service.",
            "configuration drift incidents; LitmusChaos (config)",
        ),
        FaultSpec(
            "queue_backlog",
            "data",
            "queue",
            "Messages pile up in the broker faster than consumers drain them; RPCs time out.",
            (_T("node", "latency", ">", 0.2), _T("node", "cpu", "<", 0.9)),
            "queue length",
            "Add consumers (scale nova-conductor) until the backlog drains.",
            "os-faults rabbitmq; RabbitMQ flow-control incidents",
        ),
        FaultSpec(
            "db_lock_contention",
            "data",
            "database",
            "A long transaction holds row locks on the primary; queries queue behind it.",
            (_T("node", "latency", ">", 1.0), _T("callers", "latency", ">", 1.0)),
            "Lock wait timeout exceeded",
            "Fail the writer over to a replica, then restart the old primary to rejoin.",
            "os-faults mysql/galera; Chaos Mesh IO/time chaos",
        ),
        FaultSpec(
            "db_replica_failure",
            "data",
            "database",
            "A database replica desyncs from the cluster and refuses queries.",
            (_T("node", "error_rate", ">", 0.5), _T("node", "cpu", "<", 0.5)),
            "WSREP has not yet prepared node",
            "Fence the replica, then restart it so it resyncs and rejoins.",
            "os-faults galera; Percona/Galera runbooks",
        ),
        FaultSpec(
            "host_power_loss",
            "infrastructure",
            "compute_host",
            "A compute host loses power: its services and instances are gone.",
            (_T("node", "availability", "<", 0.5),),
            "host is down",
            "Disable the host, then evacuate its instances to other hosts.",
            "os-faults power off node; LitmusChaos node-restart",
        ),
        FaultSpec(
            "noisy_neighbour",
            "infrastructure",
            "instance",
            "One tenant instance hogs its host's CPU and I/O; its neighbours slow down.",
            (_T("node", "cpu", ">", 0.9), _T("host", "cpu", ">", 0.85)),
            "steal time",
            "Cap the noisy instance (throttle to half or less).",
            "LitmusChaos node-io-stress; cloud noisy-neighbour incidents",
        ),
        FaultSpec(
            "cascading_timeout",
            "cascade",
            "replicated_service",
            "The service's worker pool jams; callers time out and retry, and the retries "
            "keep it saturated.",
            (_T("node", "latency", ">", 1.5), _T("callers", "error_rate", ">", 0.1)),
            "Timed out waiting for a reply",
            "Add replicas to absorb the retry storm, then restart the jammed one.",
            "Chaos Mesh http-chaos (delay); retry-storm post-mortems",
        ),
        FaultSpec(
            "certificate_expiry",
            "security",
            "tls_service",
            "The TLS certificate of an endpoint expires; every client handshake fails.",
            (_T("node", "error_rate", ">", 0.9), _T("callers", "error_rate", ">", 0.1)),
            "certificate has expired",
            "Renew the certificate, then restart the service to load it.",
            "cert-manager incidents; os-faults (service)",
        ),
        FaultSpec(
            "cpu_memory_deadlock",
            "hybrid",
            "service",
            "Threads spin on a lock while memory pressure grows: CPU pegged, memory climbing, "
            "no answers. It comes back after a restart unless the memory limit is raised.",
            (
                _T("node", "cpu", ">", 0.9),
                _T("node", "memory", ">", 0.7),
                _T("node", "latency", ">", 2.0),
            ),
            "soft lockup",
            "Kill the process, raise its memory allocation, then restart it.",
            "hybrid CPU-memory stress (Chaos Mesh stress-chaos cpu+memory)",
        ),
    )
}

FAULT_NAMES: tuple[str, ...] = tuple(FAULTS)


def faults_for_split(split: str) -> tuple[str, ...]:
    """Fault types whose family may appear in ``split`` (train, test or unseen)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return tuple(f.name for f in FAULTS.values() if split in FAMILIES[f.family].splits)


def list_faults() -> list[dict[str, object]]:
    """Names and metadata of every fault type."""
    return [
        {
            "name": f.name,
            "family": f.family,
            "splits": list(FAMILIES[f.family].splits),
            "target": f.target,
            "description": f.description,
            "signature": [f"{t.indicator}({t.scope}) {t.op} {t.threshold:g}" for t in f.signature],
            "log_hint": f.log_hint,
            "recovery": f.recovery,
            "catalogue": f.catalogue,
        }
        for f in FAULTS.values()
    ]
