"""Log lines: what the cloud's components write, in the style of their real logs.

Three sources, all drawn from the state's own log generator (:attr:`SimState.log_rng`, seeded
per episode apart from the dynamics, so that the text never changes a trajectory):

* **a fault's own line at onset**, drawn from the *symptom classes* its catalogue entry lists
  (:attr:`pase_gym.sim.faults.FaultSpec.symptoms`). Every class but ``disk`` is listed by
  several fault types, and a line is drawn from the whole class: a caller logs a timeout
  whether its callee hangs, its queue backs up or its database lock-waits. No fault type has
  a line of its own (``tests/sim/test_logs.py`` checks it), except that a full disk says so,
  as it does on a real host;
* **victims**: the callers of a node that stopped answering, answers slowly or fails log what
  a client sees (connection refused, a timeout, a 500), in oslo.messaging, oslo.db or HTTP
  client wording by what the callee is. There are many callers for one root cause, so the
  victims are louder than the root cause;
* **background**: warnings a healthy OpenStack writes anyway (a slow RPC, an aborted MySQL
  connection, a flapping haproxy check, a kernel notice), at a steady rate per node.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pase_gym.sim.roles import ROLE_NAMES, Kind
from pase_gym.sim.state import LogLine, SimState
from pase_gym.sim.topology import Topology

# Placeholders: {node} the node writing, {peer} the other side, {n} a number drawn per line,
# {port} the peer's port.
SYMPTOMS: Mapping[str, tuple[tuple[str, str], ...]] = {
    # a process went away
    "exited": (
        ("ERROR", "systemd: {node}.service: Main process exited, code=killed, status=9/KILL"),
        ("ERROR", "systemd: {node}.service: Failed with result 'exit-code'."),
        ("WARNING", "oslo_service.service [-] Caught SIGTERM, stopping children"),
    ),
    # something answers slowly or not at all, seen from the node itself or its balancer
    "slow": (
        (
            "ERROR",
            "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to "
            "message ID {n}",
        ),
        (
            "WARNING",
            "haproxy: Server {node} is DOWN, reason: Layer7 timeout, check duration: {n}ms",
        ),
        ("WARNING", "eventlet.wsgi.server [-] Request took {n} ms to complete"),
    ),
    # Python stack traces of a service that runs but fails its requests
    "stack_trace": (
        (
            "ERROR",
            "oslo_messaging.rpc.server [-] Exception during message handling: Traceback (most "
            "recent call last)",
        ),
        (
            "ERROR",
            "{node} [-] Unexpected exception in API method: Traceback (most recent call last)",
        ),
        (
            "ERROR",
            "oslo_service.service [-] Error starting thread.: Traceback (most recent call last)",
        ),
    ),
    # credentials, tokens, certificates
    "auth": (
        (
            "ERROR",
            "oslo.messaging._drivers.impl_rabbit [-] Connection failed: ACCESS_REFUSED - Login "
            "was refused using authentication mechanism AMQPLAIN",
        ),
        ("WARNING", "keystonemiddleware.auth_token [-] Authorization failed for token"),
        ("ERROR", "ssl.SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    ),
    # the node cannot reach a peer (routes, names, or the peer itself)
    "unreachable": (
        (
            "ERROR",
            "oslo.messaging._drivers.impl_rabbit [-] AMQP server on {peer}:5672 is unreachable: "
            "[Errno 113] EHOSTUNREACH. Trying again in 1 seconds.",
        ),
        ("ERROR", "socket.gaierror: [Errno -3] Temporary failure in name resolution"),
        ("WARNING", "nova.servicegroup.drivers.db [-] Lost connection to {peer}: No route to host"),
    ),
    # the kernel or a runtime under CPU or memory pressure
    "resource": (
        ("WARNING", "kernel: INFO: task {node}:{n} blocked for more than 120 seconds."),
        ("WARNING", "kernel: {node} invoked oom-killer: gfp_mask=0x100cca, order=0"),
        ("WARNING", "kernel: hrtimer: interrupt took {n} ns"),
        ("WARNING", "rabbitmq: memory resource limit alarm set on node {node}"),
    ),
    # MySQL / Galera
    "db": (
        (
            "ERROR",
            "(pymysql.err.OperationalError) (1205, 'Lock wait timeout exceeded; try restarting "
            "transaction')",
        ),
        ("ERROR", "mysqld: WSREP: Failed to prepare for incremental state transfer"),
        ("WARNING", "mysqld: InnoDB: page_cleaner: 1000ms intended loop took {n}ms"),
    ),
    # a filesystem that filled up (what a real host says too)
    "disk": (
        ("ERROR", "OSError: [Errno 28] No space left on device"),
        (
            "ERROR",
            "mysqld: Disk is full writing './ib_logfile0' (Errcode: 28). Waiting for someone to "
            "free space...",
        ),
    ),
}

# What a caller logs about a callee, by what the callee is and how it fails.
_CLIENT: Mapping[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("db", "down"): (
        (
            "ERROR",
            "oslo_db.sqlalchemy.engines [-] Database connection was found disconnected; "
            "reconnecting: DBConnectionError: (2013, 'Lost connection to MySQL server during "
            "query')",
        ),
        (
            "ERROR",
            "oslo_db.sqlalchemy.engines [-] DBConnectionError: (2003, \"Can't connect to MySQL "
            "server on '{peer}'\")",
        ),
        ("WARNING", "oslo_db.sqlalchemy.engines [-] SQL connection failed. {n} attempts left."),
    ),
    ("queue", "down"): (
        (
            "ERROR",
            "oslo.messaging._drivers.impl_rabbit [-] AMQP server on {peer}:5672 is unreachable: "
            "[Errno 111] ECONNREFUSED. Trying again in 1 seconds.",
        ),
    ),
    ("queue", "slow"): (
        (
            "ERROR",
            "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to "
            "message ID {n}",
        ),
    ),
    ("service", "down"): (
        (
            "ERROR",
            "keystoneauth1.exceptions.connection.ConnectFailure: Unable to establish connection "
            "to http://{peer}:{port}",
        ),
        (
            "WARNING",
            "haproxy: Server {peer} is DOWN, reason: Layer4 connection problem, info: "
            '"Connection refused"',
        ),
    ),
    ("service", "slow"): (
        (
            "ERROR",
            "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to "
            "message ID {n}",
        ),
        ("WARNING", "urllib3.connectionpool [-] Read timed out. (read timeout={n})"),
    ),
    ("service", "failing"): (
        (
            "ERROR",
            "{node} [-] Unexpected API Error. 500 Internal Server Error from http://{peer}:{port}",
        ),
        ("WARNING", "oslo_messaging.rpc.client [-] Remote error from {peer}: RemoteError"),
    ),
}

# (level, text, roles that write it or None for any process) a healthy cloud logs anyway
BACKGROUND: tuple[tuple[str, str, frozenset[str] | None], ...] = (
    (
        "WARNING",
        "oslo_messaging._drivers.amqpdriver [-] Number of call queues is {n}, greater than "
        "warning threshold: 10.",
        None,
    ),
    (
        "ERROR",
        "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message "
        "ID {n}",
        None,
    ),
    ("WARNING", "eventlet.wsgi.server [-] Request took {n} ms to complete", None),
    ("WARNING", "urllib3.connectionpool [-] Read timed out. (read timeout={n})", None),
    (
        "WARNING",
        "mysqld: Aborted connection {n} to db: 'nova' user: 'nova' (Got timeout reading "
        "communication packets)",
        frozenset({"mysql"}),
    ),
    (
        "WARNING",
        "rabbitmq: closing AMQP connection <0.{n}.0>: client unexpectedly closed TCP connection",
        frozenset({"rabbitmq"}),
    ),
    ("WARNING", "kernel: hrtimer: interrupt took {n} ns", None),
    (
        "WARNING",
        "nova.compute.manager [-] While synchronizing instance power states, found {n} "
        "instances in the database and {n} instances on the hypervisor.",
        frozenset({"nova-compute"}),
    ),
    (
        "WARNING",
        "neutron.agent.linux.utils [-] Exit code: 2; Stderr: RTNETLINK answers: File exists",
        frozenset({"ovs-agent", "l3-agent", "dhcp-agent"}),
    ),
    (
        "WARNING",
        "haproxy: Server {node} is DOWN, reason: Layer7 timeout, check duration: {n}ms",
        None,
    ),
    ("WARNING", "keystonemiddleware.auth_token [-] Authorization failed for token", None),
)

BACKGROUND_RATE = 0.0005
"""Background lines per simulated second per in-service process (0.1/s on a 200-node cloud)."""
VICTIM_RATE = 0.05
"""Lines per simulated second each caller of a failing node writes about it."""
MAX_VICTIMS = 8
"""Callers that log about one failing node in one chunk, at most."""

_PORTS = {"db": 3306, "queue": 5672}
_FAILING_ERR = 0.2  # error share from which a callee counts as failing its requests


def _fill(text: str, rng: np.random.Generator, node: str, peer: str, port: int) -> str:
    if "{" not in text:
        return text
    return text.format(node=node, peer=peer, port=port, n=int(rng.integers(11, 120)))


def onset_line(state: SimState, node: int, symptoms: tuple[str, ...]) -> None:
    """Write a fault's line at onset: a template drawn from one of its symptom classes."""
    if not symptoms or state.quiet:
        return
    state.queue_log(_write_onset, state.tick, node, symptoms, int(state.host_of[node]))


