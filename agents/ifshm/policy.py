"""IFSHM's stage two: a DRL policy that picks a two-level action, the action type then its
parameter, one call per decision.

* :data:`ACTION_TYPES`: the catalogue's recovery primitives the policy may send (and
  ``Wait``). Each takes one node as its parameter; the other arguments are fixed
  (``Throttle`` to :data:`THROTTLE` %, ``ResizeResource`` adds one unit of memory, ``ScaleOut``
  brings up to :data:`SCALE_OUT` spares of the node's group).
* :func:`valid_actions`: which (type, node) pairs are allowed, from the catalogue's
  preconditions evaluated on what the observation shows
  (:class:`pase_gym.worldmodel.view.PublicState`: a precondition that the observation proves
  false masks the pair, one it cannot tell leaves it allowed).
* :class:`Memory`: what the agent keeps during an episode: the cloud's metrics as first seen
  (each node's drift since), what it has sent to each node, how many decisions it has taken.
* :class:`TwoLevelPolicy`: a ``MaskableActorCriticPolicy`` (sb3-contrib's MaskablePPO) whose
  distribution over the flat (type, node) index is p(type) * p(node | type): a type head on
  the cloud's summary, a node head shared by every node (its own features beside the summary
  and the semantic state), each normalised over the allowed nodes of that type.

Imports torch and stable-baselines3 (the ``rl`` extra).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from pase_gym.sim.plan import Call
from pase_gym.sim.predicates import precondition_mask
from pase_gym.sim.primitives import get_primitive
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import ALARM_RULES
from pase_gym.sim.state import IND, INDICATORS
from pase_gym.worldmodel.view import Seen

ACTION_TYPES = (
    "Wait",
    "Restart",
    "KillProcess",
    "Rollback",
    "CleanDisk",
    "Failover",
    "FlushCache",
    "Isolate",
    "Throttle",
    "ScaleOut",
    "RenewCertificate",
    "ResizeResource",
)
K = len(ACTION_TYPES)
WAIT = 0
MAX_SLOTS = 256  # observation rows the policy takes (the clouds of the suites have <= 228)
THROTTLE = 40
SCALE_OUT = 2
N_ROLES = len(ROLE_NAMES)
N_METRICS = len(INDICATORS)
NODE_DIM = 2 * N_METRICS + len(ALARM_RULES) + N_ROLES + 3 + K
GLOBAL_DIM = 3
TRIED_CAP = 2.0
LATENCY = IND["latency"]


def _metric_view(metrics: np.ndarray) -> np.ndarray:
    out = np.asarray(metrics, dtype=np.float32).copy()
    out[..., LATENCY] = np.log1p(np.maximum(out[..., LATENCY], 0.0))
    return out


class Memory:
    """The agent's memory of one episode (its own, not the simulator's)."""

    def __init__(self) -> None:
        self.baseline: np.ndarray | None = None
        self.tried = np.zeros((MAX_SLOTS, K), dtype=np.float32)
        self.decisions = 0
        self.first_alarm: int | None = None

    def see(self, obs: dict[str, Any], tick: int) -> None:
        """Record the first observation's metrics, and when alarms first rose."""
        if self.baseline is None:
            self.baseline = _metric_view(obs["metrics"])
        if self.first_alarm is None and float(np.asarray(obs["alarms"]).sum()) > 0:
            self.first_alarm = tick

    def sent(self, k: int, slot: int) -> None:
        self.decisions += 1
        if k != WAIT:
            self.tried[slot, k] = min(TRIED_CAP, self.tried[slot, k] + 1.0)


def node_table(obs: dict[str, Any], memory: Memory) -> np.ndarray:
    """Per observation row: metrics, drift since the first observation, alarms, the node
    descriptors, what was sent to it (``(rows, NODE_DIM)``, before normalisation)."""
    metrics = _metric_view(obs["metrics"])
    n = metrics.shape[0]
    if n > MAX_SLOTS:
        raise ValueError(f"IFSHM takes clouds of up to {MAX_SLOTS} node slots, found {n}")
    base = memory.baseline if memory.baseline is not None else metrics
    drift = metrics - base if base.shape == metrics.shape else np.zeros_like(metrics)
    return np.concatenate(
        [
            metrics,
            drift,
            np.asarray(obs["alarms"], dtype=np.float32),
            np.asarray(obs["nodes"], dtype=np.float32),
            memory.tried[:n] / TRIED_CAP,
        ],
        axis=1,
    ).astype(np.float32)


