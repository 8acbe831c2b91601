"""A plan as the verifiers take it: its calls, their length limit, and the names it uses."""

from __future__ import annotations

from pase_gym.errors import PlanError, WorldModelError
from pase_gym.sim.plan import Call, Plan, as_plan
from pase_gym.sim.primitives import ParamType

from .view import GROUPS, Seen

__all__ = ["MAX_CALLS", "UNKNOWN", "plan_calls", "unknown_names"]

MAX_CALLS = 16
"""Longest plan a verifier scores (the env allows 64; the world models are trained on up to
six calls and a longer plan is outside anything they saw)."""


UNKNOWN = ("error", "veto")


def unknown_names(seen: Seen, call: Call) -> list[str]:
    """The node and group names of ``call`` that ``seen`` does not have."""
    out = []
    for param, value in zip(call.spec().params, call.args, strict=True):
        if param.type is ParamType.NODE and str(value) not in seen.index:
            out.append(f"unknown node {value!r}")
        elif param.type is ParamType.GROUP and value not in GROUPS:
            out.append(f"unknown group {value!r} (groups: {', '.join(GROUPS)})")
    return out


def plan_calls(plan: Plan | Call | str) -> tuple[Call, ...]:
    """The calls of ``plan`` (its diagnosis left out), checked against :data:`MAX_CALLS`.

    Raises:
        WorldModelError: the plan is malformed or longer than :data:`MAX_CALLS`.
    """
    try:
        calls = as_plan(plan).steps
    except PlanError as exc:
        raise WorldModelError(f"plan: {exc}") from None
    if len(calls) > MAX_CALLS:
        raise WorldModelError(
            f"plan: expected at most {MAX_CALLS} calls for a world model to score, found "
            f"{len(calls)}"
        )
    return calls