def _write_onset(
    state: SimState, tick: int, node: int, symptoms: tuple[str, ...], host: int
) -> None:
    rng = state.log_rng
    cls = symptoms[int(rng.integers(len(symptoms)))]
    level, text = SYMPTOMS[cls][int(rng.integers(len(SYMPTOMS[cls])))]
    peer = _a_peer(state.topo, node, host, rng)
    name = state.topo.names[node]
    state.write_lines([LogLine(tick, name, level, _fill(text, rng, name, peer, 8774))])


def symptom_line(state: SimState, node: int, symptom: str) -> None:
    """Write one line of a symptom class on ``node`` (a fault's later line)."""
    onset_line(state, node, (symptom,))


def _a_peer(topo: Topology, node: int, host: int, rng: np.random.Generator) -> str:
    """Someone ``node`` talks to: a member of a pool it calls, else its host."""
    tables = _tables(topo)
    pools = tables.pools_of[node]
    if pools.size == 0:
        return topo.names[host]
    pool = int(pools[int(rng.integers(pools.size))])
    return topo.names[int(tables.first_member[pool])]


class _Tables:
    """What :func:`emit` reads of a topology, computed once per topology (it never changes)."""

    def __init__(self, topo: Topology) -> None:
        n_pools = int(topo.pool.max()) + 1 if topo.pool.size else 0
        self.pools_of = [topo.dep_pool[topo.dep_src == i] for i in range(topo.n)]
        self.first_member = np.full(max(n_pools, 1), -1, dtype=np.intp)
        for pool in range(n_pools):
            members = np.flatnonzero(topo.pool == pool)
            if members.size:
                self.first_member[pool] = members[0]
        # per pool: its callers that are processes, sorted (np.unique order)
        self.callers = []
        for pool in range(n_pools):
            callers = np.unique(topo.dep_src[topo.dep_pool == pool])
            self.callers.append(callers[topo.is_process[callers]])
        self.kind = [_callee_class(topo, i) for i in range(topo.n)]
        self.pool = topo.pool.tolist()


