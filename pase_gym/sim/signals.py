"""Observable signals: metric windows, alarms, log lines and the OpenStack API/RPC event stream.

Nothing here reads the injected faults: every signal is computed from the simulated health
and traffic, the way a monitoring stack would see them. Event names follow the vocabulary of
Failure-Dataset-OpenStack: ``<client>_<METHOD>_<status>`` for REST calls of the workload and
``<topic>_<method>`` (with ``_ERROR`` when the tracer saw an error) for RPCs. Failures show
mostly as *missing* events (a call that never happened), sometimes as error variants.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pase_gym.sim.roles import PROFILES, ROLE_INDEX
from pase_gym.sim.state import IND, LogLine, SimState

# Per request type: (event name, role whose health decides whether it happens, count per
# request, name of the error variant or None). Order matters: a request that fails at one
# event emits none of the later ones (the omission signature of the data set) -- except the
# client's status polls (POLL_EVENTS), which follow every request the API accepted.
EVENT_CHAINS: dict[str, tuple[tuple[str, str, float, str | None], ...]] = {
    "boot": (
        ("novaclient_POST_202", "nova-api", 1.0, "novaclient_POST_500"),
        (
            "conductor_schedule_and_build_instances",
            "nova-conductor",
            1.0,
            "conductor_schedule_and_build_instances_ERROR",
        ),
        (
            "scheduler_select_destinations",
            "nova-scheduler",
            1.0,
            "scheduler_select_destinations_ERROR",
        ),
        ("compute_build_and_run_instance", "nova-compute", 1.0, None),
        ("q-plugin_get_ports", "neutron-server", 1.0, None),
        ("dhcp_agent_port_create_end", "dhcp-agent", 1.0, "dhcp_agent_port_create_end_ERROR"),
        ("q-plugin_update_device_list", "ovs-agent", 1.0, "q-plugin_update_device_list_ERROR"),
        ("compute_external_instance_event", "nova-compute", 1.0, None),
        ("novaclient_GET_200", "nova-api", 2.0, "novaclient_GET_500"),
    ),
    "volume": (
        ("cinderclient_POST_202", "cinder-api", 1.0, "cinderclient_POST_500"),
        (
            "cinder-scheduler_create_volume",
            "cinder-scheduler",
            1.0,
            "cinder-scheduler_create_volume_ERROR",
        ),
        (
            "cinder-volume.localhost.localdomain@lvm_create_volume",
            "cinder-volume",
            1.0,
            "cinder-volume.localhost.localdomain@lvm_create_volume_ERROR",
        ),
        ("compute_reserve_block_device_name", "nova-compute", 1.0, None),
        (
            "cinder-volume.localhost.localdomain@lvm_initialize_connection",
            "cinder-volume",
            1.0,
            "cinder-volume.localhost.localdomain@lvm_initialize_connection_ERROR",
        ),
        ("compute_attach_volume", "nova-compute", 1.0, None),
        (
            "cinder-volume.localhost.localdomain@lvm_attach_volume",
            "cinder-volume",
            1.0,
            "cinder-volume.localhost.localdomain@lvm_attach_volume_ERROR",
        ),
        ("cinderclient_GET_200", "cinder-api", 2.0, "cinderclient_GET_500"),
    ),
    "network": (
        ("neutronclient_POST_201", "neutron-server", 3.0, None),
        ("neutron-vo-Network-1.0_push", "neutron-server", 1.0, None),
        ("dhcp_agent_network_create_end", "dhcp-agent", 1.0, None),
        ("dhcp_agent_subnet_create_end", "dhcp-agent", 1.0, None),
        ("l3_agent_routers_updated", "l3-agent", 1.0, None),
        ("q-l3-plugin_sync_routers", "l3-agent", 1.0, "q-l3-plugin_sync_routers_ERROR"),
        ("neutronclient_PUT_200", "neutron-server", 1.0, None),
    ),
    "cleanup": (
        ("novaclient_DELETE_204", "nova-api", 1.0, "novaclient_DELETE_500"),
        ("compute_terminate_instance", "nova-compute", 1.0, None),
        ("cinderclient_DELETE_202", "cinder-api", 1.0, "cinderclient_DELETE_500"),
        (
            "cinder-volume.localhost.localdomain@lvm_delete_volume",
            "cinder-volume",
            1.0,
            "cinder-volume.localhost.localdomain@lvm_delete_volume_ERROR",
        ),
        ("neutronclient_DELETE_204", "neutron-server", 2.0, None),
        ("l3_agent_router_deleted", "l3-agent", 1.0, None),
    ),
}


POLL_EVENTS: frozenset[str] = frozenset({"novaclient_GET_200", "cinderclient_GET_200"})
"""The workload client's status polls. A client polls a request's resource once the API has
accepted it (the chain's first step), whether or not the request then completes: a resource
that never becomes ready is polled until the client's timeout, about as often as a healthy one
is polled until it is ready (on the train side of Failure-Dataset-OpenStack, DEPL's instance
failures keep 90% of the healthy runs' ``novaclient_GET_200`` while losing 70% of their
``novaclient_POST_202``). Only the accepting step's role and the poll's own role decide them."""


def _vocabulary() -> tuple[str, ...]:
    names: list[str] = []
    for chain in EVENT_CHAINS.values():
        for name, _, _, error in chain:
            for item in (name, error):
                if item and item not in names:
                    names.append(item)
    return tuple(names)


EVENT_NAMES: tuple[str, ...] = _vocabulary()
EVENT_INDEX = {name: i for i, name in enumerate(EVENT_NAMES)}
EVENT_SCALE = 0.5  # events traced per request (the tracer samples half)

# (indicator, op, threshold, alarm name); hosts are checked only on cpu/memory/disk/avail.
ALARM_RULES: tuple[tuple[str, str, float, str], ...] = (
    ("availability", "<", 0.5, "NodeDown"),
    ("error_rate", ">", 0.1, "HighErrorRate"),
    ("latency", ">", 1.0, "HighLatency"),
    ("cpu", ">", 0.9, "HighCPU"),
    ("memory", ">", 0.85, "HighMemory"),
    ("disk", ">", 0.95, "DiskFull"),
    ("network", ">", 0.5, "NetworkSaturation"),
)


def _compile_chains() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Matrices that turn per-role success rates into expected event counts in one pass.

    For every (request, event) step k of a chain, ``before[k]`` counts the roles of the steps
    before it and ``upto[k]`` those up to and including it, so that the share of requests
    reaching step k is ``exp(before[k] @ log ok)`` and the share completing it
    ``exp(upto[k] @ log ok)``. A status poll (:data:`POLL_EVENTS`) is reached by every request
    the chain's first step accepted: its ``before`` counts that step's role only.
    """
    n_roles = len(ROLE_INDEX)
    steps = [(r, step) for r, chain in EVENT_CHAINS.items() for step in chain]
    before = np.zeros((len(steps), n_roles))
    upto = np.zeros((len(steps), n_roles))
    request = np.zeros(len(steps), dtype=np.intp)
    target = np.zeros(len(steps), dtype=np.intp)
    error = np.full(len(steps), -1, dtype=np.intp)
    names = list(EVENT_CHAINS)
    k = 0
    for r, chain in EVENT_CHAINS.items():
        seen = np.zeros(n_roles)
        accepting = np.zeros(n_roles)
        accepting[ROLE_INDEX[chain[0][1]]] = 1.0
        for i, (name, role, _per, err) in enumerate(chain):
            if name in POLL_EVENTS and i > 0:
                before[k] = accepting
                upto[k] = accepting
                upto[k, ROLE_INDEX[role]] += 1.0
            else:
                before[k] = seen * 1.0
                seen[ROLE_INDEX[role]] += 1.0
                upto[k] = seen
            request[k] = names.index(r)
            target[k] = EVENT_INDEX[name]
            error[k] = EVENT_INDEX[err] if err else -1
            k += 1
    per = np.array([step[2] for _, step in steps])
    return np.vstack([before, upto]), request, target, error, per


_CHAIN_MATRIX, _CHAIN_REQUEST, _CHAIN_EVENT, _CHAIN_ERROR, _CHAIN_PER = _compile_chains()
_N_STEPS = _CHAIN_EVENT.size
_HAS_ERROR = _CHAIN_ERROR >= 0
# per profile: requests per tick per 100 instances behind each chain step, times events/request
_STEP_RATES = {
    profile: np.array([rates.get(r, 0.0) for r in EVENT_CHAINS])[_CHAIN_REQUEST] * _CHAIN_PER
    for profile, rates in PROFILES.items()
}


def accumulate_events(state: SimState, dt: int, rng: np.random.Generator | None) -> None:
    """Add the expected API/RPC events of the last ``dt`` ticks to ``state.event_counts``.

    A request that fails at one step emits none of the later events of its chain (the
    omission signature of the data set), but the client still polls every request the API
    accepted (:data:`POLL_EVENTS`); a failing step with an error variant emits it for 30% of
    its failures. Counts are expectations; :func:`observe` draws the noise.
    """
    if state.event_counts.shape != (len(EVENT_NAMES),):
        state.event_counts = np.zeros(len(EVENT_NAMES))
    log_ok = np.log(np.clip(1.0 - state.role_err, 1e-12, 1.0))
    shares = np.exp(_CHAIN_MATRIX @ log_ok)
    reach, done = shares[:_N_STEPS], shares[_N_STEPS:]
    instances = float(np.count_nonzero(state.active[state.topo.instance_ids]))
    expected = _STEP_RATES[state.profile] * (instances / 100.0 * dt * EVENT_SCALE)
    n_events = len(EVENT_NAMES)
    state.event_counts += np.bincount(_CHAIN_EVENT, weights=expected * done, minlength=n_events)
    state.event_counts += np.bincount(
        _CHAIN_ERROR[_HAS_ERROR],
        weights=(expected * (reach - done))[_HAS_ERROR] * 0.3,
        minlength=n_events,
    )


class LogLines(Sequence[LogLine]):
    """An observation's log lines: those written since ``start`` (a tick), as the log stood
    when the observation was made.

    They are taken from the state's log when first read (:meth:`SimState.wait_for_log`): a
    log nobody reads is never written, and one read late reads as it would have at once.
    """

    def __init__(self, state: SimState | None = None, start: int = 0) -> None:
        self._lines: list[LogLine] | None = None
        self._state = state
        self._start = start
        if state is None:
            self._lines = []
        else:
            state.wait_for_log(self)

    @classmethod
    def of(cls, lines: list[LogLine]) -> LogLines:
        """Lines given outright."""
        out = cls()
        out._lines = list(lines)
        return out

    def settle(self, log: list[LogLine]) -> None:
        """Take the lines from ``log`` as it stands now (the state calls it)."""
        first = len(log)
        while first > 0 and log[first - 1].tick >= self._start:  # the log is in tick order
            first -= 1
        self._lines = log[first:]
        self._state = None

    def _all(self) -> list[LogLine]:
        if self._lines is None:
            assert self._state is not None
            self._state.flush_log()  # settles these lines on the way
        assert self._lines is not None
        return self._lines

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[LogLine]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LogLines):
            return self._all() == other._all()
        return isinstance(other, list) and self._all() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())


