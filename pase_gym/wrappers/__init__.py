"""Wrappers: text plans, a flat discrete action space with masks, SB3-friendly observations.

* :class:`TextPlanAction`: the action is plan text, as a language model writes it; text that
  does not parse is a penalised no-op step with the :class:`~pase_gym.errors.PlanError`
  message in ``info["plan_error"]``.
* :class:`DiscretePlanAction`: a flat ``Discrete`` over single-call plans with exact
  ``action_masks()`` derived from the primitives' preconditions (for sb3-contrib MaskablePPO).
* :class:`SB3Observation`: keeps the observation parts a stable-baselines3
  ``MultiInputPolicy`` can take (float32 boxes, no graph index).
* :func:`make_sb3_env`: the stack that makes ``PPO("MultiInputPolicy", env)`` just train.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pase_gym.env.actions import Rejected, action_index
from pase_gym.env.core import episode_of
from pase_gym.errors import PlanError
from pase_gym.sim.plan import Call, Plan
from pase_gym.sim.plan_checks import show_value
from pase_gym.sim.predicates import precondition_mask
from pase_gym.sim.primitives import PRIMITIVES, Param, ParamType, PrimitiveSpec
from pase_gym.sim.state import SimState

MAX_TEXT = 20_000
SB3_PARTS = ("metrics", "alarms", "events", "nodes", "node_mask", "clock", "probed")


class TextPlanAction(gym.ActionWrapper[dict[str, np.ndarray], str, Any]):
    """Actions are plan text (``"Diagnose(...); Restart(nova-api-2)"``)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.action_space = spaces.Text(max_length=MAX_TEXT, min_length=0, charset=_PLAN_CHARSET)

    def action(self, action: str) -> Any:
        # The env parses text itself and turns a PlanError into a penalised no-op step.
        if not isinstance(action, str):
            return Rejected(
                PlanError("expected plan text", expected="a str", found=show_value(action))
            )
        return action


_PLAN_CHARSET = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@:=(),; '\"#\n"
)

# ---- the flat discrete action table -----------------------------------------------------------
# Derived from the primitive table: one action per node slot (or per group) and per combination
# of the other parameters' ``presets``. A node parameter after the first is picked when the
# action is decoded (Migrate's host: the live compute host with the most room); primitives with
# a parameter that has neither presets nor a picker (Reroute) are not offered, nor is a primitive
# aimed at neither a node nor a group (Trace: a request type; it is offered in plans).
Action = tuple[str, tuple[Any, ...]]


def _variants(spec: PrimitiveSpec, rest: tuple[Param, ...]) -> list[tuple[Any, ...]] | None:
    """The extra-argument tuples of one primitive, or ``None`` if it cannot be offered."""
    out: list[tuple[Any, ...]] = [()]
    for param in rest:
        if param.type is ParamType.NODE and (spec.name, param.name) in _PICKED:
            continue
        if not param.presets:
            return None
        out = [(*head, value) for head in out for value in param.presets]
    return out


def action_table() -> tuple[tuple[Action, ...], tuple[Action, ...], tuple[int, ...]]:
    """(node actions, group actions, wait lengths) of :class:`DiscretePlanAction`, in order."""
    node: list[Action] = []
    group: list[Action] = []
    for spec in PRIMITIVES.values():
        if spec.name == "Wait" or not spec.params:
            continue
        first, rest = spec.params[0], spec.params[1:]
        variants = _variants(spec, rest)
        if variants is None or first.type not in (ParamType.NODE, ParamType.GROUP):
            continue
        (node if first.type is ParamType.NODE else group).extend((spec.name, v) for v in variants)
    waits = tuple(int(t) for t in PRIMITIVES["Wait"].params[0].presets)
    return tuple(node), tuple(group), waits


_PICKED = frozenset({("Migrate", "host")})


def _best_host(state: SimState) -> int | None:
    t = state.topo
    hosts = np.flatnonzero(
        (t.role == t.role[t.group_members[t.group_index["compute"]][0]])
        & state.active
        & state.up
        & ~state.isolated
    )
    if hosts.size == 0:
        return None
    counts = np.bincount(state.host_of[t.instance_ids[state.active[t.instance_ids]]], minlength=t.n)
    room = t.slots_per_host - counts[hosts]
    best = int(np.argmax(room))
    return int(hosts[best]) if room[best] > 0 else None


