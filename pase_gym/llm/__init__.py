"""PASE's language-model side: loading the LLM, prompts, constrained decoding, the engine.

Importing this package is cheap: torch and transformers are imported only when a model is
loaded or an engine is built.
"""

from __future__ import annotations

from pase_gym.llm.constrained import (
    ConstraintError,
    PlanRecognizer,
    TokenConstraint,
    groups_from_nodes,
)
from pase_gym.llm.engine import Generation, Incident, PlanSynthesisEngine
from pase_gym.llm.models import (
    ModelError,
    ModelNotInstalledError,
    ModelPathError,
    load_model,
    tiny_llama,
)
from pase_gym.llm.prompts import PROMPT_VERSION, build_prompt

__all__ = [
    "PROMPT_VERSION",
    "ConstraintError",
    "Generation",
    "Incident",
    "ModelError",
    "ModelNotInstalledError",
    "ModelPathError",
    "PlanRecognizer",
    "PlanSynthesisEngine",
    "TokenConstraint",
    "build_prompt",
    "groups_from_nodes",
    "load_model",
    "tiny_llama",
]
