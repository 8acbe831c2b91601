"""The one decoder of the envs' actions: structured actions, plans, calls and plan text.

:func:`to_plan` turns whatever an agent handed to ``env.step`` (or to ``simulate``) into a
:class:`~pase_gym.sim.plan.Plan`, or raises :class:`~pase_gym.errors.PlanError`; the env
answers the error with a penalised no-op, exactly as it answers malformed text.

A **structured action** is a sample of :func:`pase_gym.env.spaces.action_space`:
``{"diagnosis": {"fault": F, "node": N}, "steps": [{"primitive": P, "node": ..., ...}, ...]}``.
:func:`decode_action` checks every field before it builds anything:

* the action is a mapping with ``steps`` (a list or tuple of at most
  :data:`~pase_gym.sim.plan.MAX_STEPS` calls, counted before any is read) and optionally
  ``diagnosis``; no other key;
* every slot is an integer (a Python ``int``, a numpy integer, or a 0-d integer array; not a
  ``bool``, a float, ``inf`` or ``nan``) inside its ``Discrete`` range: nothing is wrapped
  around (``primitive=-1`` is an error, not the last primitive);
* a step names only the slots of the space and has every slot its primitive reads; a node slot
  names a node of the running topology (not a padding slot);
* ``diagnosis.fault`` 0 means no diagnosis; ``k`` names the k-th fault type and then needs a
  ``node`` slot naming a node of the topology.

Documented encodings stay as they are: an INT parameter is read as
``lo + number % (hi - lo + 1)`` from its ``number`` slot (``0 <= number < NUMBER_SLOTS``).
Whatever the spelling, a diagnosis must name a node of the running topology.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pase_gym.errors import PlanError
from pase_gym.sim.faults import fault_names
from pase_gym.sim.plan import MAX_STEPS, Call, Diagnosis, Plan, as_plan
from pase_gym.sim.plan_checks import show_value
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.topology import Topology

from .spaces import NUMBER_SLOTS, PRIMITIVE_NAMES, RESOURCE_SLOTS, Shapes

ACTION_KEYS = frozenset({"diagnosis", "steps"})
STEP_KEYS = ("primitive", "node", "target", "group", "number", "resource")
DIAGNOSIS_KEYS = ("fault", "node")


@dataclass(frozen=True)
class Rejected:
    """An action a wrapper could not translate: the env answers it like any malformed plan
    (a penalised no-op whose ``info["plan_error"]`` is :attr:`error`)."""

    error: PlanError


def action_index(value: object, size: int, where: str) -> int:
    """``value`` as an index in ``range(size)``, or a :class:`PlanError` saying why not."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise PlanError(
            f"{where}: expected an integer slot",
            expected=f"an int in [0, {size - 1}]",
            found=show_value(value),
        )
    index = int(value)
    if not 0 <= index < size:
        raise PlanError(
            f"{where}: slot out of range",
            expected=f"an int in [0, {size - 1}]",
            found=show_value(index),
        )
    return index


