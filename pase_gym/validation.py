"""One reading of a pydantic ``ValidationError`` for every user file the project validates
(scenarios, suites, submission manifests): the dotted key of the first problem and a message
that says what was expected there.

Cross-field checks name their key inside the message as ``@key@ message``; an unknown key is
answered with the keys the model (or the nested model at that place) accepts; a missing one
with "required key is missing"; further problems are counted, not listed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

_TYPE_TAGS = ("int", "str", "float", "bool", "list", "tuple")


def key_of(loc: tuple[Any, ...]) -> str:
    """The dotted key of a pydantic error location, without its union-branch tags (``int``,
    ``list[str]``, ``function-before[...]``)."""
    parts = [
        str(p)
        for p in loc
        if isinstance(p, int) or ("[" not in str(p) and str(p) not in _TYPE_TAGS)
    ]
    return ".".join(parts) or "<root>"


def allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the (nested) model at ``loc`` accepts, sorted (empty if ``loc`` leads nowhere)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and hasattr(c, "model_fields")]
        if not nested:
            for c in candidates:
                inner = getattr(c, "__args__", ())
                nested += [a for a in inner if isinstance(a, type) and hasattr(a, "model_fields")]
        if not nested:
            return []
        current = nested[0]
    return sorted(current.model_fields)


def first_problem(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """``(key, message)`` of the first problem of ``exc`` (raised validating ``model``)."""
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    key = key_of(loc)
    message = str(first["msg"]).removeprefix("Value error, ")
    if message.startswith("@"):  # a cross-field check names its key as @key@
        inner, _, message = message[1:].partition("@ ")
        key = inner if key == "<root>" else f"{key}.{inner}"
    if first["type"] == "extra_forbidden":
        message = f"unknown key; expected one of {', '.join(allowed_keys(model, loc[:-1]))}"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return key, message
