"""The traditional baseline: a rule-based expert system (static alarms, log keywords, runbooks).

This is what an alerting stack with a competent operator's runbook wiki does. The monitoring
system's static alarm thresholds (NodeDown, HighMemory, ...) and a few well-known error
messages in the logs are matched against a fixed rules table; each rule names a fault class
(the agent's detection output, sent once per incident as ``Diagnose(fault, node)``) and a
runbook: the catalogue's recovery for that symptom, several steps where the catalogue says
so, with an escalation when the first runbook did not clear the alert (a host that stays
down after its standby link was tried is treated as lost). It never reads the ground truth
or the simulator: it sees only ``info["description"]`` (the operator's console: alarmed
nodes with their role and host, recent log lines).

Rules, in priority order (the first rule that matches a current symptom acts; ``N`` is the
node the symptom is on, ``H`` the host it runs on, ``R`` its service group; ``=>`` leads to
the escalation):

| # | symptom | on | diagnosis | runbook |
|---|---|---|---|---|
| 1 | DiskFull | any | disk_full @host | CleanDisk(H) |
| 2 | HighCPU | instance | noisy_neighbour | Throttle(N, 40) |
| 3 | NodeDown | compute | host_power_loss | Failover(N) => Isolate(N); ScaleOut(compute, 1) |
| 4 | NodeDown | host | network_partition | Failover(N) |
| 5 | NetworkSaturation | host | packet_loss | Failover(N) |
| 6 | "name resolution" | any | dns_failure @host | Rollback(H); FlushCache(H) |
| 7 | "CERTIFICATE_VERIFY_FAILED" | service | certificate_expiry | RenewCertificate(N); Restart(N)|
| 8 | "ACCESS_REFUSED" | service | config_drift | Rollback(N); Restart(N) |
| 9 | HighMemory | service | memory_leak | Rollback(N); Restart(N) |
| 10 | HighCPU | host | cpu_hog | KillProcess(N) |
| 11 | HighCPU | service | cpu_hog @host | KillProcess(H) |
| 12 | HighErrorRate | mysql | db_replica_failure | Isolate(N); Restart(N) |
| 13 | HighLatency | mysql | db_lock_contention | Failover(N); Restart(N) |
| 14 | HighLatency | rabbitmq | queue_backlog | ScaleOut(nova-conductor, 2) |
| 15 | NodeDown | service | process_crash | Restart(N) => Rollback(N); Restart(N) |
| 16 | HighErrorRate | service | bad_deploy | Rollback(N) => Rollback(N); Restart(N) |
| 17 | HighLatency | scalable | cascading_timeout | ScaleOut(R, 2); Restart(N) => (see below) |
| 18 | HighLatency | service | process_hang | KillProcess(N); Restart(N) |

Row 17 escalates to ``KillProcess(N); Restart(N)``. Quoted symptoms are keywords in a recent
log line, the others are alarms; "@host" means the
diagnosis blames the node's host.

Like real runbooks these read one symptom at a time: no root-cause analysis across alarms,
and a symptom several causes share gets the runbook of the commonest one (a cut link and a
dead host both raise NodeDown on the host; a hung and a jammed process both raise
HighLatency), and it does not probe: under env v3's service view (a service's latency and
errors are its replicas' mean, no process's CPU or memory shows) rows 9 and 11 never fire and
a service-wide alarm is answered on the first replica the console lists (``agents/prober``
probes before acting). Pacing, as in an alert manager: the most severe alert is handled first; its
runbook is taken once when the alert fires, escalated (or retried) at most once if it still
fires ``RETRY_AFTER`` seconds later, then given up on (the next alert in line is handled)
until the alert has been clear for ``RETRY_AFTER`` seconds and fires again. While nothing new
fires the agent monitors with ``Wait(10)``. Fully deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pase_gym.sim import roles
from pase_gym.sim.plan import Plan, parse_plan

WAIT = "Wait(10)"
MAX_TRIES = 2  # runbooks taken per alert occurrence (the first, then its escalation or again)
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
    runbook: tuple[str, ...]  # the runbook, then its escalation; {node}, {host}, {role}
    blame_host: bool = False  # diagnose the node's host rather than the node


_L, _A = "log", "alarm"
_ROLLBACK_RESTART = "Rollback({node}); Restart({node})"
RULES: tuple[Rule, ...] = (
    Rule(_A, "DiskFull", "any", "disk_full", ("CleanDisk({host})",), True),
    Rule(_A, "HighCPU", "instance", "noisy_neighbour", ("Throttle({node}, 40)",)),
    Rule(
        _A,
        "NodeDown",
        "compute",
        "host_power_loss",
        ("Failover({node})", "Isolate({node}); ScaleOut(compute, 1)"),
    ),
    Rule(_A, "NodeDown", "host", "network_partition", ("Failover({node})",)),
    Rule(_A, "NetworkSaturation", "host", "packet_loss", ("Failover({node})",)),
    Rule(
        _L, "name resolution", "any", "dns_failure", ("Rollback({host}); FlushCache({host})",), True
    ),
    Rule(
        _L,
        "CERTIFICATE_VERIFY_FAILED",
        "service",
        "certificate_expiry",
        ("RenewCertificate({node}); Restart({node})",),
    ),
    Rule(_L, "ACCESS_REFUSED", "service", "config_drift", (_ROLLBACK_RESTART,)),
    Rule(_A, "HighMemory", "service", "memory_leak", (_ROLLBACK_RESTART,)),
    Rule(_A, "HighCPU", "host", "cpu_hog", ("KillProcess({node})",)),
    Rule(_A, "HighCPU", "service", "cpu_hog", ("KillProcess({host})",), True),
    Rule(_A, "HighErrorRate", "mysql", "db_replica_failure", ("Isolate({node}); Restart({node})",)),
    Rule(_A, "HighLatency", "mysql", "db_lock_contention", ("Failover({node}); Restart({node})",)),
    Rule(_A, "HighLatency", "rabbitmq", "queue_backlog", ("ScaleOut(nova-conductor, 2)",)),
    Rule(_A, "NodeDown", "service", "process_crash", ("Restart({node})", _ROLLBACK_RESTART)),
    Rule(_A, "HighErrorRate", "service", "bad_deploy", ("Rollback({node})", _ROLLBACK_RESTART)),
    Rule(
        _A,
        "HighLatency",
        "scalable",
        "cascading_timeout",
        ("ScaleOut({role}, 2); Restart({node})", "KillProcess({node}); Restart({node})"),
    ),
    Rule(_A, "HighLatency", "service", "process_hang", ("KillProcess({node}); Restart({node})",)),
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
        self._tries: dict[str, list[int]] = {}  # alert -> ticks its runbooks were taken at
        self._seen: dict[str, int] = {}  # alert -> last tick it fired
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
        alerts = [(rule, node, self._key(rule, node)) for rule, node in self._alerts(console)]
        for _, _, key in alerts:
            if key is None:
                continue
            if tick - self._seen.get(key, tick) > RETRY_AFTER:
                self._tries.pop(key, None)  # its alert had cleared: a new occurrence
            self._seen[key] = tick
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
        for rule, node, key in alerts:  # the most severe alert not yet given up on is handled
            if key is None or len(self._tries.setdefault(key, [])) >= MAX_TRIES:
                continue
            issued = self._tries[key]
            if issued and tick - issued[-1] < RETRY_AFTER:
                break  # its runbook ran recently: give it time to work
            action = self._runbook(rule, node, len(issued))
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

    def _key(self, rule: Rule, node: str) -> str | None:
        """What identifies an alert's runbook (its first action for ``node``), or None when
        the runbook needs the node's host and the console has not named it yet."""
        role, host = self._where(node)
        if "{host}" in rule.runbook[0] and not host:
            return None
        return rule.runbook[0].format(node=node, host=host, role=role)

    def _runbook(self, rule: Rule, node: str, tries: int) -> str:
        """The runbook for ``node`` after ``tries`` earlier tries (the escalation once the
        first did not clear the alert, else the last runbook again)."""
        role, host = self._where(node)
        text = rule.runbook[min(tries, len(rule.runbook) - 1)]
        return text.format(node=node, host=host, role=role)
