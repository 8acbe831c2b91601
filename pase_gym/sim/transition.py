"""The one transition function: apply a plan (or one primitive call) to a state.

``transition(state, action, rng)`` is shared by the env, the dry run, the oracle and data
collection. For each call it resolves names, checks the symbolic preconditions of the primitive
(:mod:`pase_gym.sim.primitives`, evaluated by :mod:`pase_gym.sim.predicates`), applies the
effect, tells the active faults what happened, and lets the primitive's duration pass.

A call whose preconditions fail does nothing but costs a tick and counts against safety.
Collateral damage is measured, not declared: a call *harms* a node when it interrupts (restart,
kill, fence, remove, drain, throttle, fail over) a node that was healthy and untouched by any
fault just before the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pase_gym.sim import probes
from pase_gym.sim.dynamics import advance, evaluate
from pase_gym.sim.plan import Call, Plan
from pase_gym.sim.predicates import violations
from pase_gym.sim.primitives import ParamType
from pase_gym.sim.state import SimState

FAILED_CALL_TICKS = 1


@dataclass
class CallOutcome:
    """What one primitive call did."""

    call: Call
    start: int
    end: int
    executed: bool
    violations: list[str] = field(default_factory=list)
    harmed: list[str] = field(default_factory=list)
    cost: float = 0.0

    @property
    def safe(self) -> bool:
        """No precondition violated and no healthy node harmed."""
        return not self.violations and not self.harmed


@dataclass
class TransitionResult:
    """What a plan did: per-call outcomes and the state of the SLOs afterwards."""

    outcomes: list[CallOutcome]
    start_tick: int
    end_tick: int
    slo_ok: bool
    lost_messages: float = 0.0
    cut: int = 0  # calls not run because the deadline (the episode's budget) came first

    @property
    def ticks(self) -> int:
        """Simulated seconds the plan took."""
        return self.end_tick - self.start_tick

    @property
    def cost(self) -> float:
        """Resource cost of the executed calls."""
        return float(sum(o.cost for o in self.outcomes))

    @property
    def violations(self) -> list[str]:
        """Every violated precondition, prefixed with its step."""
        return [
            f"step {i + 1} {o.call}: {v}" for i, o in enumerate(self.outcomes) for v in o.violations
        ]

    @property
    def harmed(self) -> list[str]:
        """Every healthy node a call interrupted."""
        return [n for o in self.outcomes for n in o.harmed]

    @property
    def safe_calls(self) -> int:
        """Number of calls that were safe."""
        return sum(o.safe for o in self.outcomes)


# ---- name resolution and preconditions ----------------------------------------------------
def resolve(state: SimState, call: Call) -> tuple[dict[str, int], list[str]]:
    """Map NODE/GROUP arguments to ids (INT/RESOURCE stay as given); list unknown names."""
    t = state.topo
    resolved: dict[str, int] = {}
    problems: list[str] = []
    for param, value in zip(call.spec().params, call.args, strict=True):
        if param.type is ParamType.NODE:
            if value in t.index:
                resolved[param.name] = t.index[str(value)]
            else:
                problems.append(f"{param.name}: unknown node {value!r}")
        elif param.type is ParamType.GROUP:
            if value in t.group_index:
                resolved[param.name] = t.group_index[str(value)]
            else:
                problems.append(
                    f"{param.name}: unknown group {value!r} (groups: {', '.join(t.groups)})"
                )
        elif param.type is ParamType.INT:
            resolved[param.name] = int(value)
    return resolved, problems


def check_call(state: SimState, call: Call) -> list[str]:
    """The preconditions ``call`` violates in ``state`` (empty when it may run)."""
    ids, problems = resolve(state, call)
    if problems:
        return problems
    return violations(state, call.spec(), ids)


# ---- effects ------------------------------------------------------------------------------
Effect = Callable[[SimState, dict[str, int], Call], list[int]]


def _notify(state: SimState, effect: str, node: int, **kw: object) -> None:
    for fault in state.faults:
        if fault.active:
            fault.on_effect(state, effect, node, **kw)


def _restart(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    state.up[node] = True
    state.hung[node] = False
    state.desynced[node] = False
    state.isolated[node] = False
    state.drained[node] = False
    state.down_until[node] = state.tick + duration
    state.mem_used[node] = state.topo.base_memory[node]
    _notify(state, "restart", node)
    return [node]


def _kill(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    t = state.topo
    if t.is_host[node]:
        rogue = any(f.active and f.takes_kill(node) for f in state.faults)
        _notify(state, "kill", node)
        if rogue:
            return []
        hosted = t.hosted_on(node)
        procs = hosted[t.is_process[hosted] & state.up[hosted]]
        if procs.size == 0:
            return []
        victim = int(procs[np.argmax(state.load[procs])])  # no runaway: the busiest goes
        state.up[victim] = False
        return [victim]
    state.up[node] = False
    state.hung[node] = False
    _notify(state, "kill", node)
    return [node]


def _scale(state: SimState, ids: dict[str, int], call: Call, duration: int, out: bool) -> list[int]:
    t = state.topo
    group = ids["group"]
    count = ids["count"]
    members = t.group_members[group]
    chosen = (
        members[~state.active[members]][:count]
        if out
        else members[state.active[members]][::-1][:count]
    )
    touched: list[int] = []
    for node in chosen.tolist():
        nodes = [node]
        if t.is_host[node]:  # a compute host brings (or takes) its agents along
            nodes = np.flatnonzero(state.host_of == node).tolist()
        for m in nodes:
            state.active[m] = out
            state.up[m] = out
            state.isolated[m] = False
            state.drained[m] = False
            state.down_until[m] = state.tick + duration if out else 0
        touched.extend(nodes)
    _notify(state, "scale_out" if out else "scale_in", int(group), count=count)
    return [] if out else touched


def _reroute(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    src, dst = ids["source"], ids["target"]
    state.route_w[dst] += state.route_w[src]
    state.route_w[src] = 0.0
    _notify(state, "reroute", src, target=dst)
    return []


def _isolate(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    state.isolated[node] = True
    _notify(state, "isolate", node)
    if state.topo.is_host[node]:
        return [node, *state.topo.hosted_on(node).tolist()]
    return [node]


def _migrate(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    inst, host = ids["instance"], ids["host"]
    state.host_of[inst] = host
    state.up[inst] = True
    state.isolated[inst] = False
    state.down_until[inst] = state.tick + duration
    _notify(state, "migrate", inst, host=host)
    return [inst]


def _rollback(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    _notify(state, "rollback", ids["node"])
    return []


def _resize(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    resource = str(call.kwargs()["resource"])
    amount = ids["amount"]
    if resource == "cpu":
        state.cpu_alloc[node] += 0.5 * amount
    elif resource == "memory":
        state.mem_alloc[node] += 0.5 * amount
    else:  # grow the volume the node writes to: frees a share of its host's disk
        host = state.host_of[node]
        state.disk_used[host] /= 1.0 + 0.25 * amount
    _notify(state, "resize", node, resource=resource, amount=amount)
    return []


def _flush_queue(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["queue"]
    state.lost_messages += float(state.backlog[node]) + float(state.load[node])
    state.backlog[node] = 0.0
    _notify(state, "flush_queue", node)
    return [node]


def _failover(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    t = state.topo
    _notify(state, "failover", node)
    if t.is_host[node]:
        return []
    peers = t.nodes_of_role(t.role_name(node))
    standby = peers[(peers != node) & state.active[peers] & state.works[peers]]
    if standby.size == 0 or state.route_w[node] <= 0:
        return []
    target = int(standby[np.argmin(state.route_w[standby])])
    state.route_w[target] += state.route_w[node]
    state.route_w[node] = 0.0
    return [node]


def _throttle(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    state.throttle[node] = ids["percent"] / 100.0
    _notify(state, "throttle", node)
    return [node] if ids["percent"] < 100 else []


def _drain(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    state.drained[node] = True
    _notify(state, "drain", node)
    return [node]


def _clean_disk(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    node = ids["node"]
    state.disk_used[node] = min(float(state.disk_used[node]), 0.35)
    _notify(state, "clean_disk", node)
    return []


def _simple(effect: str, param: str = "node") -> Callable[..., list[int]]:
    def run(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
        _notify(state, effect, ids[param])
        return []

    return run


def _inspect(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    state.probes.append(probes.inspect(state, ids["node"]))
    return []


def _query_logs(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    seconds = int(call.kwargs()["seconds"])
    state.probes.append(probes.query_logs(state, ids["node"], seconds))
    return []


def _trace(state: SimState, ids: dict[str, int], call: Call, duration: int) -> list[int]:
    state.probes.append(probes.trace(state, str(call.kwargs()["request"])))
    return []


EFFECTS: dict[str, Callable[..., list[int]]] = {
    "Wait": lambda state, ids, call, duration: [],
    "Restart": _restart,
    "KillProcess": _kill,
    "ScaleOut": lambda s, i, c, d: _scale(s, i, c, d, out=True),
    "ScaleIn": lambda s, i, c, d: _scale(s, i, c, d, out=False),
    "Reroute": _reroute,
    "Isolate": _isolate,
    "Migrate": _migrate,
    "Rollback": _rollback,
    "ResizeResource": _resize,
    "FlushQueue": _flush_queue,
    "Failover": _failover,
    "Throttle": _throttle,
    "Drain": _drain,
    "CleanDisk": _clean_disk,
    "RenewCertificate": _simple("renew_cert"),
    "FlushCache": _simple("flush_cache"),
    "Inspect": _inspect,
    "QueryLogs": _query_logs,
    "Trace": _trace,
}


def healthy_nodes(state: SimState) -> np.ndarray:
    """Nodes meeting their SLO and untouched by any active fault (for collateral damage)."""
    healthy = state.slo_ok_nodes & state.works & state.active
    is_host = state.topo.is_host
    for fault in state.faults:
        if fault.active:
            healthy[fault.node] = False
            if is_host[fault.node]:
                healthy[state.host_of == fault.node] = False
    return healthy


def duration_of(call: Call) -> int:
    """Ticks the call takes when it runs."""
    spec = call.spec()
    if spec.duration_param is not None:
        return int(call.kwargs()[spec.duration_param])
    return spec.duration


def execute_call(
    state: SimState,
    call: Call,
    rng: np.random.Generator,
    resolution: int | None = None,
    last: bool = True,
    deadline: int | None = None,
) -> CallOutcome:
    """Run one primitive call on ``state`` in place and let its duration pass.

    ``last`` says whether the full indicator matrix is needed when the call ends (it is not
    between the calls of a plan). The clock never passes ``deadline`` (when given): a call
    that would run past it has its effect, and time stops there.
    """
    if state.evaluated_at != state.tick:
        evaluate(state, rng, full=False)
    start = state.tick
    room = None if deadline is None else max(deadline - start, 0)
    violations = check_call(state, call)
    if violations:
        ticks = FAILED_CALL_TICKS if room is None else min(FAILED_CALL_TICKS, room)
        if ticks > 0:
            advance(state, ticks, rng, step=ticks, full_at_end=False)
        return CallOutcome(call, start, state.tick, executed=False, violations=violations)
    ids, _ = resolve(state, call)
    duration = duration_of(call)
    healthy = healthy_nodes(state)
    touched = EFFECTS[call.name](state, ids, call, duration)
    harmed = sorted({state.name(n) for n in touched if healthy[n]})
    if room is not None:
        duration = min(duration, room)
    if duration > 0:
        advance(state, duration, rng, step=resolution or duration, full_at_end=False)
    elif state.evaluated_at != state.tick:
        evaluate(state, rng, full=False)
    return CallOutcome(call, start, state.tick, executed=True, harmed=harmed, cost=call.spec().cost)


def transition(
    state: SimState,
    action: Plan | Call,
    rng: np.random.Generator,
    *,
    resolution: int | None = None,
    deadline: int | None = None,
    watch: Callable[[SimState, CallOutcome], None] | None = None,
) -> TransitionResult:
    """Apply a plan (or a single call) to ``state`` in place.

    Args:
        state: the state to change.
        action: a :class:`Plan` (its diagnosis is not executed) or one :class:`Call`.
        rng: the episode's generator; every random draw comes from it.
        resolution: evaluate health at least every this many ticks within a call; ``None``
            evaluates once at the end of each call (the fast default).
        deadline: the tick the clock may not pass (an episode's budget): the call running
            at the deadline is cut there and the calls after it do not run
            (:attr:`TransitionResult.cut` counts them). ``None``: no limit.
        watch: called with the state and the outcome after each call (the world model's
            data collection reads the health indicators there); it must not change the state
            or draw from ``rng``.

    Returns:
        The per-call outcomes and the SLO state afterwards.
    """
    calls = action.steps if isinstance(action, Plan) else (action,)
    start = state.tick
    lost_before = state.lost_messages
    outcomes: list[CallOutcome] = []
    for i, call in enumerate(calls):
        if deadline is not None and state.tick >= deadline:
            break
        outcomes.append(
            execute_call(state, call, rng, resolution, last=i == len(calls) - 1, deadline=deadline)
        )
        if watch is not None:
            watch(state, outcomes[-1])
    return TransitionResult(
        outcomes,
        start,
        state.tick,
        state.slo_ok,
        state.lost_messages - lost_before,
        cut=len(calls) - len(outcomes),
    )