class DiscretePlanAction(gym.ActionWrapper[dict[str, np.ndarray], int, Any]):
    """A flat ``Discrete`` over one-call plans, with exact precondition masks.

    Layout (:func:`action_table`, derived from the primitive table and its presets): one block
    of ``N`` node slots per node action, then one block per group action over the groups,
    then the waits. ``action_masks()`` evaluates the preconditions with the transition
    function's evaluator (:func:`pase_gym.sim.predicates.precondition_mask`), over all slots.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        base = env.unwrapped
        self.slots = int(base.shapes.nodes)  # type: ignore[attr-defined]
        self.groups = tuple(base.shapes.groups)  # type: ignore[attr-defined]
        self.node_actions, self.group_actions, self.waits = action_table()
        self._node_block = len(self.node_actions) * self.slots
        self._group_block = len(self.group_actions) * len(self.groups)
        self.n_actions = self._node_block + self._group_block + len(self.waits)
        self.action_space = spaces.Discrete(self.n_actions)  # type: ignore[assignment]

    def _state(self) -> SimState:
        return episode_of(self.env).state

    def locate(self, action: int) -> tuple[str, int, int]:
        """Where action number ``action`` sits in the table: ``("node", kind, slot)``,
        ``("group", kind, group)`` or ``("wait", index, 0)``, ``kind`` indexing
        :func:`action_table`'s node or group actions.

        Raises:
            PlanError: ``action`` is not an integer in ``[0, n_actions)``.
        """
        a = action_index(action, self.n_actions, "action")
        if a < self._node_block:
            kind, slot = divmod(a, self.slots)
            return "node", kind, slot
        a -= self._node_block
        if a < self._group_block:
            kind, g = divmod(a, len(self.groups))
            return "group", kind, g
        return "wait", a - self._group_block, 0

    def encode(self, call: Call) -> int | None:
        """The action number of a one-call plan, the inverse of :meth:`decode` (a preset the
        table lacks maps to the primitive's first preset; ``Migrate``'s target and a wait's
        length to the nearest are the table's own), or ``None`` where the table has no such
        call (an unknown node or group, a primitive it does not hold)."""
        state = self._state()
        if call.name == "Wait":
            nearest = int(np.argmin([abs(w - int(call.args[0])) for w in self.waits]))
            return self._node_block + self._group_block + nearest
        for table, block in ((self.node_actions, 0), (self.group_actions, self._node_block)):
            kinds = [k for k, (name, _) in enumerate(table) if name == call.name]
            if not kinds:
                continue
            extra = tuple(call.args[1:])
            kind = next((k for k in kinds if table[k][1] == extra), kinds[0])
            target = str(call.args[0])
            if block == 0:
                slot = state.topo.index.get(target)
                return None if slot is None else kind * self.slots + int(slot)
            if target not in self.groups:
                return None
            return block + kind * len(self.groups) + self.groups.index(target)
        return None

    def decode(self, action: int) -> Plan:
        """The one-call plan of action index ``action``.

        Raises:
            PlanError: ``action`` is not an integer in ``[0, n_actions)`` (a float, ``inf``,
                a ``bool`` or an out-of-range index is never rounded or wrapped).
        """
        where, kind, at = self.locate(action)
        state = self._state()
        if where == "node":
            name, extra = self.node_actions[kind]
            if at >= state.n:
                return Plan((Call("Wait", (1,)),))  # a padding slot: harmless
            node = state.name(at)
            if name == "Migrate":
                host = _best_host(state)
                target = state.name(host) if host is not None else node
                return Plan((Call(name, (node, target)),))
            return Plan((Call(name, (node, *extra)),))
        if where == "group":
            name, extra = self.group_actions[kind]
            return Plan((Call(name, (self.groups[at], *extra)),))
        return Plan((Call("Wait", (self.waits[kind],)),))

    def action(self, action: int) -> Plan | Rejected:
        # a bad index is answered by the env like any malformed plan: a penalised no-op
        try:
            return self.decode(action)
        except PlanError as exc:
            return Rejected(exc)

    def action_masks(self) -> np.ndarray:
        """Which actions' preconditions hold now (bool, one per action)."""
        state = self._state()
        n = state.n
        mask = np.zeros(self.n_actions, dtype=np.bool_)
        ids = np.arange(n)
        memo: dict[tuple[str, int | None], np.ndarray] = {}  # a predicate's values, asked once
        for k, (name, _) in enumerate(self.node_actions):
            spec = PRIMITIVES[name]
            ok = precondition_mask(state, spec, spec.params[0].name, ids, memo=memo)
            if name == "Migrate":
                host = _best_host(state)
                if host is None:
                    ok[:] = False
                else:
                    ok &= state.host_of != host
            mask[k * self.slots : k * self.slots + n] = ok
        gids = np.arange(len(self.groups))
        group_memo: dict[tuple[str, int | None], np.ndarray] = {}
        for k, (name, extra) in enumerate(self.group_actions):
            spec = PRIMITIVES[name]
            args = {p.name: int(v) for p, v in zip(spec.params[1:], extra, strict=True)}
            ok = precondition_mask(state, spec, spec.params[0].name, gids, args, memo=group_memo)
            start = self._node_block + k * len(self.groups)
            mask[start : start + len(gids)] = ok
        mask[self._node_block + self._group_block :] = True
        return mask


class SB3Observation(gym.ObservationWrapper[dict[str, np.ndarray], Any, dict[str, np.ndarray]]):
    """Keep the parts a stable-baselines3 ``MultiInputPolicy`` takes, as float32 boxes."""

    def __init__(self, env: gym.Env[Any, Any], parts: tuple[str, ...] = SB3_PARTS) -> None:
        super().__init__(env)
        source = env.observation_space
        assert isinstance(source, spaces.Dict)
        missing = [p for p in parts if p not in source.spaces]
        if missing:
            raise ValueError(f"the env does not observe {missing}; pass obs_parts including them")
        self.parts = parts
        boxes: dict[str, spaces.Space[Any]] = {}
        for p in parts:
            box = source.spaces[p]
            assert isinstance(box, spaces.Box)
            boxes[p] = spaces.Box(
                box.low.astype(np.float32), box.high.astype(np.float32), box.shape, np.float32
            )
        self.observation_space = spaces.Dict(boxes)  # type: ignore[assignment]

    def observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {p: observation[p].astype(np.float32, copy=False) for p in self.parts}

    def action_masks(self) -> np.ndarray:
        """Forward the inner ``DiscretePlanAction`` masks (sb3-contrib looks here)."""
        masks: np.ndarray = self.env.get_wrapper_attr("action_masks")()
        return masks


def make_sb3_env(env_id: str = "PASE-OpenStack-Tiny-v4", **kwargs: Any) -> gym.Env[Any, Any]:
    """``gym.make(env_id)`` wrapped for stable-baselines3: discrete masked actions, flat obs."""
    env = gym.make(env_id, **kwargs)
    return SB3Observation(DiscretePlanAction(env))


__all__ = ["DiscretePlanAction", "SB3Observation", "TextPlanAction", "make_sb3_env"]
