"""What a verifier may read: the agent's observation and the public inventory, nothing else.

A :class:`Seen` is one observation of the env (the numeric ``Dict`` observation) with the
names of its rows (``info["slot_names"]``): exactly what the harness hands an agent. Every
verifier in :mod:`pase_gym.worldmodel` reads the scene through it, never the simulator's state.

:class:`PublicState` is the part of the simulator's state an operator can know from that
observation (which nodes exist, their roles, where each runs, which are in service, which
answer their health checks), shaped so that the catalogue's own predicates
(:data:`pase_gym.sim.predicates.PREDICATES`) evaluate on it: the symbolic layer checks a plan
against the same preconditions the simulator enforces, on what the agent can see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from pase_gym.env.spaces import OBS_PARTS
from pase_gym.errors import WorldModelError
from pase_gym.sim.roles import CONTROL_ROLES, PROCESS_KINDS, ROLE_NAMES, ROLES, Kind
from pase_gym.sim.signals import ALARM_RULES, EVENT_NAMES
from pase_gym.sim.state import IND, INDICATORS
from pase_gym.sim.topology import EDGE_TYPES

REQUIRED_PARTS = tuple(p for p in OBS_PARTS if p not in ("window", "probed"))
"""The observation parts a verifier reads (the env's default ``obs_parts`` has them all);
``probed`` is read when present."""

T = TypeVar("T")
N_ROLES = len(ROLE_NAMES)
_RUNS_ON = EDGE_TYPES.index("runs_on")
_DEPENDS_ON = EDGE_TYPES.index("depends_on")
_KIND_OF_ROLE = np.array([int(ROLES[r].kind) for r in ROLE_NAMES], dtype=np.int64)
_PROCESS_ROLE = np.array([ROLES[r].kind in PROCESS_KINDS for r in ROLE_NAMES])
GROUPS = tuple(sorted({*CONTROL_ROLES, "compute"}))
"""The scaling groups (the action space lists them): the control-plane roles and compute."""
STANDBY_ROLES = ("mysql", "rabbitmq", "haproxy")
"""Roles whose replicas stand by for each other (a topology fact an operator knows; hosts
have bonded uplinks)."""


def _shape_error(part: str, expected: str, found: object) -> WorldModelError:
    return WorldModelError(f"observation[{part!r}]: expected {expected}, found {found}")


@dataclass(frozen=True)
class Seen:
    """One observation as a verifier reads it.

    Attributes:
        obs: the env's numeric observation (a mapping of arrays, :data:`REQUIRED_PARTS` at
            least).
        names: the name of each observation row (``info["slot_names"]``).
    """

    obs: Mapping[str, np.ndarray]
    names: tuple[str, ...]
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, obs: Mapping[str, Any], info: Mapping[str, Any]) -> Seen:
        """The view of an env step's ``(observation, info)``; checks their shapes.

        Raises:
            WorldModelError: a part is missing or has the wrong shape, or ``info`` lacks
                ``slot_names``.
        """
        if not isinstance(info, Mapping) or "slot_names" not in info:
            raise WorldModelError(
                "info: expected the env's info mapping with 'slot_names' (the observation "
                "rows' names)"
            )
        return cls.checked(obs, info["slot_names"])

    @classmethod
    def checked(cls, obs: Mapping[str, Any], names: Sequence[str]) -> Seen:
        """A :class:`Seen` of ``obs`` and its row ``names``, validated."""
        if not isinstance(obs, Mapping):
            raise WorldModelError(
                f"observation: expected the env's Dict observation (a mapping of arrays), "
                f"found {type(obs).__name__}"
            )
        missing = [p for p in REQUIRED_PARTS if p not in obs]
        if missing:
            raise WorldModelError(
                f"observation: expected the parts {', '.join(REQUIRED_PARTS)}; missing "
                f"{', '.join(missing)} (make the env with its default obs_parts)"
            )
        arrays = {k: np.asarray(v) for k, v in obs.items()}
        metrics = arrays["metrics"]
        if metrics.ndim != 2 or metrics.shape[1] != len(INDICATORS):
            raise _shape_error("metrics", f"(N, {len(INDICATORS)})", metrics.shape)
        n = metrics.shape[0]
        expect = {
            "alarms": (n, len(ALARM_RULES)),
            "nodes": (n, N_ROLES + 3),
            "node_mask": (n,),
            "events": (len(EVENT_NAMES),),
            "clock": (1,),
        }
        if "probed" in arrays:
            expect["probed"] = (n, len(INDICATORS) + 1)
        for part, shape in expect.items():
            if arrays[part].shape != shape:
                raise _shape_error(part, str(shape), arrays[part].shape)
        e = arrays["edge_index"]
        if e.ndim != 2 or e.shape[0] != 2:
            raise _shape_error("edge_index", "(2, E)", e.shape)
        for part in ("edge_type", "edge_mask"):
            if arrays[part].shape != (e.shape[1],):
                raise _shape_error(part, f"({e.shape[1]},)", arrays[part].shape)
        for part in ("metrics", "alarms", "nodes", "node_mask", "events", "clock"):
            if not np.isfinite(arrays[part]).all():
                raise _shape_error(part, "finite numbers", "NaN or infinity")
        if isinstance(names, str) or not all(isinstance(x, str) for x in names):
            raise WorldModelError("names: expected a sequence of node names (info['slot_names'])")
        names = tuple(names)
        if not 0 < len(names) <= n:
            raise WorldModelError(
                f"names: expected between 1 and {n} row names (one per observation row), "
                f"found {len(names)}"
            )
        k = int(arrays["edge_mask"].sum())
        if k and (arrays["edge_index"][:, :k].min() < 0 or arrays["edge_index"][:, :k].max() >= n):
            raise _shape_error("edge_index", f"node slots in 0..{n - 1}", "a slot outside")
        return cls(arrays, names)

    # -- what the rows say ----------------------------------------------------------------
    @property
    def n(self) -> int:
        """Named rows (padding excluded)."""
        return len(self.names)

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each name."""
        return {name: i for i, name in enumerate(self.names)}

    @cached_property
    def role(self) -> np.ndarray:
        """Role id of each named row (from the ``nodes`` one-hot)."""
        return np.argmax(self.obs["nodes"][: self.n, :N_ROLES], axis=1).astype(np.int64)

    @cached_property
    def active(self) -> np.ndarray:
        """Provisioned rows."""
        return self.obs["node_mask"][: self.n] > 0.5

    @cached_property
    def in_service(self) -> np.ndarray:
        """Rows in service (the ``nodes`` column)."""
        return self.obs["nodes"][: self.n, N_ROLES + 1] > 0.5

    @cached_property
    def metrics(self) -> np.ndarray:
        """The eight indicators of each named row, as shown."""
        return np.asarray(self.obs["metrics"][: self.n], dtype=np.float64)

    @cached_property
    def alarms(self) -> np.ndarray:
        """The alarms raised on each named row (0/1)."""
        return np.asarray(self.obs["alarms"][: self.n], dtype=np.float64)

    @cached_property
    def probed(self) -> np.ndarray:
        """Each row's probe report (the eight indicators and a 1), zeros where none."""
        if "probed" in self.obs:
            return np.asarray(self.obs["probed"][: self.n], dtype=np.float64)
        return np.zeros((self.n, len(INDICATORS) + 1))

    @cached_property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(2, E) edge index and (E,) types of the real edges."""
        k = int(self.obs["edge_mask"].sum())
        index = np.asarray(self.obs["edge_index"][:, :k], dtype=np.int64)
        keep = (index < self.n).all(axis=0)
        return index[:, keep], np.asarray(self.obs["edge_type"][:k], dtype=np.int64)[keep]

    @cached_property
    def host_of(self) -> np.ndarray:
        """The host each row runs on (its own row for hosts and rows that run on nothing)."""
        index, types = self.edges
        host = np.arange(self.n)
        runs = types == _RUNS_ON
        host[index[0, runs]] = index[1, runs]
        return host

    @cached_property
    def neighbours(self) -> list[np.ndarray]:
        """Rows each row is linked to by a dependency or by running on it, either way."""
        index, types = self.edges
        keep = (types == _DEPENDS_ON) | (types == _RUNS_ON)
        src, dst = index[0, keep], index[1, keep]
        both = np.concatenate([src, dst])
        other = np.concatenate([dst, src])
        order = np.argsort(both, kind="stable")
        bounds = np.searchsorted(both[order], np.arange(self.n + 1))
        return [other[order[bounds[i] : bounds[i + 1]]] for i in range(self.n)]

    @cached_property
    def looks_healthy(self) -> np.ndarray:
        """Rows nothing shown marks as unwell: provisioned, in service, no alarm on the row or
        on its host, and no probe report over an alarm threshold."""
        quiet = self.alarms.sum(axis=1) == 0
        quiet &= quiet[self.host_of]
        probed = self.probed[:, -1] > 0
        if probed.any():
            report = self.probed[:, :-1]
            over = np.zeros(self.n, dtype=bool)
            for indicator, op, threshold, _ in ALARM_RULES:
                col = report[:, IND[indicator]]
                over |= (col < threshold) if op == "<" else (col > threshold)
            quiet &= ~(probed & over)
        return self.active & self.in_service & quiet

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()``, computed once per view (what is derived from the observation: the
        public state, the feature encoders' tables)."""
        if key not in self._memo:
            self._memo[key] = build()
        value: T = self._memo[key]
        return value

    def public_state(self) -> PublicState:
        """The state an operator can know from this observation (computed once)."""
        return self.memo("public", lambda: PublicState(self))