def valid_actions(obs: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
    """``(K, MAX_SLOTS)`` bool: the (type, node) pairs whose preconditions the observation
    does not prove false. ``Wait`` is the one entry ``(WAIT, 0)``."""
    seen = Seen.of(obs, info)
    state = seen.public_state()
    n = seen.n
    rows = np.arange(n)
    out = np.zeros((K, MAX_SLOTS), dtype=bool)
    out[WAIT, 0] = True
    memo: dict[tuple[str, int | None], np.ndarray] = {}
    for k, name in enumerate(ACTION_TYPES):
        if k == WAIT:
            continue
        spec = get_primitive(name)
        if name == "ScaleOut":
            group = state.topo.group_of[:n]
            ok_groups = precondition_mask(
                state, spec, "group", np.arange(len(state.topo.groups)), {"count": 1}, memo
            )
            out[k, :n] = (group >= 0) & ok_groups[np.maximum(group, 0)] & seen.active
        else:
            out[k, :n] = precondition_mask(state, spec, "node", rows, None, memo)
    return out


def call_of(k: int, slot: int, obs: dict[str, Any], info: dict[str, Any]) -> Call:
    """The call of action type ``k`` aimed at observation row ``slot``."""
    name = ACTION_TYPES[k]
    if k == WAIT:
        return Call("Wait", (10,))
    names = list(info["slot_names"])
    node = names[slot]
    if name == "Throttle":
        return Call("Throttle", (node, THROTTLE))
    if name == "ResizeResource":
        return Call("ResizeResource", (node, "memory", 1))
    if name == "ScaleOut":
        nodes = np.asarray(obs["nodes"])
        group = ROLE_NAMES[int(np.argmax(nodes[slot, :N_ROLES]))]
        role = nodes[:, ROLE_NAMES.index(group)] > 0
        spare = int(np.count_nonzero(role & (nodes[:, N_ROLES] == 0)))
        return Call("ScaleOut", (group, max(1, min(SCALE_OUT, spare))))
    return Call(name, (node,))


def action_of(call: Call, obs: dict[str, Any], info: dict[str, Any]) -> int | None:
    """The flat action index nearest to ``call`` (a teacher's call), ``None`` where the
    policy has no such action."""
    if call.name == "Wait":
        return WAIT * MAX_SLOTS
    if call.name not in ACTION_TYPES or not call.args:
        return None
    k = ACTION_TYPES.index(call.name)
    names = list(info["slot_names"])
    if call.name == "ScaleOut":
        nodes = np.asarray(obs["nodes"])
        if call.args[0] not in ROLE_NAMES:
            return None
        members = np.flatnonzero(
            (nodes[:, ROLE_NAMES.index(str(call.args[0]))] > 0) & (nodes[:, N_ROLES] > 0)
        )
        return k * MAX_SLOTS + int(members[0]) if members.size else None
    target = str(call.args[0])
    return k * MAX_SLOTS + names.index(target) if target in names else None


def observation_space(state_dim: int) -> spaces.Dict:
    """The policy's observation: what :class:`Encoder` builds."""
    return spaces.Dict(
        {
            "node": spaces.Box(-np.inf, np.inf, (MAX_SLOTS, NODE_DIM), np.float32),
            "mask": spaces.Box(0.0, 1.0, (MAX_SLOTS,), np.float32),
            "valid": spaces.Box(0.0, 1.0, (K * MAX_SLOTS,), np.float32),
            "semantic": spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
            "globals": spaces.Box(-np.inf, np.inf, (GLOBAL_DIM,), np.float32),
        }
    )


ACTION_SPACE = spaces.Discrete(K * MAX_SLOTS)


def raw_input(obs: dict[str, Any], info: dict[str, Any], memory: Memory) -> dict[str, np.ndarray]:
    """What the policy reads of one decision besides the semantic state, before
    normalisation and padding: the node table, the provisioned mask, the allowed pairs
    (flat), the globals (decisions taken, time since the first alarm, share alarmed)."""
    tick = int(info.get("tick", 0))
    since = 0.0 if memory.first_alarm is None else (tick - memory.first_alarm) / 100.0
    alarmed = float((np.asarray(obs["alarms"]).sum(axis=1) > 0).mean())
    return {
        "table": node_table(obs, memory),
        "mask": np.asarray(obs["node_mask"], dtype=np.float32),
        "valid": valid_actions(obs, info).reshape(-1).astype(np.float32),
        "globals": np.array([memory.decisions / 10.0, since, alarmed], dtype=np.float32),
    }


def finish(
    raw: dict[str, np.ndarray], semantic: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> dict[str, np.ndarray]:
    """The policy's observation from :func:`raw_input` and the semantic state: the node
    table normalised and padded to ``MAX_SLOTS`` rows (padding and spares zero)."""
    table = (raw["table"] - mean) / std
    n = table.shape[0]
    node = np.zeros((MAX_SLOTS, NODE_DIM), dtype=np.float32)
    node[:n] = table
    mask = np.zeros(MAX_SLOTS, dtype=np.float32)
    mask[:n] = raw["mask"]
    node *= mask[:, None]
    return {
        "node": node,
        "mask": mask,
        "valid": raw["valid"],
        "semantic": np.asarray(semantic, dtype=np.float32),
        "globals": raw["globals"],
    }


def policy_input(
    obs: dict[str, Any],
    info: dict[str, Any],
    memory: Memory,
    semantic: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
) -> dict[str, np.ndarray]:
    """The policy's observation of one decision (rows padded to ``MAX_SLOTS``)."""
    return finish(raw_input(obs, info, memory), semantic, mean, std)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class TwoLevelFeatures(BaseFeaturesExtractor):
    """Node embeddings (each node's features beside the semantic state), the cloud's summary
    (semantic state, globals, the nodes' masked mean and max), and the valid pairs passed on.
    Output: ``[h (MAX_SLOTS * hidden), g (hidden), valid (K * MAX_SLOTS)]``."""

    def __init__(self, observation_space: spaces.Dict, hidden: int = 64) -> None:
        state_dim = int(observation_space["semantic"].shape[0])  # type: ignore[index]
        super().__init__(
            observation_space, features_dim=MAX_SLOTS * hidden + hidden + K * MAX_SLOTS
        )
        self.hidden = hidden
        self.node = _mlp([NODE_DIM + state_dim, hidden, hidden])
        self.cloud = _mlp([state_dim + GLOBAL_DIM + 2 * hidden, hidden, hidden])

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        b = obs["node"].shape[0]
        sem = obs["semantic"]
        mask = obs["mask"].reshape(b, MAX_SLOTS, 1)
        x = torch.cat([obs["node"], sem[:, None, :].expand(b, MAX_SLOTS, sem.shape[1])], dim=-1)
        h = self.node(x) * mask
        mean = h.sum(1) / mask.sum(1).clamp(min=1.0)
        peak = (h - (1.0 - mask) * 1e4).max(1).values
        g = self.cloud(torch.cat([sem, obs["globals"], mean, peak], dim=-1))
        return torch.cat([h.reshape(b, -1), g, obs["valid"].reshape(b, -1)], dim=-1)


class TwoLevelHead(nn.Module):
    """Flat log-probabilities ``log p(type) + log p(node | type)`` over the allowed pairs."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.type_net = nn.Sequential(_mlp([hidden, hidden]), nn.Linear(hidden, K))
        self.node_net = nn.Sequential(_mlp([2 * hidden, hidden]), nn.Linear(hidden, K))

    def logit_layers(self) -> list[nn.Linear]:
        return [self.type_net[-1], self.node_net[-1]]  # type: ignore[list-item]

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        b, hd = latent.shape[0], self.hidden
        h = latent[:, : MAX_SLOTS * hd].reshape(b, MAX_SLOTS, hd)
        g = latent[:, MAX_SLOTS * hd : MAX_SLOTS * hd + hd]
        valid = latent[:, MAX_SLOTS * hd + hd :].reshape(b, K, MAX_SLOTS) > 0.5
        node = self.node_net(torch.cat([h, g[:, None, :].expand_as(h)], dim=-1)).transpose(1, 2)
        node = node.masked_fill(~valid, -1e8)
        node_logp = torch.log_softmax(node, dim=-1)
        type_logits = self.type_net(g).masked_fill(~valid.any(-1), -1e8)
        type_logp = torch.log_softmax(type_logits, dim=-1)
        return (type_logp[:, :, None] + node_logp).reshape(b, K * MAX_SLOTS)


class _Summary(nn.Module):
    """The value head: reads the cloud's summary ``g`` out of the features."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.net = nn.Sequential(_mlp([hidden, hidden]), nn.Linear(hidden, 1))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        at = MAX_SLOTS * self.hidden
        return self.net(latent[:, at : at + self.hidden])


class TwoLevelPolicy(MaskableActorCriticPolicy):
    """``MaskableActorCriticPolicy`` with :class:`TwoLevelFeatures`, :class:`TwoLevelHead` and
    a value head on the cloud's summary."""

    def __init__(self, *args: Any, hidden: int = 64, **kwargs: Any) -> None:
        self.hidden = hidden
        kwargs.setdefault("features_extractor_class", TwoLevelFeatures)
        kwargs.setdefault("features_extractor_kwargs", {"hidden": hidden})
        kwargs.setdefault("net_arch", {"pi": [], "vf": []})
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        head = TwoLevelHead(self.hidden)
        head.apply(lambda m: self.init_weights(m, gain=np.sqrt(2)))
        for layer in head.logit_layers():
            self.init_weights(layer, gain=0.01)
        self.action_net = head
        value = _Summary(self.hidden)
        value.apply(lambda m: self.init_weights(m, gain=np.sqrt(2)))
        self.init_weights(value.net[-1], gain=1.0)
        self.value_net = value
        self.optimizer = self.optimizer_class(
            self.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(hidden=self.hidden)
        return data


def build_policy(state_dim: int, hidden: int = 64, lr: float = 3e-4) -> TwoLevelPolicy:
    """A fresh policy (for behaviour cloning, loading weights, or acting)."""
    return TwoLevelPolicy(observation_space(state_dim), ACTION_SPACE, lambda _: lr, hidden=hidden)
