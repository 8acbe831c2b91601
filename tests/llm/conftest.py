"""Shared fixtures of the LLM tests; they never touch the network."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("torch", reason="the LLM tests need torch (pip install 'pase-gym[llm]')")
pytest.importorskip(
    "transformers", reason="the LLM tests need transformers (pip install 'pase-gym[llm]')"
)

NODES = ("controller-1", "nova-api-1", "nova-api-2", "nova-api-10", "rabbitmq-1", "mysql-1")
DESCRIPTION = (
    "t=38s. Cloud of 6 active nodes. Alarms on 1 node(s): nova-api-2: HighErrorRate 0.91. "
    "Affected components: nova-api-2 (nova-api on controller-1; depends on mysql, rabbitmq). "
    "Recent logs: nova-api-2: AccessRefused."
)


@pytest.fixture(scope="session")
def tiny():
    from pase_gym.llm.models import tiny_llama

    return tiny_llama(seed=0)


@pytest.fixture(scope="session")
def engine(tiny):
    from pase_gym.llm.engine import PlanSynthesisEngine

    model, tokenizer = tiny
    return PlanSynthesisEngine(model, tokenizer, k_virtual=4, prompt_dim=8, max_new_tokens=80)
