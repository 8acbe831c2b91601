"""What the Plan Synthesis Engine plans for (:class:`Incident`) and what it returns
(:class:`Generation`), with the forms an incident may be given in (:func:`as_incident`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pase_gym.sim.plan import Plan


@dataclass(frozen=True)
class Incident:
    """What the engine plans for: the scene description D_t and the topology's names."""

    description: str
    node_names: tuple[str, ...]
    groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Generation:
    """One decoded plan and how it was produced.

    Attributes:
        text: the plan text (always accepted by ``parse_plan``).
        plan: the parsed plan.
        n_tokens: tokens the model generated (EOS not counted).
        truncated: whether the token budget ran out and the plan was completed by the
            shortest valid continuation.
        tokens: the generated token ids, in order (what a learner scores the plan by; the
            completion of a truncated plan is not among them).
    """

    text: str
    plan: Plan
    n_tokens: int
    truncated: bool
    tokens: tuple[int, ...] = ()


def as_incident(item: Any) -> Incident:
    """``item`` as an :class:`Incident`: one already, a mapping with the keys
    ``description``, ``node_names`` (and optionally ``groups``), or a
    ``(description, node_names[, groups])`` tuple."""
    if isinstance(item, Incident):
        return item
    if isinstance(item, dict):
        groups = item.get("groups")
        return Incident(
            item["description"],
            tuple(item["node_names"]),
            None if groups is None else tuple(groups),
        )
    description, node_names, *rest = item
    groups = rest[0] if rest else None
    return Incident(description, tuple(node_names), None if groups is None else tuple(groups))


__all__ = ["Generation", "Incident", "as_incident"]
