"""The fault catalogue: every registered fault type, looked up by name.

Built-in fault types register themselves when :mod:`pase_gym.sim.faults` is imported, in the
catalogue's fixed order (which numbers the env's diagnosis space). A new fault type is one
class decorated with :func:`register_fault` (and a scenario file that injects it); the parser,
the scenario schema, the env's spaces, the prompts, the oracle and the harness all read this
catalogue when they are used, so they pick it up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from pase_gym.errors import ScenarioError
from pase_gym.sim.faults.base import FAMILIES, SPLITS, TARGETS, ActiveFault, FaultSpec
from pase_gym.sim.state import SimState

FAULT_MODELS: dict[str, type[ActiveFault]] = {}
"""Registered fault classes by name, in registration order."""

FAULTS: dict[str, FaultSpec] = {}
"""Registered catalogue entries by name, in registration order."""

FaultClass = type[ActiveFault]


def register_fault(cls: FaultClass) -> FaultClass:
    """Add ``cls`` to the catalogue (a class decorator).

    Raises:
        ValueError: the class has no ``spec``, its name is taken, or its family or target
            is unknown.
    """
    spec = cls.__dict__.get("spec")
    if not isinstance(spec, FaultSpec):
        raise ValueError(f"{cls.__name__} must define spec = FaultSpec(...) to be registered")
    if spec.name in FAULT_MODELS:
        raise ValueError(f"fault type {spec.name!r} is already registered")
    if spec.family not in FAMILIES:
        raise ValueError(
            f"{spec.name}: unknown family {spec.family!r}; expected one of {', '.join(FAMILIES)}"
        )
    if spec.target not in TARGETS:
        raise ValueError(
            f"{spec.name}: unknown target {spec.target!r}; expected one of {', '.join(TARGETS)}"
        )
    FAULT_MODELS[spec.name] = cls
    FAULTS[spec.name] = spec
    return cls


def unregister_fault(name: str) -> None:
    """Remove fault type ``name`` from the catalogue (``KeyError`` if it is not there)."""
    del FAULT_MODELS[name]
    del FAULTS[name]


@contextmanager
def registered(cls: FaultClass) -> Iterator[FaultClass]:
    """Register ``cls`` for the duration of a ``with`` block (tests, experiments)."""
    register_fault(cls)
    try:
        yield cls
    finally:
        unregister_fault(cls.spec.name)


def fault_names() -> tuple[str, ...]:
    """The registered fault types, in catalogue order."""
    return tuple(FAULTS)


def faults_for_split(split: str) -> tuple[str, ...]:
    """Fault types whose family may appear in ``split`` (train, test or unseen)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return tuple(f.name for f in FAULTS.values() if split in FAMILIES[f.family].splits)


def list_faults() -> list[dict[str, object]]:
    """Names and metadata of every fault type."""
    return [
        {
            "name": f.name,
            "family": f.family,
            "splits": list(FAMILIES[f.family].splits),
            "target": f.target,
            "description": f.description,
            "signature": [f"{t.indicator}({t.scope}) {t.op} {t.threshold:g}" for t in f.signature],
            "symptoms": list(f.symptoms),
            "recovery": f.recovery,
            "catalogue": f.catalogue,
        }
        for f in FAULTS.values()
    ]


def eligible_targets(state: SimState, fault_type: str) -> np.ndarray:
    """Node ids a fault of ``fault_type`` may strike in this topology (active nodes only)."""
    return FAULT_MODELS[fault_type].targets(state)


def make_fault(
    state: SimState,
    fault_type: str,
    node: str | None,
    onset: int,
    rng: np.random.Generator,
    params: dict[str, float] | None = None,
    source: str = "<mapping>",
    key: str = "faults",
) -> ActiveFault:
    """Build a scheduled fault, choosing its node with ``rng`` when ``node`` is ``None``.

    Raises:
        ScenarioError: unknown fault type, unknown node, or a node the fault cannot strike.
    """
    if fault_type not in FAULT_MODELS:
        raise ScenarioError(
            f"unknown fault type {fault_type!r}; expected one of {', '.join(FAULT_MODELS)}",
            source=source,
            key=f"{key}.type",
        )
    cls = FAULT_MODELS[fault_type]
    targets = cls.targets(state)
    if node is None:
        if targets.size == 0:
            raise ScenarioError(
                f"this topology has no node that {fault_type} can strike "
                f"(it needs a {cls.spec.target})",
                source=source,
                key=key,
            )
        idx = int(targets[int(rng.integers(targets.size))])
    else:
        if node not in state.topo.index:
            raise ScenarioError(
                f"unknown node {node!r} in this topology", source=source, key=f"{key}.node"
            )
        idx = state.topo.index[node]
        if idx not in set(targets.tolist()):
            raise ScenarioError(
                f"{fault_type} cannot strike {node!r}: it needs an active {cls.spec.target}",
                source=source,
                key=f"{key}.node",
            )
    return cls(idx, onset, params)
