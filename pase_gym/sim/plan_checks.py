"""Checks of a plan's arguments against the primitive table and the fault catalogue.

Shared by :class:`~pase_gym.sim.plan.Call`, :class:`~pase_gym.sim.plan.Diagnosis`, the text
parser and the structured form, so that every spelling of a plan fails the same way: a
:class:`~pase_gym.errors.PlanError` saying where, what was expected and what was found.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pase_gym.errors import PlanError
from pase_gym.sim.faults import fault_names
from pase_gym.sim.primitives import PRIMITIVES, Param, ParamType

Value = str | int  # an argument value: ``int`` for INT parameters, ``str`` for the others

MAX_NAME_LENGTH = 64  # longest node / group name (so every valid plan's text fits the limit)
DIAGNOSE = "Diagnose"  # the optional first statement: the fault type and the faulty node

IDENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]*")
_DIGITS = frozenset("0123456789")
_DIAG_NODE = Param("node", ParamType.NODE, "the faulty node")
_diag_cache: dict[tuple[str, ...], tuple[Param, ...]] = {}


def diag_params() -> tuple[Param, ...]:
    """``Diagnose``'s parameters over the fault types registered now."""
    names = fault_names()
    params = _diag_cache.get(names)
    if params is None:
        fault = Param("fault_type", ParamType.RESOURCE, "the fault type", choices=names)
        params = _diag_cache[names] = (fault, _DIAG_NODE)
    return params


def plan_error(message: str, position: int | None, expected: str, found: str) -> PlanError:
    return PlanError(message, position=position, expected=expected, found=found)


def show_value(value: object) -> str:
    """A short rendering of a found value; never fails, whatever the value."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        text = repr(value) if abs(value) < 10**18 else "a very large int"
    else:
        text = "None" if value is None else f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:36] + "...'"


def suggest(word: object, options: Sequence[str]) -> str:
    """``"; did you mean X?"`` for a near miss among ``options``, else ``""``."""
    if not isinstance(word, str) or len(word) > MAX_NAME_LENGTH:
        return ""
    same = [o for o in options if o.lower() == word.lower()]
    near = same or difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return f"; did you mean {near[0]}?" if near else ""


def is_int_literal(text: str) -> bool:
    digits = text[1:] if text[:1] in ("+", "-") else text
    return bool(digits) and all(c in _DIGITS for c in digits)


def is_name(value: object) -> bool:
    """Whether ``value`` is a valid node or group name: an identifier, not an integer."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_NAME_LENGTH
        and IDENT_RE.fullmatch(value) is not None
        and not is_int_literal(value)
    )


def expected_text(param: Param) -> str:
    if param.type is ParamType.INT:
        return f"an int in [{param.lo}, {param.hi}]"
    if param.type is ParamType.RESOURCE:
        return "one of " + ", ".join(param.choices)
    return f"a {param.type.value} name (up to {MAX_NAME_LENGTH} of A-Z a-z 0-9 _ . @ : -)"


def check_value(param: Param, value: object) -> str | None:
    """``None`` if ``value`` fits ``param``, else what is wrong with it (a short phrase)."""
    if param.type is ParamType.INT:
        if not isinstance(value, int) or isinstance(value, bool):
            return "must be an integer"
        return None if param.lo <= value <= param.hi else "out of range"
    if param.type is ParamType.RESOURCE:
        if isinstance(value, str) and value in param.choices:
            return None
        return f"unknown {param.name.replace('_', ' ')}" + suggest(value, param.choices)
    return None if is_name(value) else f"invalid {param.type.value} name"


def check_arg(where: str, param: Param, value: object, position: int | None, found: str) -> None:
    problem = check_value(param, value)
    if problem is not None:
        raise plan_error(
            f"{where}: argument {param.name!r} {problem}", position, expected_text(param), found
        )


def params_of(name: str) -> tuple[Param, ...]:
    return diag_params() if name == DIAGNOSE else PRIMITIVES[name].params


def validate_args(name: str, args: object) -> None:
    """Raise :class:`PlanError` unless ``args`` is a valid positional tuple for ``name``."""
    params = params_of(name)
    if not isinstance(args, tuple) or len(args) != len(params):
        names = ", ".join(p.name for p in params)
        raise plan_error(f"{name}: wrong arguments", None, f"a tuple ({names})", show_value(args))
    for param, value in zip(params, args, strict=True):
        check_arg(name, param, value, None, show_value(value))


def checked_mapping(
    obj: object, where: str, required: Sequence[str], optional: Sequence[str], pos: int | None
) -> Mapping[Any, Any]:
    """``obj`` if it is a mapping with the ``required`` keys and no keys beyond ``optional``."""
    names = [*required, *optional]
    shown = ", ".join(repr(n) for n in names)
    if not isinstance(obj, Mapping):
        raise plan_error(
            f"{where} must be a mapping", pos, f"a dict with keys {shown}", show_value(obj)
        )
    for key in obj:
        if key not in names:
            raise plan_error(
                f"{where}: unknown key{suggest(key, names)}", pos, shown, show_value(key)
            )
    for key in required:
        if key not in obj:
            raise plan_error(f"{where}: missing key {key!r}", pos, f"keys {shown}", "no such key")
    return obj


def bind(name: str, where: str, args: Mapping[Any, Any], pos: int | None) -> tuple[Any, ...]:
    """The positional argument tuple of the (key-checked) mapping ``args``, validated."""
    values = []
    for param in params_of(name):
        if param.name not in args:
            raise plan_error(
                f"{where}: missing argument {param.name!r}", pos, expected_text(param), "none"
            )
        check_arg(where, param, args[param.name], pos, show_value(args[param.name]))
        values.append(args[param.name])
    return tuple(values)