def _fields(raw: object, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise PlanError(
            f"{where}: expected a mapping of slots",
            expected=", ".join(allowed),
            found=show_value(raw),
        )
    extra = [k for k in raw if k not in allowed]
    if extra:
        raise PlanError(
            f"{where}: unknown slot",
            expected="one of " + ", ".join(allowed),
            found=show_value(extra[0]),
        )
    return raw


def _missing(key: str, size: int, where: str) -> PlanError:
    return PlanError(f"{where}: missing slot {key!r}", expected=f"an int in [0, {size - 1}]")


def _slot(raw: Mapping[str, Any], key: str, size: int, where: str) -> int:
    if key not in raw:
        raise _missing(key, size, where)
    return action_index(raw[key], size, f"{where}.{key}")


def _node_name(index: int, key: str, topo: Topology, where: str) -> str:
    if index >= topo.n:
        raise PlanError(
            f"{where}.{key}: node slot {index} is padding in this topology",
            expected=f"a slot below {topo.n}",
            found=str(index),
        )
    return topo.names[index]


def _call(raw: object, topo: Topology, shapes: Shapes, where: str) -> Call:
    fields = _fields(raw, STEP_KEYS, where)
    sizes = {
        "primitive": len(PRIMITIVE_NAMES),
        "node": max(shapes.nodes, 1),
        "target": max(shapes.nodes, 1),
        "group": max(len(shapes.groups), 1),
        "number": NUMBER_SLOTS,
        "resource": RESOURCE_SLOTS,
    }
    name = PRIMITIVE_NAMES[_slot(fields, "primitive", sizes["primitive"], where)]
    # every slot present is checked once, read or not; those the primitive reads must be there
    slots = {
        key: action_index(value, sizes[key], f"{where}.{key}") for key, value in fields.items()
    }

    def need(key: str) -> int:
        if key not in slots:
            size = sizes[key]
            raise PlanError(f"{where}: missing slot {key!r}", expected=f"an int in [0, {size - 1}]")
        return slots[key]

    args: list[str | int] = []
    nodes = iter(("node", "target"))
    for param in PRIMITIVES[name].params:
        if param.type is ParamType.NODE:
            key = next(nodes)
            args.append(_node_name(need(key), key, topo, where))
        elif param.type is ParamType.GROUP:
            if not shapes.groups:
                raise PlanError(f"{where}: {name} needs a group, and this env has none")
            args.append(shapes.groups[need("group")])
        elif param.type is ParamType.INT:
            args.append(param.lo + need("number") % (param.hi - param.lo + 1))
        else:
            args.append(param.choices[need("resource") % len(param.choices)])
    return Call(name, tuple(args))


def _diagnosis(raw: object, topo: Topology, shapes: Shapes) -> Diagnosis | None:
    if raw is None:
        return None
    fields = _fields(raw, DIAGNOSIS_KEYS, "diagnosis")
    names = fault_names()
    fault = _slot(fields, "fault", len(names) + 1, "diagnosis")
    if fault == 0:
        if "node" in fields:
            action_index(fields["node"], max(shapes.nodes, 1), "diagnosis.node")
        return None
    node = _slot(fields, "node", max(shapes.nodes, 1), "diagnosis")
    return Diagnosis(names[fault - 1], _node_name(node, "node", topo, "diagnosis"))


def decode_action(action: Any, topo: Topology, shapes: Shapes) -> Plan:
    """Turn a structured action (a sample of the env's action space) into a :class:`Plan`.

    Every field is checked before anything is built (see the module docstring).

    Raises:
        PlanError: saying which field (``step 2.node``, ``diagnosis.fault``), what was expected
            and what was found.
    """
    if not isinstance(action, Mapping):
        raise PlanError(
            "expected a dict with 'steps' (and optionally 'diagnosis')",
            found=show_value(action),
        )
    extra = [k for k in action if k not in ACTION_KEYS]
    if extra:
        raise PlanError(
            "unknown key in a structured action",
            expected="steps, diagnosis",
            found=show_value(extra[0]),
        )
    if "steps" not in action:
        raise PlanError("a structured action needs 'steps'", expected="a list of calls")
    steps = action["steps"]
    if not isinstance(steps, list | tuple):
        raise PlanError(
            "'steps' must be a list or tuple of calls", expected="a list", found=show_value(steps)
        )
    if len(steps) > MAX_STEPS:
        raise PlanError(
            "plan too long", expected=f"at most {MAX_STEPS} steps", found=str(len(steps))
        )
    calls = tuple(_call(raw, topo, shapes, f"step {i}") for i, raw in enumerate(steps))
    return Plan(calls, _diagnosis(action.get("diagnosis"), topo, shapes))


def check_diagnosis_node(plan: Plan, topo: Topology) -> Plan:
    """``plan``, if its diagnosis (when it has one) names a node of ``topo``.

    Raises:
        PlanError: the diagnosis names a node this topology does not have.
    """
    diagnosis = plan.diagnosis
    if diagnosis is not None and diagnosis.node not in topo.index:
        raise PlanError(
            "Diagnose: unknown node in this topology",
            expected="a node name of the running cloud (info['node_names'])",
            found=show_value(diagnosis.node),
        )
    return plan


def to_plan(action: Any, topo: Topology, shapes: Shapes) -> Plan:
    """Any action the envs take as a :class:`Plan`: a ``Plan``, a ``Call``, plan text, a
    structured action (:func:`decode_action`) or a wrapper's :class:`Rejected`.

    Raises:
        PlanError: the action is none of these, is malformed, or diagnoses an unknown node.
    """
    if isinstance(action, Rejected):
        raise action.error
    if isinstance(action, Plan | Call | str):
        plan = as_plan(action)
    else:
        plan = decode_action(action, topo, shapes)
    return check_diagnosis_node(plan, topo)
