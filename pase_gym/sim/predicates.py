"""The predicates that primitive preconditions name, evaluated over the state.

Each predicate takes the state, an array of subject ids (node ids, or group ids for group
predicates) and an optional argument (an int, a node id or a group id) and returns a boolean
array, so the same code checks one call in the transition function and a whole action mask
at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from pase_gym.sim.primitives import Precondition, PrimitiveSpec
from pase_gym.sim.roles import ROLE_INDEX, ROLES, Kind
from pase_gym.sim.state import SimState

_HOST, _INSTANCE, _QUEUE = int(Kind.HOST), int(Kind.INSTANCE), int(Kind.QUEUE)

Predicate = Callable[[SimState, np.ndarray, int | None], np.ndarray]
_COMPUTE = ROLE_INDEX["compute"]


def _exists(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.active[ids]


def _is_process(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.is_process[ids]


def _is_resizable(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.is_process[ids] | (s.topo.kind[ids] == _INSTANCE)


def _host_up(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    host = s.host_of[ids]
    return s.active[host] & s.up[host]


def _up(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.active[ids] & s.up[ids]


def _hung(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.hung[ids]


def _has_process(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    # a service with a live process, or a host (there is always something to kill on a host)
    t = s.topo
    proc = t.is_process[ids] & s.up[ids] & (s.down_until[ids] <= s.tick)
    return proc | (t.kind[ids] == _HOST) & s.up[ids]


def _has_previous(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    # Every service and host keeps its previous release and config (deploy history).
    return s.topo.is_process[ids] | (s.topo.kind[ids] == _HOST)


def _has_standby(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.standby_capable[ids]


def _in_service(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.in_service()[ids]


def _serving(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.in_service()[ids] & s.works[ids]


def _is_instance(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.kind[ids] == _INSTANCE


def _is_queue(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.kind[ids] == _QUEUE


def _is_host(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.kind[ids] == _HOST


def _is_compute_host(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.role[ids] == _COMPUTE


def _has_room(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    inst = (s.topo.kind == _INSTANCE) & s.active
    counts = np.bincount(s.host_of[inst], minlength=s.n)
    return counts[ids] < s.topo.slots_per_host


def _movable(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    # Evacuating from a dead host needs the host fenced off first (nova's "forced down").
    host = s.host_of[ids]
    return (s.active[host] & s.up[host]) | s.isolated[host]


def _on_host(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.host_of[ids] == arg


def _same_node(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return ids == arg


def _in_group(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return s.topo.group_of[ids] == arg


# ---- group predicates: ids are group ids, arg is a count ---------------------------------
def _scalable(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    groups = s.topo.groups
    return np.array([ROLES[groups[int(g)]].scalable for g in ids], dtype=bool)


def _spare(s: SimState, ids: np.ndarray) -> np.ndarray:
    """Members of each group in ``ids`` not provisioned (its spare replicas)."""
    return _member_counts(s, ~s.active)[ids]


def _active_count(s: SimState, ids: np.ndarray) -> np.ndarray:
    """Members of each group in ``ids`` that are provisioned."""
    return _member_counts(s, s.active)[ids]


def _member_counts(s: SimState, which: np.ndarray) -> np.ndarray:
    """Per group, how many of its members ``which`` marks (integer counts)."""
    t = s.topo
    counts = np.bincount(t.grouped_ids_group, weights=which[t.grouped_ids], minlength=len(t.groups))
    return counts.astype(np.int64)


def _has_spare(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return _spare(s, ids) >= (arg or 1)


def _has_active(s: SimState, ids: np.ndarray, arg: int | None) -> np.ndarray:
    return _active_count(s, ids) >= (arg or 1)


PREDICATES: dict[str, Predicate] = {
    "exists": _exists,
    "is_process": _is_process,
    "is_resizable": _is_resizable,
    "host_up": _host_up,
    "up": _up,
    "hung": _hung,
    "has_process": _has_process,
    "has_previous": _has_previous,
    "has_standby": _has_standby,
    "in_service": _in_service,
    "serving": _serving,
    "is_instance": _is_instance,
    "is_queue": _is_queue,
    "is_host": _is_host,
    "is_compute_host": _is_compute_host,
    "has_room": _has_room,
    "movable": _movable,
    "on_host": _on_host,
    "same_node": _same_node,
    "in_group": _in_group,
    "scalable": _scalable,
    "has_spare": _has_spare,
    "has_active": _has_active,
}
GROUP_PREDICATES = frozenset({"scalable", "has_spare", "has_active"})


def holds(state: SimState, pre: Precondition, subjects: np.ndarray, arg: int | None) -> np.ndarray:
    """Whether ``pre`` holds for each of ``subjects`` (node or group ids), as a bool array."""
    value = PREDICATES[pre.predicate](state, subjects, arg)
    return ~value if pre.negate else value


def precondition_mask(
    state: SimState,
    spec: PrimitiveSpec,
    param: str,
    subjects: np.ndarray,
    args: Mapping[str, int] | None = None,
    memo: dict[tuple[str, int | None], np.ndarray] | None = None,
) -> np.ndarray:
    """Which ``subjects`` (values of parameter ``param``) meet ``spec``'s preconditions.

    The one evaluator of preconditions: :func:`violations` checks one call with it and the
    action masks check every slot at once. Preconditions on other parameters, or that read
    an argument not given in ``args``, are left out (the caller fixes those).

    ``memo`` keeps each predicate's values across calls on the same state and the same
    ``subjects`` (the action masks ask the same predicates of every node for many primitives).
    """
    known = args or {}
    ok = np.ones(subjects.size, dtype=bool)
    for pre in spec.preconditions:
        if pre.param != param or (pre.arg is not None and pre.arg not in known):
            continue
        arg = known.get(pre.arg) if pre.arg else None
        if memo is None:
            ok &= holds(state, pre, subjects, arg)
            continue
        key = (pre.predicate, arg)
        value = memo.get(key)
        if value is None:
            value = memo[key] = PREDICATES[pre.predicate](state, subjects, arg)
        ok &= ~value if pre.negate else value
    return ok


def violations(state: SimState, spec: PrimitiveSpec, ids: Mapping[str, int]) -> list[str]:
    """The preconditions of a call with resolved arguments ``ids`` that fail, described."""
    out = []
    for pre in spec.preconditions:
        arg = ids.get(pre.arg) if pre.arg else None
        if not holds(state, pre, np.array([ids[pre.param]]), arg)[0]:
            out.append(f"{pre.describe()} failed: {pre.message}")
    return out
