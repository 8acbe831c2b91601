"""PASE, the whole reason–plan–verify–adapt loop (paper §3.4).

At an incident's first alarm (and again if alarms persist ``REPLAN_AFTER`` simulated seconds
after a plan, at most ``MAX_PLANS`` plans an incident), for the scene description D_t:

1. **Reason**: the meta-prompt optimiser (``mpo.py``: Soft Actor-Critic) reads D_t (a frozen
   SmolLM2 cut after 8 layers, pooled, PCA) and answers a prompt embedding p_t.
2. **Plan**: the plan synthesis engine (the ``pase`` agent's SmolLM2 + LoRA, grammar-
   constrained) writes ``CANDIDATES`` plans under p_t in one batch: the greedy one and
   ``CANDIDATES - 1`` sampled at ``TEMPERATURE``.
3. **Verify**: the world model (the shipped NSWM, :func:`pase_gym.worldmodel.load_verifier`)
   scores each from the observation alone; the best is executed if its ``F > tau``.
4. **Refine**: otherwise a new p_t is drawn from the MPO's stochastic policy and the engine
   tries again, at most ``REFINEMENTS`` times; then the agent **falls back** to a safe
   action (a probe, ``Inspect``, of the node the best candidate blamed, with its diagnosis:
   nothing on the cloud changes, and what the probe finds is in the next D_t, planned from
   at the next step) and logs the case in :attr:`Agent.fallbacks`.
5. **Adapt**: ``learn(feedback)`` after an episode (its outcome, MTTR and return, never its
   fault) turns each executed plan into a SAC transition with eq. 7's reward
   (:func:`mpo.reward`) and takes ``UPDATES_PER_EPISODE`` gradient steps; from then on the
   first prompt of an incident is drawn from the policy (exploration) instead of its mean.

Variants (paper Table 1), each a class of this module with its own name:
``NoEngine`` (no language model: the catalogue's first steps for every fault type at every
alarmed node, ranked by the world model), ``NoWorldModel`` (the greedy plan under p_t runs at
once; eq. 7 without its world-model term), ``NoMpo`` (no prompt embedding: the engine's trained
prompt), ``DescriptionOnly`` (the language model only diagnoses; the recovery is the
catalogue's first step for the fault it names), ``NoVerify`` (the greedy plan runs at once;
the world model still scores it for eq. 7), ``FixedTemplate`` (the hand-written full prompt
template with the primitive library, no prompt embedding).

Reads the observation and ``info`` only, never the ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.devices import check_device, cpu_threads, resolve_device
from pase_gym.harness.agent import sibling as _shared_sibling
from pase_gym.sim.plan import Call, Diagnosis, Plan

HERE = Path(__file__).resolve().parent
ADAPTER = HERE.parent / "pase" / "adapter"
MPO_FILE = HERE / "mpo.zip"
WAIT = Plan((Call("Wait", (10,)),))
DEFAULT_TAU = -0.95  # used when the MPO file names none


def sibling(name: str) -> Any:
    """A module of this folder, imported under a private name (agents are not a package)."""
    return _shared_sibling(HERE, name)


class Agent:
    """PASE, full loop (see the module docstring).

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (the language models' device).
        mpo: the meta-prompt optimiser file (``mpo.zip`` beside this module).
        tau: the feasibility threshold (``None``: the one chosen at training, in the file).
        threads: torch CPU threads, on the CPU (``None``: ``PASE_GYM_THREADS``, else 2;
            see :func:`pase_gym.devices.cpu_threads`).
        adapter: the engine's LoRA adapter folder.
    """

    name = "pase_full"
    #: which parts run (Table 1's rows switch them off)
    engine_on = True
    world_model_on = True
    mpo_on = True
    verify_on = True
    description_only = False
    template = "compact"

    REPLAN_AFTER = 60
    MAX_PLANS = 3
    CANDIDATES = 3
    REFINEMENTS = 1
    TEMPERATURE = 0.7
    UPDATES_PER_EPISODE = 16
    MAX_ALARMED = 8  # nodes the catalogue's candidates are aimed at (no engine)
    #: False: the best candidate runs whatever its F (the MPO warm-up; never in evaluation)
    gate = True
    #: how the prompt is chosen and adapted (``strategies.py``; Fig. 3 compares them)
    strategy = "sac"

    def __init__(
        self,
        device: str = "cpu",
        mpo: str | Path = MPO_FILE,
        tau: float | None = None,
        threads: int | None = None,
        adapter: str | Path = ADAPTER,
    ) -> None:
        self.device = check_device(device)
        self.mpo_path = Path(mpo)
        self.adapter = Path(adapter)
        cpu_threads(threads)  # a bad count (or PASE_GYM_THREADS) fails here, not in act()
        self.threads = threads
        self._tau = tau
        self.engine: Any = None
        self.verifier: Any = None
        self.encoder: Any = None
        self.mpo: Any = None
        self.header: dict[str, Any] = {}
        self._loaded = False
        self.online = False  # set by learn(): the first prompt is then drawn, not the mean
        self.fallbacks: list[dict[str, Any]] = []
        #: eq. 7's mean reward of each episode handed to learn() (0 with no executed plan)
        self.rewards: list[float] = []
        self.last_feasibility: float | None = None
        #: called with (candidates, their F) after each scoring (training's calibration)
        self.observer: Any = None
        self.reset(0)

    @property
    def learns(self) -> bool:
        """Whether ``learn`` changes anything (the variants without the optimiser do not
        learn; the harness then hands them no feedback and its rows say so)."""
        return self.mpo_on

    # -- episode state --------------------------------------------------------------------

    def reset(self, seed: int) -> None:
        """Forget the episode; sampled prompts and plans are seeded from ``seed``."""
        self._seed = int(seed)
        self._plans = 0
        self._last_tick: int | None = None
        self._probed = False  # the last round fell back to a probe: the next one is due now
        self._rng = np.random.default_rng([self._seed, 1009])
        self._executed: list[dict[str, Any]] = []

    @property
    def tau(self) -> float:
        """The feasibility threshold ``F > tau`` that a plan must clear to run."""
        if self._tau is not None:
            return float(self._tau)
        return float(self.header.get("tau", DEFAULT_TAU))

    # -- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """Load the language models, the world model and the MPO (on the first plan)."""
        if self._loaded:
            return
        import torch

        from pase_gym.llm.engine import PlanSynthesisEngine
        from pase_gym.llm.models import load_model

        mpo = sibling("mpo")
        device = resolve_device(self.device)
        if device == "cpu":
            torch.set_num_threads(cpu_threads(self.threads))
        if self.mpo_on:
            if self.mpo is None:
                self.mpo, self.encoder, self.header = mpo.load(self.mpo_path)
                if self.strategy != "sac":
                    self.mpo = sibling("strategies").build(self.strategy, self.mpo)
            if self.encoder.reader is None:
                self.encoder.reader = mpo.load_reader(device)
        elif self.mpo_path.is_file():
            self.header = mpo.read_header(self.mpo_path)  # tau only
        if self.engine_on:
            if not (self.adapter / "adapter_config.json").is_file():
                raise FileNotFoundError(
                    f"LoRA adapter not found at {self.adapter}: train it with "
                    "python agents/pase/train.py"
                )
            from pase_gym.llm.adapters import load_adapter

            model, tokenizer = load_model("smollm2", device=device)
            # merged for inference: the same plans up to float rounding, ~20% faster a token
            model = load_adapter(model, self.adapter).merge_and_unload()
            self.engine = PlanSynthesisEngine(
                model, tokenizer, template=self.template, prompt_dim=mpo.ACTION_DIM
            )
            if hasattr(self.mpo, "attach"):  # a strategy that tunes the engine itself
                self.mpo.attach(self.engine)
        if self.world_model_on:
            from pase_gym.worldmodel.verifier import load_verifier

            self.verifier = load_verifier()
        self._loaded = True

    def use(self, mpo: Any, encoder: Any, header: dict[str, Any]) -> None:
        """Act with this optimiser and encoder (training) instead of the file's."""
        self.mpo, self.encoder, self.header = mpo, encoder, header

    # -- acting ---------------------------------------------------------------------------

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        tick = int(info.get("tick", 0))
        self.last_feasibility = None
        if not info.get("alarms"):
            self._plans, self._last_tick = 0, None  # the incident (if any) is over
            return WAIT
        due = self._last_tick is None or tick - self._last_tick >= self.REPLAN_AFTER
        if not (due or self._probed) or self._plans >= self.MAX_PLANS:
            return WAIT
        self.load()
        self._probed = False
        plan = self._decide(observation, info)
        self._plans += 1
        self._last_tick = tick
        return plan

    def _decide(self, obs: dict[str, Any], info: dict[str, Any]) -> Plan:
        """One reason–plan–verify round (with its refinements and fallback)."""
        from pase_gym.llm.incident import Incident
        from pase_gym.worldmodel.view import Seen

        seen = Seen.of(obs, info) if self.verifier is not None else None
        if not self.engine_on:
            cands = self._catalogue(obs, info)
            scores = self.verifier.score([seen] * len(cands), cands, unknown="veto")
            i = int(np.argmax(scores))
            if scores[i] > self.tau:
                return self._execute(cands[i], float(scores[i]), None, None)
            return self._fallback(cands[i], float(scores[i]), info)
        incident = Incident(
            info["description"], tuple(info.get("slot_names") or info["node_names"])
        )
        state = self.encoder.encode([incident.description])[0] if self.mpo_on else None
        action = None
        if self.mpo_on:
            action = self.mpo.act(state, self._rng if self.online else None)
        direct = not (self.verify_on and self.world_model_on)
        best: tuple[Plan, float] | None = None
        for attempt in range(1 + (0 if direct else self.REFINEMENTS)):
            p = None if action is None else self.mpo.prompt_embedding(action)
            k = 1 if direct else self.CANDIDATES
            temps = [0.0] + [self.TEMPERATURE] * (k - 1)
            seed = (self._seed * 1009 + self._plans) * 31 + attempt
            gens = self.engine.generate([incident] * k, p, temperature=temps, seed=seed)
            cands = [g.plan for g in gens]
            if self.description_only:
                cands = [self._runbook(c, obs, info) for c in cands]
            if self.verifier is None:
                return self._execute(cands[0], None, state, action, (incident, gens[0]))
            scores = self.verifier.score([seen] * len(cands), cands, unknown="veto")
            if self.observer is not None:
                self.observer(cands, scores)
            if direct:
                return self._execute(cands[0], float(scores[0]), state, action, (incident, gens[0]))
            i = int(np.argmax(scores))
            if best is None or scores[i] > best[1]:
                best = (cands[i], float(scores[i]))
            if scores[i] > self.tau or not self.gate:
                return self._execute(cands[i], float(scores[i]), state, action, (incident, gens[i]))
            if self.mpo_on:  # refine: a new prompt from the stochastic policy
                action = self.mpo.act(state, self._rng)
        assert best is not None
        return self._fallback(best[0], best[1], info)

    def _execute(
        self,
        plan: Plan,
        score: float | None,
        state: Any,
        action: Any,
        written: tuple[Any, Any] | None = None,
    ) -> Plan:
        """Send ``plan`` (``written``: the incident and the engine's generation it came
        from, for a strategy that learns from the plan's tokens)."""
        self.last_feasibility = score
        feasible = None if score is None else bool(score > self.tau)
        if state is not None and action is not None:
            step = {
                "state": state,
                "action": action,
                "calls": len(plan.steps),
                "feasible": feasible,
            }
            if written is not None:
                step["incident"], step["tokens"] = written[0], written[1].tokens
            self._executed.append(step)
        return plan

    def _fallback(self, plan: Plan, score: float, info: dict[str, Any] | None) -> Plan:
        """No candidate cleared ``tau``: log the case and send a safe action instead, a probe
        of the node the best candidate blamed (``Inspect``: it changes nothing on the cloud,
        and what it finds is in the next D_t), with that candidate's diagnosis; the next
        round is due at the next step."""
        case = {"seed": self._seed, "best": str(plan), "F": score, "tau": self.tau}
        if info is not None:
            case["tick"] = int(info.get("tick", 0))
        self.fallbacks.append(case)
        self.last_feasibility = None
        node = plan.diagnosis.node if plan.diagnosis is not None else None
        if node is None and plan.steps and plan.steps[0].args:
            node = str(plan.steps[0].args[0])
        self._probed = True
        if node is None:
            return Plan(WAIT.steps, plan.diagnosis)
        return Plan((Call("Inspect", (node,)),), plan.diagnosis)

    # -- the variants' plan sources -------------------------------------------------------

    def _catalogue(self, obs: dict[str, Any], info: dict[str, Any]) -> list[Plan]:
        """Every fault type's first runbook step at each of the most-alarmed nodes."""
        from pase_gym.harness.one_action import ACTIONS, action_for, names_by_slot

        names = names_by_slot(obs, info)
        alarms = np.asarray(obs["alarms"]).sum(1)
        slots = [s for s in np.argsort(-alarms, kind="stable") if alarms[s] > 0 and s in names]
        plans: list[Plan] = []
        for slot in slots[: self.MAX_ALARMED]:
            for fault in ACTIONS:
                call = action_for(fault, names[int(slot)], obs, info)
                if call is not None:
                    plans.append(Plan((call,), Diagnosis(fault, names[int(slot)])))
        return plans or [WAIT]

    def _runbook(self, plan: Plan, obs: dict[str, Any], info: dict[str, Any]) -> Plan:
        """The engine's diagnosis with the catalogue's first step for it (description only)."""
        from pase_gym.harness.one_action import action_for

        d = plan.diagnosis
        if d is None:
            return WAIT
        try:
            call = action_for(d.fault_type, d.node, obs, info)
        except KeyError:  # a fault type without a runbook, or a node without a slot
            call = None
        return Plan(WAIT.steps if call is None else (call,), d)

    # -- adapting -------------------------------------------------------------------------

    def learn(self, feedback: dict[str, Any]) -> None:
        """After an episode, its outcome: ``feedback["recovered"]`` (bool) and, when known,
        ``feedback["mttr"]`` (seconds). Nothing else is read: never the fault's type or node.

        Each plan executed in the episode becomes a SAC transition (the D_t encoding it was
        planned for, its action, eq. 7's reward); then ``UPDATES_PER_EPISODE`` gradient
        steps, and from now on the first prompt of an incident is sampled (exploration).
        """
        if not isinstance(feedback, dict) or not isinstance(feedback.get("recovered"), bool):
            raise ValueError("feedback: expected a dict with 'recovered' (bool)")
        mttr = feedback.get("mttr")
        if mttr is not None and (isinstance(mttr, bool) or not isinstance(mttr, int | float)):
            raise ValueError(f"feedback['mttr']: expected seconds or None, found {mttr!r}")
        executed, self._executed = self._executed, []
        if not self.mpo_on or self.mpo is None:
            return
        mpo = sibling("mpo")
        self.online = True
        rewards = []
        for step in executed:
            feasible = step["feasible"] if self.world_model_on else None
            r, _ = mpo.reward(feedback["recovered"], mttr, step["calls"], feasible)
            self.mpo.add(step["state"], step["action"], r)
            if hasattr(self.mpo, "add_generation") and "tokens" in step:
                self.mpo.add_generation(step["incident"], step["tokens"], r)
            rewards.append(r)
        self.rewards.append(float(np.mean(rewards)) if rewards else 0.0)
        self.mpo.update(self.UPDATES_PER_EPISODE)

    def forget_adaptation(self) -> None:
        """Back to the shipped MPO (what ``learn`` changed is dropped)."""
        if self.mpo_on and self._loaded:
            reader = self.encoder.reader
            if hasattr(self.mpo, "detach"):
                self.mpo.detach()
            self.mpo, self.encoder, self.header = sibling("mpo").load(self.mpo_path)
            if self.strategy != "sac":
                self.mpo = sibling("strategies").build(self.strategy, self.mpo)
            if hasattr(self.mpo, "attach") and self.engine is not None:
                self.mpo.attach(self.engine)
            self.encoder.reader = reader
        self.online = False
        self._executed = []


class NoEngine(Agent):
    """Table 1, w/o plan synthesis engine: the world model ranks the catalogue's actions."""

    name = "pase_no_engine"
    engine_on = False
    mpo_on = False


class NoWorldModel(Agent):
    """Table 1, w/o neural-symbolic world model: the greedy plan under p_t runs at once."""

    name = "pase_no_world_model"
    world_model_on = False


class NoMpo(Agent):
    """Table 1, w/o meta-prompt optimiser: the engine's trained prompt, no embedding."""

    name = "pase_no_mpo"
    mpo_on = False


class DescriptionOnly(Agent):
    """Table 1, semantic description only: the engine diagnoses; the catalogue recovers."""

    name = "pase_description_only"
    description_only = True


class NoVerify(Agent):
    """Table 1, direct execution: the greedy plan runs at once (scored, never gated)."""

    name = "pase_no_verify"
    verify_on = False


class FixedTemplate(Agent):
    """Table 1, fixed prompt template: the full hand-written template, no embedding."""

    name = "pase_fixed_template"
    mpo_on = False
    template = "full"


class PpoPrompt(Agent):
    """Fig. 3: the prompt chosen by PPO instead of SAC."""

    name = "pase_mpo_ppo"
    strategy = "ppo"


class ReinforcePrompt(Agent):
    """Fig. 3: the prompt chosen by REINFORCE."""

    name = "pase_mpo_reinforce"
    strategy = "reinforce"


class RandomSearchPrompt(Agent):
    """Fig. 3: the prompt found by random search."""

    name = "pase_mpo_random_search"
    strategy = "random_search"


class EsPrompt(Agent):
    """Fig. 3: the prompt found by a (1+1) evolution strategy."""

    name = "pase_mpo_es"
    strategy = "es"


class GradientPrompt(Agent):
    """Fig. 3: the prompt found by simultaneous-perturbation gradient ascent."""

    name = "pase_mpo_gradient"
    strategy = "gradient"


class LoraTuning(Agent):
    """Fig. 3: adapter tuning instead of prompt tuning (a fresh LoRA on the engine learns
    from the executed plans' rewards; no prompt embedding)."""

    name = "pase_mpo_lora"
    strategy = "lora"


#: Fig. 3's rows: strategy -> the agent class that uses it
STRATEGY_AGENTS: dict[str, type[Agent]] = {
    cls.strategy: cls
    for cls in (
        Agent,
        PpoPrompt,
        ReinforcePrompt,
        RandomSearchPrompt,
        EsPrompt,
        GradientPrompt,
        LoraTuning,
    )
}

VARIANTS: dict[str, type[Agent]] = {
    cls.name: cls
    for cls in (Agent, NoEngine, NoWorldModel, NoMpo, DescriptionOnly, NoVerify, FixedTemplate)
}
