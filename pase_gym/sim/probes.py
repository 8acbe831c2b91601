"""Diagnostic probes: what an operator learns by looking closely at one node or one request path.

The default observation (since env v3) shows services, not processes: a service's latency, error
rate and throughput are the mean over its replicas, and no process's own CPU, memory, disk or
network use is shown (:func:`pase_gym.sim.observe.service_view`). The probes read that detail,
each at a cost in simulated seconds (see their rows in :data:`pase_gym.sim.primitives.PRIMITIVES`):

* ``Inspect(node)``: the node's state as ``systemctl``, ``ps``, ``df`` or the host's BMC show it
  (running, starting, stopped; fenced, drained, out of cluster sync), its own metrics, what is
  queued on it, what the tools an operator runs there find (each active fault's
  :attr:`~pase_gym.sim.faults.FaultSpec.findings` on that node: a release deployed a minute
  ago, a process in state D, a link with no carrier) and its last few log lines;
* ``QueryLogs(node, seconds)``: every log line the node (and, for a host, what runs on it)
  wrote in the last ``seconds``, beyond the short tail the scene shows;
* ``Trace(request)``: the path of one request type of the workload (``boot``, ``volume``,
  ``network``, ``cleanup``: :data:`pase_gym.sim.signals.EVENT_CHAINS`) as a request tracer
  shows it: each hop's component and the share of the requests reaching it that pass, and,
  where requests stop, the replicas that served the failed hop with their error rates (a
  trace's spans name their hosts). It shows where requests fail, not why.

A probe changes nothing in the cloud. Its report is appended to :attr:`SimState.probes` and
handed to the agent with the next observation (which takes them off the state). Probes draw
no random numbers: a plan with a probe runs the same dynamics as the plan without it, only
later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pase_gym.sim.dynamics import ensure_indicators
from pase_gym.sim.roles import ROLE_INDEX, ROLE_NAMES
from pase_gym.sim.signals import EVENT_CHAINS, POLL_EVENTS
from pase_gym.sim.state import IND, SimState

INSPECT_LOG_LINES = 4  # the node's own last log lines an Inspect report quotes
INSPECT_LOG_SECONDS = 60
QUERY_LOG_LINES = 12  # the most lines a QueryLogs report quotes (the newest)
TRACE_STOP_SHARE = 0.05  # a hop where at least this share of its requests fail is named
TRACE_REPLICAS = 6  # the most failing replicas a Trace names per component
TRACE_REQUESTS: tuple[str, ...] = tuple(EVENT_CHAINS)  # what Trace's ``request`` accepts


@dataclass(frozen=True)
class ProbeReport:
    """One probe's findings: what it looked at, when, and what it saw."""

    tick: int
    probe: str  # the primitive: Inspect, QueryLogs or Trace
    node: str  # the node looked at ("" for a Trace)
    lines: tuple[str, ...]
    metrics: np.ndarray | None = None  # Inspect: the node's own eight indicators
    request: str | None = None  # Trace: the request type traced

    def text(self) -> str:
        """``Inspect(nova-api-2) at t=130s: line; line`` as the scene description shows it."""
        target = self.request if self.request is not None else self.node
        return f"{self.probe}({target}) at t={self.tick}s: " + "; ".join(self.lines)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (``info["probes"]``: ``node`` or, for a Trace, ``request``)."""
        out: dict[str, object] = {"probe": self.probe}
        if self.request is not None:
            out["request"] = self.request
        else:
            out["node"] = self.node
        out.update({"tick": self.tick, "lines": list(self.lines)})
        if self.metrics is not None:
            out["metrics"] = [round(float(v), 4) for v in self.metrics]
        return out


def _status(state: SimState, node: int) -> str:
    t = state.topo
    name = state.name(node)
    role = ROLE_NAMES[int(t.role[node])]
    host = int(state.host_of[node])
    where = "" if host == node else f" on {state.name(host)}"
    if not state.active[node]:
        return f"{name} ({role}{where}): not provisioned"
    if t.is_host[node]:
        status = "up" if state.up[node] else "does not answer"
    elif t.is_process[node]:
        if not state.up[host] and host != node:
            status = "unknown: its host does not answer"
        elif not state.up[node]:
            status = "process not running"
        elif state.down_until[node] > state.tick:
            status = "process starting"
        else:
            status = "process running"
    else:
        status = "running" if state.up[node] else "stopped"
    flags = [
        label
        for label, on in (
            ("fenced off (isolated)", state.isolated[node]),
            ("drained", state.drained[node]),
            ("out of sync with its cluster", state.desynced[node]),
        )
        if on
    ]
    return f"{name} ({role}{where}): {status}" + "".join(f", {f}" for f in flags)


def _usage(row: np.ndarray) -> str:
    return (
        f"cpu {row[IND['cpu']]:.0%}, memory {row[IND['memory']]:.0%} of its allocation, "
        f"disk {row[IND['disk']]:.0%}, network {row[IND['network']]:.0%}; latency "
        f"{row[IND['latency']]:.2f} s, error rate {row[IND['error_rate']]:.2f}, throughput "
        f"{row[IND['throughput']]:.2f}, availability {row[IND['availability']]:.2f}"
    )


def _replicas(state: SimState, node: int) -> list[str]:
    """For a replicated process: its replicas as the load balancer (or the broker's cluster
    view) sees them, so that one probe tells which replica to look at next."""
    t = state.topo
    if not t.is_process[node]:
        return []
    peers = np.flatnonzero((t.role == t.role[node]) & state.active & t.is_process)
    if peers.size < 2:
        return []
    h = state.health
    cells = []
    for p in peers.tolist():
        cell = (
            f"{state.name(p)} error rate {h[p, IND['error_rate']]:.2f}, latency "
            f"{h[p, IND['latency']]:.2f} s, availability {h[p, IND['availability']]:.2f}"
        )
        if state.backlog[p] > 0:
            cell += f", {state.backlog[p]:.0f} messages waiting"
        cells.append(cell)
    return ["replicas as their clients see them: " + "; ".join(cells)]


def _own_lines(state: SimState, names: set[str], since: int, limit: int) -> list[str]:
    lines = [line for line in reversed(state.log) if line.tick >= since and line.node in names]
    lines = lines[:limit]
    return [f"t={line.tick} {line.level} {line.node}: {line.text}" for line in reversed(lines)]


def inspect(state: SimState, node: int) -> ProbeReport:
    """What ``Inspect(node)`` shows now (reads the state, changes nothing)."""
    ensure_indicators(state)
    name = state.name(node)
    host = int(state.host_of[node])
    reachable = bool(state.up[host]) or bool(state.topo.is_host[node])
    lines = [_status(state, node)]
    row: np.ndarray | None = None
    if reachable and state.active[node] and state.up[node]:
        row = np.array(state.health[node], dtype=np.float64, copy=True)
        lines.append(_usage(row))
        if state.backlog[node] > 0:
            lines.append(f"{state.backlog[node]:.0f} messages waiting")
        lines.extend(_replicas(state, node))
    for fault in state.faults:
        lines.extend(fault.findings(state, node))
    if reachable:
        lines.extend(_own_lines(state, {name}, state.tick - INSPECT_LOG_SECONDS, INSPECT_LOG_LINES))
    return ProbeReport(state.tick, "Inspect", name, tuple(lines), row)


def query_logs(state: SimState, node: int, seconds: int) -> ProbeReport:
    """What ``QueryLogs(node, seconds)`` returns now: the node's log lines (a host's include
    what runs on it) of the last ``seconds``, the newest :data:`QUERY_LOG_LINES`."""
    names = {state.name(node)}
    if state.topo.is_host[node]:
        names |= {state.name(int(i)) for i in np.flatnonzero(state.host_of == node)}
    lines = _own_lines(state, names, state.tick - int(seconds), QUERY_LOG_LINES)
    return ProbeReport(
        state.tick, "QueryLogs", state.name(node), tuple(lines or ["no log lines in that span"])
    )


def trace(state: SimState, request: str) -> ProbeReport:
    """What ``Trace(request)`` shows now: the hops of the request type's path with the share
    of requests reaching each that pass it (from the last evaluation's per-component failure
    shares), and, for each component where at least :data:`TRACE_STOP_SHARE` of them fail, the
    replicas whose spans failed, with their error rates (a component on the path twice is
    named once). The client's status polls are not hops.

    Raises:
        KeyError: ``request`` is not one of :data:`TRACE_REQUESTS` (plans are checked first).
    """
    ensure_indicators(state)
    chain = [step for step in EVENT_CHAINS[request] if step[0] not in POLL_EVENTS]
    t = state.topo
    err = state.health[:, IND["error_rate"]]
    hops: list[str] = []
    stops: list[str] = []
    named: set[str] = set()
    reach = 1.0
    for event, role, _per, _error in chain:
        ok = float(1.0 - state.role_err[ROLE_INDEX[role]])
        hops.append(f"{role} {event} {ok:.0%}")
        reach *= ok
        if 1.0 - ok < TRACE_STOP_SHARE or role in named:
            continue
        named.add(role)
        served = np.flatnonzero((t.role == ROLE_INDEX[role]) & state.active & t.is_process)
        failing = [p for p in served.tolist() if err[p] >= TRACE_STOP_SHARE or not state.up[p]]
        cells = [
            f"{state.name(p)} error rate {err[p]:.2f}" + ("" if state.up[p] else " (no answer)")
            for p in failing[:TRACE_REPLICAS]
        ]
        if len(failing) > TRACE_REPLICAS:
            cells.append(f"{len(failing) - TRACE_REPLICAS} more")
        rest = served.size - len(failing)
        line = f"{1.0 - ok:.0%} of the {request} requests reaching {role} fail there"
        if not cells:
            line += "; no replica's own error rate stands out"
        else:
            line += "; failed spans on " + ", ".join(cells)
            if rest:
                line += f" ({rest} other replica{'s pass' if rest > 1 else ' passes'})"
        stops.append(line)
    lines = [f"{request} requests completing: {reach:.0%}", "path: " + " -> ".join(hops)]
    lines.extend(stops or ["no hop fails"])
    return ProbeReport(state.tick, "Trace", "", tuple(lines), request=request)
