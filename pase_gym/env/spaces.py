"""Observation and action spaces of the env, and the encoders between them and the simulator.

Shapes are fixed per env: node slots ``N`` (the largest topology of the env's scenarios, spares
included), edge slots ``E`` and the metric window ``W``. Smaller topologies are zero-padded and
masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from pase_gym.sim.faults import fault_names
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import ALARM_RULES, EVENT_NAMES, Observation
from pase_gym.sim.state import INDICATORS, SimState
from pase_gym.sim.topology import EDGE_TYPES, Topology

OBS_PARTS = (
    "metrics",
    "window",
    "alarms",
    "events",
    "nodes",
    "node_mask",
    "edge_index",
    "edge_type",
    "edge_mask",
    "clock",
    "probed",
)
EDGE_TYPE_IDS = {name: i for i, name in enumerate(EDGE_TYPES)}
METRIC_HIGH = 20.0  # latency tops out at 4 x TIMEOUT seconds; the other indicators at 1.5
EVENT_HIGH = 1e6
PRIMITIVE_NAMES = tuple(PRIMITIVES)
RESOURCE_SLOTS = max(
    len(param.choices)
    for spec in PRIMITIVES.values()
    for param in spec.params
    if param.type is ParamType.RESOURCE
)
"""Size of a call's ``resource`` slot: a RESOURCE parameter reads its own ``choices`` at
``resource % len(choices)`` (ResizeResource: cpu, memory, disk; Trace: boot, volume, network,
cleanup)."""
NUMBER_SLOTS = 600  # INT parameters are read as lo + number % (hi - lo + 1)
N_NODE_FEATURES = len(ROLE_NAMES) + 3  # role one-hot, provisioned, in service, process


@dataclass(frozen=True)
class Shapes:
    """The fixed sizes of an env's spaces."""

    nodes: int
    edges: int
    window: int
    groups: tuple[str, ...]


def topology_edges(topo: Topology) -> tuple[np.ndarray, np.ndarray]:
    """(2, E) node-id edge index and (E,) edge type ids of a topology's typed graph."""
    return topo.edge_index, topo.edge_type


def observation_space(shapes: Shapes, parts: tuple[str, ...]) -> spaces.Dict:
    """The numeric observation space for the chosen parts."""
    n, e, w = shapes.nodes, shapes.edges, shapes.window
    f32 = np.float32
    table: dict[str, spaces.Space[Any]] = {
        "metrics": spaces.Box(0.0, METRIC_HIGH, (n, len(INDICATORS)), f32),
        "window": spaces.Box(0.0, METRIC_HIGH, (w, n, len(INDICATORS)), f32),
        "alarms": spaces.Box(0.0, 1.0, (n, len(ALARM_RULES)), f32),
        "events": spaces.Box(0.0, EVENT_HIGH, (len(EVENT_NAMES),), f32),
        "nodes": spaces.Box(0.0, 1.0, (n, N_NODE_FEATURES), f32),
        "node_mask": spaces.Box(0.0, 1.0, (n,), f32),
        "edge_index": spaces.Box(0, max(n - 1, 0), (2, e), np.int64),
        "edge_type": spaces.Box(0, len(EDGE_TYPE_IDS) - 1, (e,), np.int64),
        "edge_mask": spaces.Box(0.0, 1.0, (e,), f32),
        "clock": spaces.Box(0.0, 1.0, (1,), f32),
        "probed": spaces.Box(0.0, METRIC_HIGH, (n, len(INDICATORS) + 1), f32),
    }
    return spaces.Dict({k: table[k] for k in parts})


def encode_observation(
    state: SimState, obs: Observation, shapes: Shapes, parts: tuple[str, ...], budget: int
) -> dict[str, np.ndarray]:
    """Fill the numeric observation (zero-padded to the env's fixed shapes)."""
    t = state.topo
    n = t.n
    out: dict[str, np.ndarray] = {}
    if "metrics" in parts:
        m = np.zeros((shapes.nodes, len(INDICATORS)), np.float32)
        m[:n] = np.minimum(obs.metrics, METRIC_HIGH)
        out["metrics"] = m
    if "window" in parts:
        win = np.zeros((shapes.window, shapes.nodes, len(INDICATORS)), np.float32)
        k = min(shapes.window, obs.window.shape[0])
        win[shapes.window - k :, :n] = np.minimum(obs.window[-k:], METRIC_HIGH)
        out["window"] = win
    if "alarms" in parts:
        a = np.zeros((shapes.nodes, len(ALARM_RULES)), np.float32)
        names = [rule[3] for rule in ALARM_RULES]
        for node, alarm, _ in obs.alarms:
            a[t.index[node], names.index(alarm)] = 1.0
        out["alarms"] = a
    if "events" in parts:
        out["events"] = np.minimum(obs.events, EVENT_HIGH).astype(np.float32)
    if "nodes" in parts:
        f = np.zeros((shapes.nodes, N_NODE_FEATURES), np.float32)
        f[np.arange(n), t.role] = 1.0
        base = len(ROLE_NAMES)
        f[:n, base] = state.active
        f[:n, base + 1] = state.in_service()
        f[:n, base + 2] = t.is_process
        out["nodes"] = f
    if "node_mask" in parts:
        mask = np.zeros(shapes.nodes, np.float32)
        mask[:n] = state.active
        out["node_mask"] = mask
    if {"edge_index", "edge_type", "edge_mask"} & set(parts):
        index, types = topology_edges(t)
        k = index.shape[1]
        if "edge_index" in parts:
            ei = np.zeros((2, shapes.edges), np.int64)
            ei[:, :k] = index
            out["edge_index"] = ei
        if "edge_type" in parts:
            et = np.zeros(shapes.edges, np.int64)
            et[:k] = types
            out["edge_type"] = et
        if "edge_mask" in parts:
            em = np.zeros(shapes.edges, np.float32)
            em[:k] = 1.0
            out["edge_mask"] = em
    if "clock" in parts:
        out["clock"] = np.array([min(state.tick / max(budget, 1), 1.0)], np.float32)
    if "probed" in parts:
        p = np.zeros((shapes.nodes, len(INDICATORS) + 1), np.float32)
        for report in obs.probes:
            if report.metrics is not None:
                i = t.index[report.node]
                p[i, :-1] = np.minimum(report.metrics, METRIC_HIGH)
                p[i, -1] = 1.0
        out["probed"] = p
    return out


def action_space(shapes: Shapes) -> spaces.Dict:
    """The raw env's structured plan space: an optional diagnosis and a sequence of calls.

    A call is a primitive id plus argument slots; each primitive reads the slots its
    parameters need, in order: NODE parameters ``node`` then ``target``; GROUP ``group``;
    INT ``number`` (read as ``lo + number % (hi - lo + 1)``); RESOURCE ``resource``.
    ``diagnosis.fault`` 0 means no diagnosis, ``k`` means the k-th fault type.
    """
    n = max(shapes.nodes, 1)
    call = spaces.Dict(
        {
            "primitive": spaces.Discrete(len(PRIMITIVE_NAMES)),
            "node": spaces.Discrete(n),
            "target": spaces.Discrete(n),
            "group": spaces.Discrete(max(len(shapes.groups), 1)),
            "number": spaces.Discrete(NUMBER_SLOTS),
            "resource": spaces.Discrete(RESOURCE_SLOTS),
        }
    )
    return spaces.Dict(
        {
            "diagnosis": spaces.Dict(
                {"fault": spaces.Discrete(len(fault_names()) + 1), "node": spaces.Discrete(n)}
            ),
            "steps": spaces.Sequence(call, stack=False),
        }
    )
