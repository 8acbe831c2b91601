"""The traditional baseline: a rule-based expert system (static alarms, log keywords, runbooks).

This is what an alerting stack with a runbook wiki does. The monitoring system's static alarm
thresholds (NodeDown, HighMemory, ...) and a handful of well-known error messages in the logs
are matched against a fixed rules table; each rule names a fault class (the agent's detection
output, sent once per incident as ``Diagnose(fault, node)``) and ONE fixed runbook action. It
never reads the ground truth or the simulator: it sees only ``info["description"]`` (the
operator's console: alarmed nodes with their role and host, recent log lines).

Rules, in priority order (the first rule that matches a current symptom acts; ``{node}`` is
the node the symptom is on, ``{host}`` the host it runs on, ``{role}`` its service group):

| # | symptom (log keyword / alarm)       | on       | diagnosis          | runbook              |
|---|-------------------------------------|----------|--------------------|----------------------|
|  1| "No space left on device"           | any      | disk_full @host    | CleanDisk({host})    |
|  2| "Out of memory"                     | service  | memory_leak        | Restart({node})      |
|  3| "exited with status"                | service  | process_crash      | Restart({node})      |
|  4| "certificate has expired"           | service  | certificate_expiry | Restart({node})      |
|  5| "Traceback (most recent call last)" | service  | bad_deploy         | Restart({node})      |
|  6| "AccessRefused"                     | service  | config_drift       | Restart({node})      |
|  7| "Lock wait timeout exceeded"        | mysql    | db_lock_contention | Restart({node})      |
|  8| "WSREP has not yet prepared node"   | mysql    | db_replica_failure | Restart({node})      |
|  9| "Timed out waiting for a reply"     | service  | cascading_timeout  | Restart({node})      |
| 10| "No route to host"                  | host     | network_partition  | Failover({node})     |
| 11| "Temporary failure in name resol..."| host     | dns_failure        | FlushCache({node})   |
| 12| NodeDown                            | host     | host_power_loss    | Isolate({node})      |
| 13| NodeDown                            | service  | process_crash      | Restart({node})      |
| 14| DiskFull                            | any      | disk_full @host    | CleanDisk({host})    |
| 15| HighMemory                          | service  | memory_leak        | Restart({node})      |
| 16| HighCPU                             | host     | cpu_hog            | KillProcess({node})  |
| 17| HighCPU                             | instance | noisy_neighbour    | Throttle({node}, 50) |
| 18| HighCPU                             | service  | cpu_hog @host      | Restart({node})      |
| 19| HighErrorRate                       | mysql    | db_replica_failure | Restart({node})      |
| 20| HighErrorRate                       | service  | bad_deploy         | Restart({node})      |
| 21| HighLatency                         | rabbitmq | queue_backlog      | ScaleOut(nova-cond.) |
| 22| HighLatency                         | mysql    | db_lock_contention | Restart({node})      |
| 23| HighLatency                         | scalable | cascading_timeout  | ScaleOut({role}, 1)  |
| 24| HighLatency                         | service  | cascading_timeout  | Restart({node})      |
| 25| NetworkSaturation                   | any      | packet_loss @host  | Failover({host})     |

Quoted symptoms are keywords in a recent log line, the others are alarms; "@host" means the
diagnosis blames the node's host; row 21 is ``ScaleOut(nova-conductor, 1)``.

Like real runbooks these are shallow: one action per symptom, no root-cause analysis, and
sometimes the wrong cure (a restart buys a leaking release time; a hung process ignores a
restart). Pacing, as in an alert manager: the most severe alert is handled first; its runbook
action is taken once when the alert fires, retried at most once more if it still fires
``RETRY_AFTER`` seconds later, then given up on (the next alert in line is handled) until the
alert has been clear for ``RETRY_AFTER`` seconds and fires again. While nothing new fires
the agent monitors with ``Wait(10)``. Fully deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pase_gym.sim import roles
from pase_gym.sim.plan import Plan, parse_plan

WAIT = "Wait(10)"
MAX_TRIES = 2  # the same runbook action at most this often per alert occurrence
RETRY_AFTER = 60  # simulated seconds before a still-firing symptom earns a second try
HOST_ROLES = frozenset(roles.HOST_ROLES)
RESOURCE_ROLES = frozenset({"instance", "tenant-network", "volume"})
SCALABLE_ROLES = frozenset(roles.SCALABLE_ROLES) - {"compute"}


@dataclass(frozen=True)
class Rule:
    """One row of the rules table."""

    kind: str  # "log" (keyword in a log line) or "alarm" (alarm name on a node)
    match: str  # the keyword or the alarm name
    scope: str  # any | service | host | instance | scalable | a role name
    fault: str  # the diagnosis this symptom stands for
    runbook: str  # the fixed action, with {node}, {host}, {role} placeholders
    blame_host: bool = False  # diagnose the node's host rather than the node


_L, _A = "log", "alarm"
RULES: tuple[Rule, ...] = (
    Rule(_L, "No space left on device", "any", "disk_full", "CleanDisk({host})", True),
    Rule(_L, "Out of memory", "service", "memory_leak", "Restart({node})"),
    Rule(_L, "exited with status", "service", "process_crash", "Restart({node})"),
    Rule(_L, "certificate has expired", "service", "certificate_expiry", "Restart({node})"),
    Rule(_L, "Traceback (most recent call last)", "service", "bad_deploy", "Restart({node})"),
    Rule(_L, "AccessRefused", "service", "config_drift", "Restart({node})"),
    Rule(_L, "Lock wait timeout exceeded", "mysql", "db_lock_contention", "Restart({node})"),
    Rule(_L, "WSREP has not yet prepared node", "mysql", "db_replica_failure", "Restart({node})"),
    Rule(_L, "Timed out waiting for a reply", "service", "cascading_timeout", "Restart({node})"),
    Rule(_L, "No route to host", "host", "network_partition", "Failover({node})"),
    Rule(_L, "Temporary failure in name resolution", "host", "dns_failure", "FlushCache({node})"),
    Rule(_A, "NodeDown", "host", "host_power_loss", "Isolate({node})"),
    Rule(_A, "NodeDown", "service", "process_crash", "Restart({node})"),
    Rule(_A, "DiskFull", "any", "disk_full", "CleanDisk({host})", True),
    Rule(_A, "HighMemory", "service", "memory_leak", "Restart({node})"),
    Rule(_A, "HighCPU", "host", "cpu_hog", "KillProcess({node})"),
    Rule(_A, "HighCPU", "instance", "noisy_neighbour", "Throttle({node}, 50)"),
    Rule(_A, "HighCPU", "service", "cpu_hog", "Restart({node})", True),
    Rule(_A, "HighErrorRate", "mysql", "db_replica_failure", "Restart({node})"),
    Rule(_A, "HighErrorRate", "service", "bad_deploy", "Restart({node})"),
    Rule(_A, "HighLatency", "rabbitmq", "queue_backlog", "ScaleOut(nova-conductor, 1)"),
    Rule(_A, "HighLatency", "mysql", "db_lock_contention", "Restart({node})"),
    Rule(_A, "HighLatency", "scalable", "cascading_timeout", "ScaleOut({role}, 1)"),
    Rule(_A, "HighLatency", "service", "cascading_timeout", "Restart({node})"),
    Rule(_A, "NetworkSaturation", "any", "packet_loss", "Failover({host})", True),
)

_ALARMS_RE = re.compile(r"Alarms on \d+ node\(s\): (.*?)\.(?= Alarmed nodes| Affected components)")
_AFFECTED_RE = re.compile(r"Affected components: (.*?)\.(?= API/RPC| Recent logs|$)")
_COMPONENT_RE = re.compile(r"(?:^|\); )([^\s(;]+) \(([^\s;)]+)(?: on ([^\s;)]+))?")
_LOGS_RE = re.compile(r"Recent logs: (.*)\.$")
_ALARM_ENTRY_RE = re.compile(r"([A-Za-z]+) [-0-9.]+")
_NAME_ROLE_RE = re.compile(r"^(.*)-\d+$")


@dataclass
class Console:
    """What the operator's console shows at one step (parsed from the description)."""

    alarms: dict[str, list[str]]  # node -> alarm names, most alarmed node first
    logs: list[tuple[str, str]]  # (node, text), oldest first
    healthy: bool  # all SLOs met and no alarms