@dataclass
class Observation:
    """What a monitoring stack shows at one moment (no ground truth inside)."""

    tick: int
    metrics: np.ndarray  # (n, 8) current health, with measurement noise
    window: np.ndarray  # (W, n, 8) the last W evaluations, oldest first, zero-padded
    alarms: list[tuple[str, str, float]]  # (node, alarm, value)
    logs: Sequence[LogLine]  # a LogLines (read lazily) or a list
    events: np.ndarray  # counts per EVENT_NAMES since the last observation
    probes: list[Any] = field(default_factory=list)  # probe reports since the last observation

    def metric(self, node: int, indicator: str) -> float:
        """One indicator of one node."""
        return float(self.metrics[node, IND[indicator]])


_ALARM_COLS = np.array([IND[rule[0]] for rule in ALARM_RULES])
_ALARM_SIGN = np.array([1.0 if rule[1] == ">" else -1.0 for rule in ALARM_RULES])
_ALARM_THRESHOLD = np.array([rule[2] for rule in ALARM_RULES])
_ALARM_NAMES = tuple(rule[3] for rule in ALARM_RULES)


def alarm_matrix(state: SimState, metrics: np.ndarray) -> np.ndarray:
    """(n, len(ALARM_RULES)) booleans: which alarm fires on which in-service node."""
    values = metrics[:, _ALARM_COLS]
    firing = (values - _ALARM_THRESHOLD) * _ALARM_SIGN > 0
    firing &= state.in_service()[:, None]
    return firing


def alarms_of(state: SimState, metrics: np.ndarray) -> list[tuple[str, str, float]]:
    """Threshold alarms on in-service nodes, sorted by node then alarm name."""
    nodes, rules = np.nonzero(alarm_matrix(state, metrics))
    names = state.topo.names
    out = [
        (names[i], _ALARM_NAMES[r], float(metrics[i, _ALARM_COLS[r]]))
        for i, r in zip(nodes.tolist(), rules.tolist(), strict=True)
    ]
    out.sort()
    return out


def baseline_event_rates(state: SimState) -> np.ndarray:
    """Expected events per tick of a healthy cloud under the state's workload."""
    instances = float(np.count_nonzero(state.active[state.topo.instance_ids]))
    expected = _STEP_RATES[state.profile] * (instances / 100.0 * EVENT_SCALE)
    return np.bincount(_CHAIN_EVENT, weights=expected, minlength=len(EVENT_NAMES))
