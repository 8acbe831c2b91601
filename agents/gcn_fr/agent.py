"""GCN-FR: dependency-graph reasoning. A GCN over the cloud's dependency graph classifies the
fault type and localises the root-cause node; the agent then takes ONE recovery action.

It acts, it does not plan: per incident it sends ``Diagnose(type, node); <one primitive>``,
then monitors with ``Wait(10)``. If alarms are still raised ``FOLLOW_UP_AFTER`` simulated
seconds after that action, it predicts again; only if the prediction changed (a different
fault type or node: a new reading of the incident) does it send the single action for the new
prediction. It never chains a runbook's second step: that would be planning, which is what
this baseline does not do. After that it only waits. It reads the observation only (metrics, window,
alarms, node descriptors, edges) and never the ground truth.

The weights are trained on the train split by ``train.py`` in this folder and shipped beside
this file (``weights.pt``); they are loaded on the first decision. The classifier knows the
16 train/test fault types only: the unseen families (certificate expiry, the CPU-memory
deadlock) are always diagnosed as one of those.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.devices import resolve_device
from pase_gym.sim.plan import Call, Diagnosis, Plan
from pase_gym.sim.roles import ROLE_NAMES, ROLES, Kind
from pase_gym.sim.topology import EDGE_TYPES

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.pt"
N_ROLES = len(ROLE_NAMES)
RUNS_ON = EDGE_TYPES.index("runs_on")
WAIT = Plan((Call("Wait", (10,)),))

# fault type -> (first action, follow-up action); each a (primitive, target) template where
# the target is "node" (the predicted root), "host" (the host it runs on, or itself if it is
# a host) or a fixed group name; ScaleOut's count follows the group's spare replicas.
ACTIONS: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] = {
    "process_crash": (("Restart", "node"), None),
    "process_hang": (("KillProcess", "node"), ("Restart", "node")),
    "memory_leak": (("Rollback", "node"), ("Restart", "node")),
    "bad_deploy": (("Rollback", "node"), ("Restart", "node")),
    "config_drift": (("Rollback", "node"), ("Restart", "node")),
    "cpu_hog": (("KillProcess", "host"), None),
    "disk_full": (("CleanDisk", "host"), None),
    "network_partition": (("Failover", "host"), None),
    "packet_loss": (("Failover", "host"), None),
    "dns_failure": (("Rollback", "host"), ("FlushCache", "host")),
    "queue_backlog": (("ScaleOut", "nova-conductor"), None),
    "db_lock_contention": (("Failover", "node"), ("Restart", "node")),
    "db_replica_failure": (("Isolate", "node"), ("Restart", "node")),
    "host_power_loss": (("Isolate", "host"), ("ScaleOut", "compute")),
    "noisy_neighbour": (("Throttle", "node"), None),
    "cascading_timeout": (("ScaleOut", "group"), ("Restart", "node")),
}
SCALE_OUT = 2  # replicas a ScaleOut asks for (fewer if the group has fewer spares)
THROTTLE = 40  # percent of intake a Throttle allows


def _model_module() -> Any:
    """``model.py`` of this folder, imported under a private name (agents are not a package)."""
    key = "_pase_gcn_fr_model"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / "model.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


class Agent:
    """GCN fault-type classification + root-cause localisation, then one recovery action.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, resolved once here by
            :func:`pase_gym.devices.resolve_device` (a misspelt device, or CUDA where torch
            sees none, is a :class:`~pase_gym.errors.DeviceError`).
        weights: the checkpoint (default: ``weights.pt`` beside this file).
    """

    name = "gcn_fr"
    FOLLOW_UP_AFTER = 60  # simulated seconds after the first action before a second one

    def __init__(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        self.device = resolve_device(device)
        self.weights = Path(weights) if weights is not None else WEIGHTS
        self._model: Any = None
        self._types: list[str] = []
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self.reset(0)

    # -- the harness interface ---------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Forget the episode (the agent draws no random numbers: ``seed`` changes nothing)."""
        self._first: tuple[str, str, Call | None] | None = None  # (type, node, action)
        self._first_tick = 0
        self._steps = 0
        self._follow_up_done = False
        self.last_prediction: tuple[str, str] | None = None

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        self._steps += 1
        tick = int(info.get("tick", 20 * self._steps))
        alarmed = float(np.asarray(observation["alarms"]).sum()) > 0
        if self._first is None:
            if not alarmed:
                return WAIT
            fault, node = self.predict(observation, info)
            call = self._action(fault, node, observation, info, follow_up=False)
            self._first, self._first_tick = (fault, node, call), tick
            return Plan((call,) if call else (), Diagnosis(fault, node))
        if self._follow_up_done or not alarmed or tick - self._first_tick < self.FOLLOW_UP_AFTER:
            return WAIT
        self._follow_up_done = True
        fault, node = self.predict(observation, info)
        if (fault, node) == self._first[:2]:
            return WAIT  # one action per reading of the incident; no runbook chaining
        call = self._action(fault, node, observation, info, follow_up=False)
        if call is None or call == self._first[2]:
            return WAIT
        return Plan((call,))

    # -- inference ---------------------------------------------------------------------------
    def load(self) -> None:
        """Load the weights (done on the first decision)."""
        if self._model is None:
            if not self.weights.is_file():
                raise FileNotFoundError(
                    f"GCN-FR weights not found at {self.weights}: run python agents/gcn_fr/train.py"
                )
            if str(self.device) == "cpu":
                import torch

                # one small graph per decision: extra threads only contend (2-core machines,
                # several harness workers)
                torch.set_num_threads(1)
            m = _model_module()
            self._model, self._types, self._mean, self._std = m.load_checkpoint(
                self.weights, self.device
            )

    def predict(self, observation: dict[str, Any], info: dict[str, Any]) -> tuple[str, str]:
        """(fault type, root-cause node name) from the observation alone."""
        import torch

        self.load()
        m = _model_module()
        graph = m.Graph.from_obs(observation)
        batch = m.collate([graph], self._mean, self._std).to(self.device)
        with torch.inference_mode():
            root_logp, logits = self._model(batch)
        t, slot = m.decode(
            root_logp.cpu().numpy(),
            logits[0].cpu().numpy(),
            self._types,
            np.asarray(observation["nodes"]),
            graph.mask,
            joint=True,
        )
        names = _names_by_slot(observation, info)
        self.last_prediction = (self._types[t], names[slot])
        return self.last_prediction

    # -- the single action -------------------------------------------------------------------
    def _action(
        self, fault: str, node: str, obs: dict[str, Any], info: dict[str, Any], follow_up: bool
    ) -> Call | None:
        first, second = ACTIONS[fault]
        template = second if follow_up else first
        if template is None:
            return None
        primitive, target = template
        names = _names_by_slot(obs, info)
        slots = {n: s for s, n in names.items()}
        slot = slots[node]
        nodes = np.asarray(obs["nodes"])
        if primitive == "ScaleOut":
            group = _role(nodes, slot) if target == "group" else target
            spare = _spares(nodes, group)
            if spare == 0:
                return Call("Restart", (node,)) if fault == "cascading_timeout" else None
            return Call("ScaleOut", (group, min(SCALE_OUT, spare)))
        name = names.get(_host(obs, slot), node) if target == "host" else node
        if primitive == "Throttle":
            return Call("Throttle", (name, THROTTLE))
        return Call(primitive, (name,))