def read_console(description: str) -> tuple[Console, dict[str, tuple[str, str]]]:
    """Parse the scene description: the console, and node -> (role, host) context lines."""
    alarms: dict[str, list[str]] = {}
    m = _ALARMS_RE.search(description)
    if m:
        for entry in m.group(1).split("; "):
            node, _, rest = entry.partition(": ")
            alarms[node] = _ALARM_ENTRY_RE.findall(rest)
    context: dict[str, tuple[str, str]] = {}
    m = _AFFECTED_RE.search(description)
    if m:
        for node, role, host in _COMPONENT_RE.findall(m.group(1)):
            context[node] = (role, host or node)
    logs: list[tuple[str, str]] = []
    m = _LOGS_RE.search(description)
    if m:
        for line in m.group(1).split(" | "):
            node, _, text = line.partition(": ")
            logs.append((node, text))
    healthy = "All service level objectives are met; no alarms." in description
    return Console(alarms, logs, healthy), context


class Agent:
    """Static alarm and log-keyword rules mapped to fixed runbook actions (see the table)."""

    name = "rule_based"

    def __init__(self) -> None:
        self._context: dict[str, tuple[str, str]] = {}
        self._tries: dict[str, list[int]] = {}  # action text -> ticks it was issued at
        self._seen: dict[str, int] = {}  # action text -> last tick an alert called for it
        self._diagnosed = False

    def reset(self, seed: int) -> None:
        """Start a new episode (nothing random: the seed is not needed)."""
        self._context = {}
        self._tries = {}
        self._seen = {}
        self._diagnosed = False

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        """Match the rules against the console; answer the first actionable alert."""
        console, context = read_console(str(info.get("description", "")))
        self._context.update(context)
        tick = int(info.get("tick", 0))
        alerts = [(rule, node, self._runbook(rule, node)) for rule, node in self._alerts(console)]
        for _, _, action in alerts:
            if action is None:
                continue
            if tick - self._seen.get(action, tick) > RETRY_AFTER:
                self._tries.pop(action, None)  # its alert had cleared: a new occurrence
            self._seen[action] = tick
        if not alerts:
            if console.healthy:
                self._diagnosed = False  # the incident is over; a new one gets a new diagnosis
            return parse_plan(WAIT)
        diagnosis = ""
        if not self._diagnosed:
            rule, node, _ = alerts[0]
            blamed = (self._where(node)[1] or node) if rule.blame_host else node
            diagnosis = f"Diagnose({rule.fault}, {blamed}); "
            self._diagnosed = True
        for _, _, action in alerts:  # the most severe alert not yet given up on is handled
            if action is None or len(self._tries.setdefault(action, [])) >= MAX_TRIES:
                continue
            issued = self._tries[action]
            if issued and tick - issued[-1] < RETRY_AFTER:
                break  # its runbook ran recently: give it time to work
            issued.append(tick)
            return parse_plan(diagnosis + action)
        return parse_plan(diagnosis + WAIT)

    # -- rule matching ---------------------------------------------------------------------
    def _alerts(self, console: Console) -> list[tuple[Rule, str]]:
        """(rule, node) for every rule a current symptom matches, in rule-table order."""
        out: list[tuple[Rule, str]] = []
        for rule in RULES:
            if rule.kind == "log":
                nodes = [n for n, text in console.logs if rule.match in text]
            else:
                nodes = [n for n, names in console.alarms.items() if rule.match in names]
            for node in nodes:
                if self._in_scope(rule.scope, node) and (rule, node) not in out:
                    out.append((rule, node))
        return out

    def _where(self, node: str) -> tuple[str, str]:
        """(role, host) of a node: from the console's context lines, else from its name
        (``nova-api-2`` is a nova-api; a host's host is itself; unknown hosts are '')."""
        if node in self._context:
            return self._context[node]
        m = _NAME_ROLE_RE.match(node)
        role = m.group(1) if m else node
        return role, node if role in HOST_ROLES else ""

    def _in_scope(self, scope: str, node: str) -> bool:
        role = self._where(node)[0]
        if scope == "any":
            return True
        if scope == "host":
            return role in HOST_ROLES
        if scope == "service":
            return role not in HOST_ROLES and role not in RESOURCE_ROLES
        if scope == "scalable":
            return role in SCALABLE_ROLES
        return role == scope

    def _runbook(self, rule: Rule, node: str) -> str | None:
        """The rule's action for ``node``, or None when its host is not known yet."""
        role, host = self._where(node)
        if "{host}" in rule.runbook and not host:
            return None
        return rule.runbook.format(node=node, host=host, role=role)
