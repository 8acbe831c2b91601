"""Fixed-size vectors of a scene and of a plan's calls, from what an agent sees (numpy only).

* **Node row** (:data:`NODE_DIM`): role one-hot, the eight indicators as shown (latency in
  units of 4 s, the rest as they are, all clipped to [0, 5]), the seven alarms, provisioned /
  in service / is a process, and the node's probe report (eight indicators and a 1) when a
  probe read it this step.
* **Scene** (:data:`SCENE_DIM`): over the provisioned rows, the mean and the max of the
  indicators and alarms, the share of rows alarmed, the API/RPC event counts (``log1p / 5``)
  and the clock.
* **Call** (:data:`CALL_DIM`): the primitive one-hot; the rows of its first two node
  arguments (zeros where it has none); the mean indicators and alarms of the first node's
  neighbours (dependencies and host, both ways); for a group argument the group's role
  one-hot, its members' mean indicators and alarms and its provisioned and spare counts; the
  integer argument scaled to [0, 1]; the resource one-hot; and the call's position.
* **Symbolic flags** (:data:`SYMBOLIC_DIM`, from :mod:`pase_gym.worldmodel.symbolic`): the
  call violates a precondition the observation shows, and the call interrupts a node that
  looks healthy.

A plan becomes a ``(K, CALL_DIM)`` block; a batch of plans is padded to the longest with a
mask (an empty plan has no calls: its mask is all zero). ``Diagnose(...)`` is not a call
(it changes nothing) and is not encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pase_gym.errors import WorldModelError
from pase_gym.sim.plan import Call, Plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import ALARM_RULES, EVENT_NAMES
from pase_gym.sim.state import IND, INDICATORS

from .plans import UNKNOWN, plan_calls, unknown_names
from .symbolic import plan_call_flags
from .view import N_ROLES, Seen

PRIMITIVE_NAMES = tuple(PRIMITIVES)
N_IND = len(INDICATORS)
N_ALARMS = len(ALARM_RULES)
SIGNAL_DIM = N_IND + N_ALARMS
NODE_DIM = N_ROLES + N_IND + N_ALARMS + 3 + N_IND + 1
SCENE_DIM = 2 * SIGNAL_DIM + 1 + len(EVENT_NAMES) + 1
RESOURCE_SLOTS = 4
CALL_DIM = len(PRIMITIVE_NAMES) + 2 * NODE_DIM + SIGNAL_DIM + N_ROLES + SIGNAL_DIM + 2 + 1
CALL_DIM += RESOURCE_SLOTS + 1
SYMBOLIC_DIM = 2
_LATENCY = IND["latency"]
METRIC_CLIP = 5.0


def _scaled(metrics: np.ndarray) -> np.ndarray:
    out = np.array(metrics, dtype=np.float32)
    out[..., _LATENCY] /= 4.0
    return np.clip(out, 0.0, METRIC_CLIP)


def node_table(seen: Seen) -> np.ndarray:
    """``(n, NODE_DIM)`` rows of every named node (computed once per view)."""
    return seen.memo("nodes", lambda: _node_table(seen))


def _node_table(seen: Seen) -> np.ndarray:
    n = seen.n
    nodes = np.asarray(seen.obs["nodes"][:n], dtype=np.float32)
    probed = seen.probed.astype(np.float32)
    probed[:, :-1] = _scaled(probed[:, :-1]) * (probed[:, -1:] > 0)
    table = np.concatenate(
        [
            nodes[:, :N_ROLES],
            _scaled(seen.metrics),
            seen.alarms.astype(np.float32),
            seen.active[:, None].astype(np.float32),
            nodes[:, N_ROLES + 1 : N_ROLES + 3],
            probed,
        ],
        axis=1,
    )
    return table


def _signals(table: np.ndarray) -> np.ndarray:
    """The indicator and alarm columns of node rows."""
    return table[..., N_ROLES : N_ROLES + SIGNAL_DIM]


def scene_vector(seen: Seen) -> np.ndarray:
    """``(SCENE_DIM,)`` summary of the whole scene (computed once per view)."""
    return seen.memo("scene", lambda: _scene_vector(seen))


def _scene_vector(seen: Seen) -> np.ndarray:
    table = node_table(seen)
    rows = _signals(table)[seen.active]
    if rows.shape[0] == 0:
        rows = np.zeros((1, SIGNAL_DIM), np.float32)
    alarmed = float((rows[:, N_IND:].sum(axis=1) > 0).mean())
    events = np.log1p(np.maximum(np.asarray(seen.obs["events"], np.float64), 0.0)) / 5.0
    clock = np.asarray(seen.obs["clock"], np.float32).reshape(1)
    vector = np.concatenate(
        [rows.mean(axis=0), rows.max(axis=0), [alarmed], events.astype(np.float32), clock]
    ).astype(np.float32)
    return vector


def _neighbour_signals(seen: Seen, table: np.ndarray, row: int) -> np.ndarray:
    near = seen.neighbours[row]
    near = near[seen.active[near]]
    if near.size == 0:
        return np.zeros(SIGNAL_DIM, np.float32)
    out: np.ndarray = _signals(table)[near].mean(axis=0)
    return out


def call_vector(seen: Seen, call: Call, position: int) -> np.ndarray:
    """``(CALL_DIM,)`` encoding of one call in ``seen`` (names it cannot resolve read as
    zero rows: the symbolic layer flags them)."""
    table = node_table(seen)
    out = np.zeros(CALL_DIM, np.float32)
    out[PRIMITIVE_NAMES.index(call.name)] = 1.0
    at = len(PRIMITIVE_NAMES)
    node_slot = 0
    group_part = np.zeros(N_ROLES + SIGNAL_DIM + 2, np.float32)
    number = 0.0
    resource = np.zeros(RESOURCE_SLOTS, np.float32)
    neighbours = np.zeros(SIGNAL_DIM, np.float32)
    for param, value in zip(call.spec().params, call.args, strict=True):
        if param.type is ParamType.NODE:
            row = seen.index.get(str(value))
            if row is not None and node_slot < 2:
                start = at + node_slot * NODE_DIM
                out[start : start + NODE_DIM] = table[row]
                if node_slot == 0:
                    neighbours = _neighbour_signals(seen, table, row)
            node_slot += 1
        elif param.type is ParamType.GROUP:
            group_part = _group_part(seen, table, str(value))
        elif param.type is ParamType.INT:
            span = max(param.hi - param.lo, 1)
            number = float(np.clip((int(value) - param.lo) / span, 0.0, 1.0))
        elif param.type is ParamType.RESOURCE and value in param.choices:
            resource[param.choices.index(str(value)) % RESOURCE_SLOTS] = 1.0
    at += 2 * NODE_DIM
    out[at : at + SIGNAL_DIM] = neighbours
    at += SIGNAL_DIM
    out[at : at + group_part.size] = group_part
    at += group_part.size
    out[at] = number
    out[at + 1 : at + 1 + RESOURCE_SLOTS] = resource
    out[at + 1 + RESOURCE_SLOTS] = min(position / 8.0, 1.0)
    return out


def _group_part(seen: Seen, table: np.ndarray, group: str) -> np.ndarray:
    out = np.zeros(N_ROLES + SIGNAL_DIM + 2, np.float32)
    if group not in ROLE_NAMES:
        return out
    role = ROLE_NAMES.index(group)
    out[role] = 1.0
    members = np.flatnonzero(seen.role == role)
    live = members[seen.active[members]]
    if live.size:
        out[N_ROLES : N_ROLES + SIGNAL_DIM] = _signals(table)[live].mean(axis=0)
    out[-2] = live.size / 5.0
    out[-1] = (members.size - live.size) / 5.0
    return out


@dataclass
class Batch:
    """Encoded (scene, plan) pairs: ``scene (B, SCENE_DIM)``, ``calls (B, K, CALL_DIM)``,
    ``symbolic (B, K, SYMBOLIC_DIM)`` and ``mask (B, K)`` (1 for a real call)."""

    scene: np.ndarray
    calls: np.ndarray
    symbolic: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return int(self.scene.shape[0])


def encode(
    views: Sequence[Seen], plans: Sequence[Plan | Call | str], *, unknown: str = "error"
) -> Batch:
    """Encode each ``(views[i], plans[i])``.

    ``unknown`` says what a call naming a node or group the observation does not have gets:
    ``"error"`` (the default) a :class:`~pase_gym.errors.WorldModelError`, ``"veto"`` the
    symbolic layer's violation flag (a planner that may hallucinate names scores them low).

    Raises:
        WorldModelError: the two sequences differ in length, a plan is malformed or too long,
            or (with ``unknown="error"``) it names a node or group the observation lacks.
    """
    if unknown not in UNKNOWN:
        raise WorldModelError(f"unknown: expected one of {', '.join(UNKNOWN)}, found {unknown!r}")
    if len(views) != len(plans):
        raise WorldModelError(
            f"expected one observation per plan, found {len(views)} observations and "
            f"{len(plans)} plans"
        )
    all_calls = [plan_calls(p) for p in plans]
    k = max([1, *(len(c) for c in all_calls)])
    b = len(plans)
    scene = np.zeros((b, SCENE_DIM), np.float32)
    calls = np.zeros((b, k, CALL_DIM), np.float32)
    symbolic = np.zeros((b, k, SYMBOLIC_DIM), np.float32)
    mask = np.zeros((b, k), np.float32)
    for i, (seen, plan_steps) in enumerate(zip(views, all_calls, strict=True)):
        if not isinstance(seen, Seen):
            raise WorldModelError(
                f"observations[{i}]: expected a Seen (Seen.of(observation, info)), found "
                f"{type(seen).__name__}"
            )
        scene[i] = scene_vector(seen)
        for j, call in enumerate(plan_steps):
            if unknown == "error":
                problems = unknown_names(seen, call)
                if problems:
                    raise WorldModelError(
                        f"plans[{i}] step {j + 1} {call}: {'; '.join(problems)} (the names "
                        "are the observation's info['slot_names'])"
                    )
            calls[i, j] = call_vector(seen, call, j)
        symbolic[i, : len(plan_steps)] = plan_call_flags(seen, plan_steps)
        mask[i, : len(plan_steps)] = 1.0
    return Batch(scene, calls, symbolic, mask)
