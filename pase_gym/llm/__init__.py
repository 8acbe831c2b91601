"""PASE's language-model side: loading the LLM, prompts, constrained decoding, the engine, and
fine-tuning it with LoRA.

Where each concept lives:

* :mod:`~pase_gym.llm.models`: loading SmolLM2 or a local model, the tiny test model;
* :mod:`~pase_gym.llm.prompts`: the prompt templates;
* :mod:`~pase_gym.llm.constrained`: the plan grammar as a token constraint;
* :mod:`~pase_gym.llm.incident`: what the engine plans for and what it returns;
* :mod:`~pase_gym.llm.prefill`, :mod:`~pase_gym.llm.prefix_cache`,
  :mod:`~pase_gym.llm.decoding`: running the prompt, reusing its prefix, decoding steps;
* :mod:`~pase_gym.llm.engine`: the Plan Synthesis Engine;
* :mod:`~pase_gym.llm.demonstrations`, :mod:`~pase_gym.llm.training`,
  :mod:`~pase_gym.llm.adapters`: fine-tuning data, the LoRA training loop, adapters on disk;
* :mod:`~pase_gym.llm.finetune`: the training command, ``python -m pase_gym.llm.finetune``.

Importing this package is cheap: torch, transformers and peft are imported only when a model
is loaded, an engine is built or training runs.
"""

from __future__ import annotations

from pase_gym.llm.adapters import adapter_meta, load_adapter, save_adapter
from pase_gym.llm.constrained import (
    ConstraintError,
    PlanRecognizer,
    TokenConstraint,
    groups_from_nodes,
)
from pase_gym.llm.demonstrations import Demonstration, collect_demonstrations
from pase_gym.llm.engine import PlanSynthesisEngine
from pase_gym.llm.incident import Generation, Incident
from pase_gym.llm.models import (
    ModelError,
    ModelNotInstalledError,
    ModelPathError,
    load_model,
    tiny_llama,
)
from pase_gym.llm.prompts import PROMPT_VERSION, build_prompt
from pase_gym.llm.training import TrainConfig, TrainResult, train_lora

__all__ = [
    "PROMPT_VERSION",
    "ConstraintError",
    "Demonstration",
    "Generation",
    "Incident",
    "ModelError",
    "ModelNotInstalledError",
    "ModelPathError",
    "PlanRecognizer",
    "PlanSynthesisEngine",
    "TokenConstraint",
    "TrainConfig",
    "TrainResult",
    "adapter_meta",
    "build_prompt",
    "collect_demonstrations",
    "groups_from_nodes",
    "load_adapter",
    "load_model",
    "save_adapter",
    "tiny_llama",
    "train_lora",
]