_TABLES: dict[int, tuple[Topology, _Tables]] = {}
_NONE = np.zeros(0, dtype=np.intp)


def _tables(topo: Topology) -> _Tables:
    hit = _TABLES.get(id(topo))
    if hit is None or hit[0] is not topo:
        if len(_TABLES) > 64:
            _TABLES.clear()
        hit = (topo, _Tables(topo))
        _TABLES[id(topo)] = hit
    return hit[1]


def _callee_class(topo: Topology, node: int) -> str:
    role = ROLE_NAMES[int(topo.role[node])]
    kind = int(topo.kind[node])
    if role == "mysql" or kind == Kind.DATABASE:
        return "db"
    if kind == Kind.QUEUE:
        return "queue"
    return "service"


def emit(state: SimState, dt: int) -> None:
    """Write the victims' and the background lines of the last ``dt`` ticks.

    Reads only the last evaluation (which nodes work, their errors and latencies), never the
    faults.
    """
    if dt <= 0 or state.evaluated_at != state.tick or state.quiet:
        return
    t = state.topo
    procs = np.flatnonzero(state.in_service() & t.is_process & state.up)
    # victims: callers of nodes that do not answer, answer slowly or fail
    served = procs[(state.route_w[procs] > 0) | (t.kind[procs] != Kind.DATABASE)]
    down = served[~state.works[served]]
    slow = served[state.works[served] & (state.lat[served] > state.slo_latency[served])]
    failing = served[state.works[served] & (state.err[served] > _FAILING_ERR)]
    state.queue_log(
        _write_chunk,
        state.tick,
        dt,
        (down.tolist(), slow.tolist(), failing.tolist()),
        procs,
        state.active.copy(),
        state.host_of.copy(),
    )