def _names_by_slot(obs: dict[str, Any], info: dict[str, Any]) -> dict[int, str]:
    """Slot -> node name: ``info["node_names"]`` lists the provisioned slots in order."""
    slots = np.flatnonzero(np.asarray(obs["node_mask"]) > 0)
    return {int(s): n for s, n in zip(slots, info["node_names"], strict=True)}


def _role(nodes: np.ndarray, slot: int) -> str:
    return ROLE_NAMES[int(np.argmax(nodes[slot, :N_ROLES]))]


def _spares(nodes: np.ndarray, group: str) -> int:
    """Laid-out but unprovisioned replicas of ``group`` (what ScaleOut can add)."""
    role = nodes[:, ROLE_NAMES.index(group)] > 0
    return int(np.count_nonzero(role & (nodes[:, N_ROLES] == 0)))


def _host(obs: dict[str, Any], slot: int) -> int:
    """The host ``slot`` runs on (itself if it is a host), from the ``runs_on`` edges."""
    nodes = np.asarray(obs["nodes"])
    if ROLES[_role(nodes, slot)].kind == Kind.HOST:
        return slot
    index = np.asarray(obs["edge_index"])
    keep = (np.asarray(obs["edge_mask"]) > 0) & (np.asarray(obs["edge_type"]) == RUNS_ON)
    hosts = index[1, keep & (index[0] == slot)]
    return int(hosts[0]) if hosts.size else slot
