"""MaskablePPO for the tiny cloud: what the agent remembers, and a policy shared across nodes.

Two pieces, both on the agent's side of the Gymnasium API (the env is not changed):

* :class:`RecoveryMemory`, an observation wrapper over :func:`pase_gym.wrappers.make_sb3_env`.
  It adds what an operator keeps in their head during an incident: each node's metrics as a
  change from the first observation of the episode (``drift``; the cloud before the fault, as
  the agent saw it at reset), and what the agent has already done to each node and group
  (``tried``, ``group_tried``: how often this episode, capped at 2).
* :class:`NodeSharedPolicy`, a ``MaskableActorCriticPolicy`` whose node actions are scored by
  one small network applied to every node (each node's features beside a summary of the whole
  cloud), its group actions by the same network over each group's members, and its waits from
  the summary. Restarting a crashed node is then learnt once, not once per node slot, which is
  what makes the flat 730-way action space learnable in minutes. Logits are laid out as
  :class:`~pase_gym.wrappers.DiscretePlanAction` numbers its actions (one block of node slots
  per node action, then one block of groups per group action, then the waits), so its exact
  precondition masks apply unchanged.

Imports torch and stable-baselines3 (the ``rl`` extra).
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from pase_gym.env.core import episode_of
from pase_gym.errors import PlanError
from pase_gym.wrappers import DiscretePlanAction

DRIFT_CAP = 4.0  # |change| kept, in the metrics' own units
TRIED_CAP = 2.0  # times an action on a node is counted
NODE_PARTS = ("metrics", "alarms", "nodes", "probed", "drift", "tried")
GLOBAL_PARTS = ("events", "clock", "group_tried")


class RecoveryMemory(gym.Wrapper[dict[str, np.ndarray], int, dict[str, np.ndarray], int]):
    """Adds ``drift``, ``tried`` and ``group_tried`` to an ``SB3Observation`` env's
    observations (see the module docstring) and forwards ``action_masks``."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.plans = plans = _plan_actions(env)
        self.slots = int(plans.slots)
        self.n_groups = len(plans.groups)
        self.n_node_actions = len(plans.node_actions)
        self.n_group_actions = len(plans.group_actions)
        source = env.observation_space
        assert isinstance(source, spaces.Dict)
        metrics = source["metrics"]
        assert isinstance(metrics, spaces.Box)
        boxes: dict[str, spaces.Space[Any]] = dict(source.spaces)
        boxes["drift"] = spaces.Box(-DRIFT_CAP, DRIFT_CAP, metrics.shape, np.float32)
        boxes["tried"] = spaces.Box(0.0, 1.0, (self.slots, self.n_node_actions), np.float32)
        boxes["group_tried"] = spaces.Box(
            0.0, 1.0, (self.n_groups * self.n_group_actions,), np.float32
        )
        self.observation_space = spaces.Dict(boxes)  # type: ignore[assignment]
        self._baseline = np.zeros(metrics.shape, np.float32)
        self._tried = np.zeros((self.slots, self.n_node_actions), np.float32)
        self._group_tried = np.zeros((self.n_groups, self.n_group_actions), np.float32)

    def _extend(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        drift = np.clip(obs["metrics"] - self._baseline, -DRIFT_CAP, DRIFT_CAP)
        return {
            **obs,
            "drift": drift.astype(np.float32),
            "tried": self._tried / TRIED_CAP,
            "group_tried": (self._group_tried.T / TRIED_CAP).reshape(-1),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._baseline = obs["metrics"].astype(np.float32, copy=True)
        self._tried[:] = 0.0
        self._group_tried[:] = 0.0
        return self._extend(obs), info

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        try:
            where, kind, at = self.plans.locate(action)
        except PlanError:  # a bad index: the env answers it as a malformed plan
            where, kind, at = "bad", 0, 0
        if where == "node":
            self._tried[at, kind] = min(self._tried[at, kind] + 1.0, TRIED_CAP)
        elif where == "group":
            self._group_tried[at, kind] = min(self._group_tried[at, kind] + 1.0, TRIED_CAP)
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._extend(obs), float(reward), terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The precondition masks of the ``DiscretePlanAction`` underneath."""
        masks: np.ndarray = self.env.get_wrapper_attr("action_masks")()
        return masks

    def layout(self) -> dict[str, Any]:
        """What :class:`NodeSharedPolicy` needs to know of the action table and the groups."""
        topo = episode_of(self.env).state.topo
        plans = self.plans
        members = [[int(i) for i in topo.group_members[topo.group_index[g]]] for g in plans.groups]
        return {
            "slots": self.slots,
            "node_actions": self.n_node_actions,
            "group_actions": self.n_group_actions,
            "waits": len(plans.waits),
            "members": members,
        }


def _plan_actions(env: gym.Env[Any, Any]) -> DiscretePlanAction:
    """The ``DiscretePlanAction`` wrapper under ``env``."""
    inner: Any = env
    while not isinstance(inner, DiscretePlanAction):
        if not isinstance(inner, gym.Wrapper):
            raise TypeError("RecoveryMemory wraps an env built by make_sb3_env")
        inner = inner.env
    return inner


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class NodeFeatures(BaseFeaturesExtractor):
    """Per node: an embedding of its own parts; for the cloud: one of the global parts and the
    nodes' masked mean and max. Output: the node embeddings (flattened), then the cloud's."""

    def __init__(self, observation_space: spaces.Dict, hidden: int = 64) -> None:
        slots = int(observation_space["metrics"].shape[0])  # type: ignore[index]
        per_node = sum(int(np.prod(observation_space[p].shape[1:])) for p in NODE_PARTS)  # type: ignore[index, misc]
        per_cloud = sum(int(np.prod(observation_space[p].shape)) for p in GLOBAL_PARTS)  # type: ignore[index, misc]
        super().__init__(observation_space, features_dim=slots * hidden + hidden)
        self.slots, self.hidden = slots, hidden
        self.node = _mlp([per_node, hidden, hidden])
        self.cloud = _mlp([per_cloud + 2 * hidden, hidden, hidden])

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = obs["metrics"].shape[0]
        x = torch.cat([obs[p].reshape(batch, self.slots, -1) for p in NODE_PARTS], dim=-1)
        mask = obs["node_mask"].reshape(batch, self.slots, 1)
        h = self.node(x) * mask
        count = mask.sum(dim=1).clamp(min=1.0)
        mean = h.sum(dim=1) / count
        peak = (h - (1.0 - mask) * 1e4).max(dim=1).values  # h >= 0 (ReLU): padding never wins
        cloud_in = [obs[p].reshape(batch, -1) for p in GLOBAL_PARTS]
        g = self.cloud(torch.cat([*cloud_in, mean, peak], dim=-1))
        return torch.cat([h.reshape(batch, -1), g], dim=-1)


class SharedActionHead(nn.Module):
    """Logits in ``DiscretePlanAction``'s order from :class:`NodeFeatures`' output."""

    def __init__(self, layout: dict[str, Any], hidden: int) -> None:
        super().__init__()
        self.slots = int(layout["slots"])
        self.hidden = hidden
        members = torch.zeros(len(layout["members"]), self.slots)
        for g, nodes in enumerate(layout["members"]):
            if nodes:
                members[g, nodes] = 1.0 / len(nodes)
        self.register_buffer("members", members)
        self.node = nn.Sequential(
            _mlp([2 * hidden, hidden]), nn.Linear(hidden, layout["node_actions"])
        )
        self.group = nn.Sequential(
            _mlp([2 * hidden, hidden]), nn.Linear(hidden, layout["group_actions"])
        )
        self.wait = nn.Linear(hidden, layout["waits"])

    def logit_layers(self) -> list[nn.Linear]:
        """The layers that output logits."""
        return [self.node[-1], self.group[-1], self.wait]  # type: ignore[list-item]

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        batch = latent.shape[0]
        h = latent[:, : self.slots * self.hidden].reshape(batch, self.slots, self.hidden)
        g = latent[:, self.slots * self.hidden :]
        node = self.node(torch.cat([h, g[:, None, :].expand_as(h)], dim=-1))  # (B, N, A)
        groups = torch.einsum("gn,bnh->bgh", self.members, h)
        group = self.group(torch.cat([groups, g[:, None, :].expand_as(groups)], dim=-1))
        node_logits = node.transpose(1, 2).reshape(batch, -1)  # action-major, as the table
        group_logits = group.transpose(1, 2).reshape(batch, -1)
        return torch.cat([node_logits, group_logits, self.wait(g)], dim=-1)


class NodeSharedPolicy(MaskableActorCriticPolicy):
    """``MaskableActorCriticPolicy`` with :class:`NodeFeatures` and :class:`SharedActionHead`.

    ``layout`` comes from :meth:`RecoveryMemory.layout`; ``hidden`` is the embedding width.
    """

    def __init__(self, *args: Any, layout: dict[str, Any], hidden: int = 64, **kwargs: Any) -> None:
        self.layout = layout
        self.hidden = hidden
        kwargs.setdefault("features_extractor_class", NodeFeatures)
        kwargs.setdefault("features_extractor_kwargs", {"hidden": hidden})
        kwargs.setdefault("net_arch", {"pi": [], "vf": [hidden]})
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        head = SharedActionHead(self.layout, self.hidden)
        # SB3's initialisation: orthogonal, gain sqrt(2) for hidden layers and 0.01 for the
        # logits (near-uniform over the allowed actions at the start)
        head.apply(partial(self.init_weights, gain=np.sqrt(2)))
        for layer in head.logit_layers():
            self.init_weights(layer, gain=0.01)
        self.action_net = head
        self.optimizer = self.optimizer_class(  # the new head's parameters included
            self.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(layout=self.layout, hidden=self.hidden)
        return data