def _write_chunk(
    state: SimState,
    tick: int,
    dt: int,
    victims: tuple[list[int], list[int], list[int]],
    procs: np.ndarray,
    active: np.ndarray,
    host_of: np.ndarray,
) -> None:
    """The lines of one chunk that :func:`emit` queued, from what it saw then."""
    t = state.topo
    rng = state.log_rng
    tables = _tables(t)
    p = min(1.0, VICTIM_RATE * dt)
    names = t.names
    lines: list[LogLine] = []
    for how, nodes in zip(("down", "slow", "failing"), victims, strict=True):
        for callee in nodes:
            cls = tables.kind[callee]
            templates = _CLIENT.get((cls, how)) or _CLIENT[("service", how)]
            pool = tables.pool[callee]
            callers = tables.callers[pool] if pool >= 0 else _NONE
            callers = callers[active[callers]]
            callers = callers[rng.random(callers.size) < p][:MAX_VICTIMS]
            if not callers.size:
                continue
            peer = names[callee]
            port = _PORTS.get(cls, 8774)
            for caller in callers.tolist():
                level, text = templates[int(rng.integers(len(templates)))]
                if "{" in text:  # as _fill, inlined: a number is drawn for every filled line
                    text = text.format(
                        node=names[caller], peer=peer, port=port, n=int(rng.integers(11, 120))
                    )
                lines.append(LogLine(tick, names[caller], level, text))
    # background: a healthy cloud's warnings
    if procs.size:
        count = int(rng.poisson(BACKGROUND_RATE * procs.size * dt))
        for _ in range(count):
            level, text, roles = BACKGROUND[int(rng.integers(len(BACKGROUND)))]
            pick = procs
            if roles is not None:
                pick = procs[np.isin(t.role[procs], [r for r in _role_ids(roles)])]
                if pick.size == 0:
                    continue
            node = int(pick[int(rng.integers(pick.size))])
            peer = _a_peer(t, node, int(host_of[node]), rng)
            text = _fill(text, rng, names[node], peer, 8774)
            lines.append(LogLine(tick, names[node], level, text))
    if lines:
        state.write_lines(lines)


def _role_ids(roles: frozenset[str]) -> list[int]:
    return [i for i, name in enumerate(ROLE_NAMES) if name in roles]