class _PublicTopology:
    """The topology facts the predicates read, as an operator knows them."""

    def __init__(self, seen: Seen) -> None:
        role = seen.role
        self.role = role
        self.kind = _KIND_OF_ROLE[role]
        self.is_process = _PROCESS_ROLE[role]
        self.is_host = self.kind == int(Kind.HOST)
        self.groups = GROUPS
        self.group_index = {g: i for i, g in enumerate(self.groups)}
        self.group_of = np.array(
            [self.group_index.get(ROLE_NAMES[r], -1) for r in role], dtype=np.int64
        )
        self.grouped_ids = np.flatnonzero(self.group_of >= 0)
        self.grouped_ids_group = self.group_of[self.grouped_ids]
        standby = self.is_host.copy()
        for name in STANDBY_ROLES:
            ids = np.flatnonzero(role == ROLE_NAMES.index(name))
            if ids.size > 1:
                standby[ids] = True
        self.standby_capable = standby
        instance = (self.kind == int(Kind.INSTANCE)) & seen.active
        counts = np.bincount(seen.host_of[instance], minlength=seen.n)
        # an operator knows the flavour's slots; the observation shows today's count
        self.slots_per_host = int(counts.max()) + 3 if counts.size else 3


class PublicState:
    """What an operator can know of the simulator's state from one observation.

    It carries the attributes the catalogue's predicates read, from what is shown, and where
    the observation cannot tell, the value under which the precondition holds: a provisioned
    node counts as *up* and never as hung or restarting (a crashed and a hung process both
    read availability 0, a powered-off and a choking host alike; only a probe tells them
    apart), so the symbolic layer flags a call only when what is shown proves a precondition
    fails. A node *works* when its availability is at least 0.5 and its error rate under 0.5
    (a reroute target reading 0 serves nothing), and its host is the node it ``runs_on``.
    """

    def __init__(self, seen: Seen) -> None:
        self.topo = _PublicTopology(seen)
        self.n = seen.n
        self.tick = 0
        self.active = seen.active
        availability = seen.metrics[:, IND["availability"]]
        self.up = seen.active.copy()
        self.works = self.up & (availability >= 0.5) & (seen.metrics[:, IND["error_rate"]] < 0.5)
        self.hung = np.zeros(seen.n, dtype=bool)
        self.down_until = np.zeros(seen.n, dtype=np.int64)
        self.isolated = seen.active & ~seen.in_service
        self.host_of = seen.host_of
        self._in_service = seen.in_service & seen.active

    def in_service(self) -> np.ndarray:
        """Rows in service."""
        return self._in_service

    def copy(self) -> PublicState:
        """An independent copy (the topology facts are shared)."""
        out = object.__new__(PublicState)
        out.__dict__.update(self.__dict__)
        for name in ("active", "up", "works", "isolated", "host_of", "_in_service"):
            setattr(out, name, getattr(self, name).copy())
        return out

    def apply(self, name: str, ids: Mapping[str, int]) -> None:
        """The catalogue's typed effect of a call that ran, on what an operator tracks: which
        nodes are provisioned, up, in service, and where instances run (the transition
        function's effects, restricted to those facts)."""
        t = self.topo
        node = ids.get("node")
        if name in ("ScaleOut", "ScaleIn"):
            members = np.flatnonzero(t.group_of == ids["group"])
            out = name == "ScaleOut"
            chosen = (
                members[~self.active[members]][: ids["count"]]
                if out
                else members[self.active[members]][::-1][: ids["count"]]
            )
            for row in chosen.tolist():
                rows = np.flatnonzero(self.host_of == row) if t.is_host[row] else [row]
                self.active[rows] = out
                self.up[rows] = out
                self.works[rows] = out
                self._in_service[rows] = out
                self.isolated[rows] = False
        elif name == "Restart" and node is not None:
            self.up[node] = self.works[node] = self._in_service[node] = True
            self.isolated[node] = False
        elif name in ("Isolate", "Drain") and node is not None:
            self._in_service[node] = False
            self.works[node] = False
            self.isolated[node] = name == "Isolate"
            if name == "Isolate" and t.is_host[node]:
                self._in_service[self.host_of == node] = False
        elif name == "KillProcess" and node is not None and not t.is_host[node]:
            self.up[node] = self.works[node] = False
        elif name == "Migrate":
            self.host_of[ids["instance"]] = ids["host"]
            self.up[ids["instance"]] = True
