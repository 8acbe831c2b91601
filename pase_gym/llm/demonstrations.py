"""What PASE is fine-tuned on: the oracle's plans for train-split incidents, as token ids.

Each :class:`Demonstration` is what an agent sees at the moment an incident first raises an
alarm (``info["description"]`` and the node vocabulary) paired with the oracle's ground-truth
plan for it (:func:`~pase_gym.sim.oracle.oracle_plan`), collected through the env exactly as
the harness runs an agent (start healthy, ``Wait(10)`` until the first alarm).
:func:`encode_examples` turns them into ``(input_ids, labels)`` with the loss on the plan only.

gymnasium and the env are imported inside :func:`collect_demonstrations` only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pase_gym.errors import FinetuneError
from pase_gym.llm.prompts import build_prompt

logger = logging.getLogger(__name__)

MAX_WAIT_STEPS = 120  # monitoring steps before giving up on an incident that never alarms


@dataclass(frozen=True)
class Demonstration:
    """One training example: what the agent saw at the first alarm and the oracle's plan."""

    scenario: str
    seed: int
    description: str
    node_names: tuple[str, ...]
    plan: str


def collect_demonstrations(
    split: str = "train",
    seeds: Iterable[int] = range(8),
    scenarios: Sequence[str] | None = None,
) -> list[Demonstration]:
    """The oracle's plans for the incidents of a split's scenarios, one per (scenario, seed).

    Args:
        split: which split's scenarios (``train`` for training; never the test split).
        seeds: env seeds per scenario.
        scenarios: scenario names (default: every built-in scenario of ``split``).
    """
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids)
    from pase_gym.env.core import episode_of
    from pase_gym.scenarios import list_scenarios
    from pase_gym.sim.oracle import oracle_plan

    names = list(scenarios) if scenarios is not None else list_scenarios(split)
    seeds = list(seeds)
    out: list[Demonstration] = []
    for name in names:
        env = gym.make("PASE-OpenStack-v4", scenario=name)
        try:
            for seed in seeds:
                _, info = env.reset(seed=seed)
                for _ in range(MAX_WAIT_STEPS):
                    if info["alarms"]:
                        break
                    _, _, terminated, truncated, info = env.step("Wait(10)")
                    if terminated or truncated:
                        break
                if not info["alarms"]:
                    logger.warning("%s seed %d raised no alarm; skipped", name, seed)
                    continue
                plan = oracle_plan(episode_of(env).state)
                if not plan.steps:
                    continue
                out.append(
                    Demonstration(
                        name, seed, info["description"], tuple(info["slot_names"]), str(plan)
                    )
                )
        finally:
            env.close()
    return out


def encode_examples(
    tokenizer: Any, demos: Sequence[Demonstration], template: str = "compact"
) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per demonstration: the prompt (labels ``-100``) then the plan
    and the end-of-sequence token (the loss is on these only).

    Raises:
        FinetuneError: the tokenizer has no end-of-sequence token.
    """
    if tokenizer.eos_token is None:
        raise FinetuneError("the tokenizer has no end-of-sequence token")
    add_special = not getattr(tokenizer, "chat_template", None)
    out = []
    for d in demos:
        prompt = build_prompt(tokenizer, d.description, d.node_names, template=template)
        p_ids = tokenizer(prompt, add_special_tokens=add_special)["input_ids"]
        t_ids = tokenizer(d.plan, add_special_tokens=False)["input_ids"]
        t_ids = [*t_ids, int(tokenizer.eos_token_id)]
        out.append(([*p_ids, *t_ids], [-100] * len(p_ids) + t_ids))
    return out


__all__ = ["MAX_WAIT_STEPS", "Demonstration", "collect_demonstrations", "encode_examples"]
