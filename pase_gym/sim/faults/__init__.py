"""The fault types: one module each, registered in the catalogue's fixed order.

Each module holds everything about one fault type (see :mod:`pase_gym.sim.faults.base`): its
catalogue entry, dynamics, clearing runbook, where it strikes and the plan the oracle follows.
Importing this package registers the built-in types; :func:`register_fault` adds more.
Families are assigned to splits: seven families appear in train and test, ``security`` and
``hybrid`` only in ``unseen``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

# The first 18 in this fixed order: the catalogue order numbers the env's diagnosis space.
# isort: off
from pase_gym.sim.faults import process_crash  # noqa: F401
from pase_gym.sim.faults import process_hang  # noqa: F401
from pase_gym.sim.faults import memory_leak  # noqa: F401
from pase_gym.sim.faults import cpu_hog  # noqa: F401
from pase_gym.sim.faults import disk_full  # noqa: F401
from pase_gym.sim.faults import network_partition  # noqa: F401
from pase_gym.sim.faults import packet_loss  # noqa: F401
from pase_gym.sim.faults import dns_failure  # noqa: F401
from pase_gym.sim.faults import bad_deploy  # noqa: F401
from pase_gym.sim.faults import config_drift  # noqa: F401
from pase_gym.sim.faults import queue_backlog  # noqa: F401
from pase_gym.sim.faults import db_lock_contention  # noqa: F401
from pase_gym.sim.faults import db_replica_failure  # noqa: F401
from pase_gym.sim.faults import host_power_loss  # noqa: F401
from pase_gym.sim.faults import noisy_neighbour  # noqa: F401
from pase_gym.sim.faults import cascading_timeout  # noqa: F401
from pase_gym.sim.faults import certificate_expiry  # noqa: F401
from pase_gym.sim.faults import cpu_memory_deadlock  # noqa: F401

# isort: on
from pase_gym.sim.faults.base import (
    FAMILIES,
    SPLITS,
    TARGETS,
    ActiveFault,
    FamilySpec,
    FaultSpec,
    RunbookStep,
    SignatureTerm,
)
from pase_gym.sim.faults.registry import (
    FAULT_MODELS,
    FAULTS,
    eligible_targets,
    fault_names,
    faults_for_split,
    list_faults,
    make_fault,
    register_fault,
    registered,
    unregister_fault,
)

_CORE = frozenset({"base", "registry"})


def _import_new_fault_modules() -> None:
    """Import (and so register) the fault modules added after the first 18, by name order:
    a new fault type is one file in this folder, appended to the catalogue."""
    loaded = {name.rsplit(".", 1)[-1] for name in globals()}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module not in _CORE and module not in loaded:
            importlib.import_module(f"{__name__}.{module}")


_import_new_fault_modules()

__all__ = [
    "FAMILIES",
    "FAULTS",
    "FAULT_MODELS",
    "FAULT_NAMES",
    "SPLITS",
    "TARGETS",
    "ActiveFault",
    "FamilySpec",
    "FaultSpec",
    "RunbookStep",
    "SignatureTerm",
    "eligible_targets",
    "fault_names",
    "faults_for_split",
    "list_faults",
    "make_fault",
    "register_fault",
    "registered",
    "unregister_fault",
]


def __getattr__(name: str) -> Any:
    # FAULT_NAMES follows the catalogue (a snapshot taken when it is read); code that must
    # see types registered later calls fault_names() when it runs.
    if name == "FAULT_NAMES":
        return fault_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
