"""The symbolic layer: a plan checked against the public catalogue on what the agent sees.

Two facts per call, both from data the catalogue already holds
(:mod:`pase_gym.sim.primitives`) evaluated on :class:`~pase_gym.worldmodel.view.PublicState`:

* **violation**: a name the inventory does not have, or a precondition of the primitive that
  fails on the observation, checked by the simulator's own predicates
  (:func:`pase_gym.sim.predicates.violations`), so nothing is written twice; along a plan the
  public state follows the catalogue's typed effects of the calls before
  (:meth:`~pase_gym.worldmodel.view.PublicState.apply`);
* **harm risk**: the call interrupts a node (:data:`INTERRUPTS`, the nodes the transition
  function's effects interrupt) that looks healthy in everything shown
  (:attr:`~pase_gym.worldmodel.view.Seen.looks_healthy`).

:class:`~pase_gym.worldmodel.verifier.SymbolicVerifier` is the rule-based verifier of the
comparison (Fig. 6's "symbolic only" row); the NSWM fuses the same flags with its network
(:mod:`pase_gym.worldmodel.models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from pase_gym.sim.plan import Call, Plan
from pase_gym.sim.predicates import violations
from pase_gym.sim.primitives import INERT, ParamType
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.state import SimState

from .plans import plan_calls
from .view import GROUPS, PublicState, Seen

INTERRUPTS: dict[str, str] = {
    "Restart": "node",
    "KillProcess": "node",
    "ScaleIn": "group",
    "Isolate": "node",
    "Migrate": "instance",
    "FlushQueue": "queue",
    "Failover": "node",
    "Throttle": "node",
    "Drain": "node",
}
"""Primitive -> the parameter naming what it interrupts (as the transition function's
effects do: a restart, kill, fence, drain, throttle, fail-over or removal of that node, or of
the group's newest provisioned replicas; ``tests/worldmodel`` checks it against the real
transition on a healthy cloud)."""

VIOLATION_WEIGHT = 1.0
HARM_WEIGHT = 0.5


def _resolve(seen: Seen, call: Call) -> tuple[dict[str, int], list[str]]:
    ids: dict[str, int] = {}
    problems: list[str] = []
    for param, value in zip(call.spec().params, call.args, strict=True):
        if param.type is ParamType.NODE:
            row = seen.index.get(str(value))
            if row is None:
                problems.append(f"{param.name}: unknown node {value!r}")
            else:
                ids[param.name] = row
        elif param.type is ParamType.GROUP:
            if value in GROUPS:
                ids[param.name] = GROUPS.index(str(value))
            else:
                problems.append(f"{param.name}: unknown group {value!r}")
        elif param.type is ParamType.INT:
            ids[param.name] = int(value)
    return ids, problems


def call_violations(seen: Seen, call: Call, state: PublicState | None = None) -> list[str]:
    """What ``call`` violates on what ``seen`` shows (empty when nothing visible fails), in
    ``state`` (default: the observed one; :func:`plan_call_flags` rolls it along a plan)."""
    ids, problems = _resolve(seen, call)
    if problems:
        return problems
    public = seen.public_state() if state is None else state
    # duck-typed: the public state has the attributes the predicates read
    return violations(cast(SimState, public), call.spec(), ids)


def interrupted(seen: Seen, call: Call, state: PublicState | None = None) -> np.ndarray:
    """Rows ``call`` would interrupt (empty when it interrupts nothing or names nothing known)."""
    active = (seen.public_state() if state is None else state).active
    param = INTERRUPTS.get(call.name)
    if param is None:
        return np.zeros(0, dtype=np.int64)
    kwargs = call.kwargs()
    if call.name == "Throttle" and int(kwargs["percent"]) >= 100:
        return np.zeros(0, dtype=np.int64)
    value = str(kwargs[param])
    if param == "group":
        if value not in ROLE_NAMES:
            return np.zeros(0, dtype=np.int64)
        members = np.flatnonzero((seen.role == ROLE_NAMES.index(value)) & active)
        return members[::-1][: int(kwargs["count"])]
    row = seen.index.get(value)
    if row is None:
        return np.zeros(0, dtype=np.int64)
    if call.name == "Failover" and seen.public_state().topo.is_host[row]:
        return np.zeros(0, dtype=np.int64)  # a host fails over to its bonded standby link
    if call.name == "Isolate":
        hosted = np.flatnonzero((seen.host_of == row) & active)
        return np.unique(np.concatenate([[row], hosted]))
    return np.array([row], dtype=np.int64)


def call_flags(seen: Seen, call: Call, state: PublicState | None = None) -> np.ndarray:
    """``[violation, harm risk]`` of one call in ``state`` (default: as observed), each 0 or 1."""
    violated = bool(call_violations(seen, call, state))
    rows = interrupted(seen, call, state)
    risky = bool(rows.size) and bool(seen.looks_healthy[rows].any())
    return np.array([float(violated), float(risky and not violated)], np.float32)


def plan_call_flags(seen: Seen, calls: Sequence[Call]) -> np.ndarray:
    """``(K, 2)`` flags of a plan's calls, each checked on the public state the calls before
    it leave (a ``ScaleOut`` provisions the host a later ``Migrate`` moves to)."""
    state = seen.public_state().copy()
    out = np.zeros((len(calls), 2), np.float32)
    for k, call in enumerate(calls):
        out[k] = call_flags(seen, call, state)
        if out[k, 0] == 0.0:
            ids, _ = _resolve(seen, call)
            state.apply(call.name, ids)
    return out


def coverage(seen: Seen, plan: Plan | Call | str) -> float:
    """Share of the alarmed rows a plan's acting calls reach (their nodes, the nodes' hosts and
    groups, and the groups they name); 1 when nothing is alarmed."""
    alarmed = np.flatnonzero((seen.alarms.sum(axis=1) > 0) & seen.active)
    if alarmed.size == 0:
        return 1.0
    reached = np.zeros(seen.n, dtype=bool)
    for call in plan_calls(plan):
        if call.name in INERT:
            continue
        for param, value in zip(call.spec().params, call.args, strict=True):
            if param.type is ParamType.NODE and str(value) in seen.index:
                row = seen.index[str(value)]
                reached[row] = True
                reached[seen.host_of == row] = True
                reached[seen.role == seen.role[row]] = True
            elif param.type is ParamType.GROUP and value in ROLE_NAMES:
                reached[seen.role == ROLE_NAMES.index(str(value))] = True
    return float(reached[alarmed].mean())


def symbolic_feasibility(flags: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The symbolic verifier's ``F`` from per-plan flag counts ``(B, 2)`` (violating calls,
    calls with harm risk) and coverages ``(B,)``: ``-(Risk + Severity)``, ``Risk = min(1,
    violations + 0.5 * harm risks)``, ``Severity = 1 - coverage``."""
    risk = np.minimum(1.0, VIOLATION_WEIGHT * flags[:, 0] + HARM_WEIGHT * flags[:, 1])
    out: np.ndarray = -(risk + 1.0 - covered)
    return out
