"""What every fault type is made of: its catalogue entry and the base of its dynamics.

A fault type is one class (one file in this package): a :class:`FaultSpec` (family, target,
symptom signature, log symptom classes, runbook in words, source catalogue), the dynamics hooks
(``inject``, ``apply``, ``advance``, ``on_effect`` or the :attr:`ActiveFault.clears_by`
runbook), where it may strike (:meth:`ActiveFault.targets`) and the plan that truly clears it
(:meth:`ActiveFault.runbook`, which the oracle follows). :func:`register_fault` adds a class
to the catalogue (:mod:`pase_gym.sim.faults.registry`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pase_gym.sim.logs import onset_line
from pase_gym.sim.roles import ROLE_INDEX, Kind
from pase_gym.sim.state import Modifiers, SimState

SPLITS = ("train", "test", "unseen")

RunbookStep = tuple[str, tuple[str | int, ...]]
"""One step of a runbook: a primitive name and its positional arguments."""


@dataclass(frozen=True)
class SignatureTerm:
    """One observable symptom: ``indicator`` at ``scope`` moves past ``threshold``.

    ``scope`` is ``node`` (the faulty node itself), ``host`` (the host it runs on),
    ``hosted`` (the worst of what runs on a host) or ``callers`` (the worst of the nodes that
    depend on it). ``op`` is ``>`` or ``<``.
    """

    scope: str
    indicator: str
    op: str
    threshold: float


@dataclass(frozen=True)
class FaultSpec:
    """Catalogue entry of one fault type."""

    name: str
    family: str
    target: str  # a key of TARGETS: "service", "host", "compute_host", "instance", ...
    description: str
    signature: tuple[SignatureTerm, ...]
    symptoms: tuple[str, ...]  # classes of pase_gym.sim.logs.SYMPTOMS its onset line is drawn from
    recovery: str  # the runbook in words; ActiveFault.runbook writes it as a plan
    catalogue: str  # where the fault type comes from
    # what a probe (``Inspect`` of the faulty node) finds while the fault is active, in the
    # wording of the tools an operator runs there (systemctl, ps, df, the BMC, rabbitmqctl,
    # SQL status); placeholders: {node}, {onset} (the onset tick), {age} (seconds since)
    findings: tuple[str, ...] = ()
    # what ``Inspect`` of a process on the faulty *host* shows (host faults only); {host}
    hosted_findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaultParam:
    """A number a scenario file may set for a fault (``faults[i].params``): its documented
    range and the value the fault uses when the file does not set it."""

    default: float
    lo: float
    hi: float
    doc: str


@dataclass(frozen=True)
class FamilySpec:
    """A fault family and the splits it may appear in."""

    name: str
    splits: tuple[str, ...]
    description: str


FAMILIES: dict[str, FamilySpec] = {
    f.name: f
    for f in (
        FamilySpec("process", ("train", "test"), "a service process dies or stops answering"),
        FamilySpec("resource", ("train", "test"), "a node runs out of memory, CPU or disk"),
        FamilySpec("network", ("train", "test"), "links, routes or name resolution break"),
        FamilySpec("deploy", ("train", "test"), "a release or config change breaks a service"),
        FamilySpec("data", ("train", "test"), "the message queue or the database degrades"),
        FamilySpec("infrastructure", ("train", "test"), "hosts and tenants disturb the cloud"),
        FamilySpec("cascade", ("train", "test"), "a slow dependency drags its callers down"),
        FamilySpec("security", ("unseen",), "credentials and certificates stop being valid"),
        FamilySpec("hybrid", ("unseen",), "several resources fail together in one node"),
    )
}

_DB_ROLE = ROLE_INDEX["mysql"]


def _disk_hosts(state: SimState) -> np.ndarray:
    t = state.topo
    writes = np.bincount(state.host_of, weights=t.writes_disk, minlength=t.n) > 0
    return (t.kind == Kind.HOST) & writes


TARGETS: dict[str, Callable[[SimState], np.ndarray]] = {
    "service": lambda s: s.topo.is_process & (s.topo.kind == Kind.SERVICE),
    "host": lambda s: s.topo.kind == Kind.HOST,
    "compute_host": lambda s: s.topo.role == ROLE_INDEX["compute"],
    "disk_host": _disk_hosts,
    "instance": lambda s: s.topo.kind == Kind.INSTANCE,
    "queue": lambda s: s.topo.kind == Kind.QUEUE,
    "database": lambda s: s.topo.role == _DB_ROLE,
    "replicated_service": lambda s: (s.topo.kind == Kind.SERVICE) & (s.topo.group_of >= 0),
    "tls_service": lambda s: s.topo.tls & (s.topo.kind == Kind.SERVICE),
}
"""Where a fault may strike, by :attr:`FaultSpec.target`: a boolean mask over the nodes."""


class ActiveFault:
    """Base class: one injected fault on one node.

    Subclasses set :attr:`spec` and override the hooks they need; the defaults do nothing
    beyond writing the fault's log line at onset and following :attr:`clears_by`.
    """

    spec: ClassVar[FaultSpec]
    name: ClassVar[str] = ""
    clears_by: ClassVar[tuple[str, ...]] = ()  # effects on the node, in order, that clear it
    PARAMS: ClassVar[dict[str, FaultParam]] = {}  # what a scenario may set, with its range

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            cls.name = cls.spec.name

    def __init__(self, node: int, onset: int, params: dict[str, float] | None = None) -> None:
        self.node = node
        self.onset = onset
        self.params: dict[str, float] = dict(params or {})
        self.phase = "scheduled"
        self.resolved_at: int | None = None
        self.steps_done = 0

    def param(self, name: str) -> float:
        """A declared parameter (:attr:`PARAMS`): the scenario's value, else its default."""
        return float(self.params.get(name, self.PARAMS[name].default))

    # -- where it strikes and what clears it ------------------------------------------------
    @classmethod
    def target_mask(cls, state: SimState) -> np.ndarray:
        """Nodes of this topology the fault may strike (before the active filter)."""
        return TARGETS[cls.spec.target](state)

    @classmethod
    def targets(cls, state: SimState) -> np.ndarray:
        """Node ids this fault type may strike in ``state`` (active nodes only)."""
        return np.flatnonzero(cls.target_mask(state) & state.active)

    def runbook(self, state: SimState) -> list[RunbookStep]:
        """The plan that truly clears this fault in ``state`` (what the oracle executes)."""
        raise NotImplementedError(f"{type(self).__name__} has no runbook")

    def takes_kill(self, node: int) -> bool:
        """Whether ``KillProcess`` on host ``node`` hits this fault's own process (a runaway
        process) rather than the busiest service there. Default: no."""
        return False

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Injected and not yet cleared."""
        return self.phase not in ("scheduled", "resolved")

    def inject(self, state: SimState) -> None:
        """Onset: change the state. Subclasses call ``super().inject``."""
        self.phase = "active"
        onset_line(state, self.node, self.spec.symptoms)

    def resolve(self, state: SimState) -> None:
        """The root cause is gone."""
        self.phase = "resolved"
        self.resolved_at = state.tick

    def apply(self, state: SimState, mods: Modifiers) -> None:
        """Per-evaluation effects (default: none beyond what ``inject`` changed)."""

    def advance(self, state: SimState, dt: int) -> None:
        """Integrate accumulators over ``dt`` ticks (default: none)."""

    def on_effect(self, state: SimState, effect: str, node: int, **kw: Any) -> None:
        """A primitive effect happened on ``node``.

        By default the fault follows its :attr:`clears_by` runbook: the effects, in order, on
        the faulty node that remove the root cause (other effects change nothing). Faults whose
        clearing depends on more than that override this method.
        """
        steps = self.clears_by
        if not steps or node != self.node:
            return
        done = self.steps_done
        if effect == steps[done]:
            done += 1
            self.steps_done = done
            if done == len(steps):
                self.resolve(state)
            else:
                self.phase = f"after_{effect}"

    def clone(self) -> ActiveFault:
        """An independent copy."""
        new = copy.copy(self)
        new.params = dict(self.params)
        return new

    def describe(self, state: SimState) -> dict[str, Any]:
        """Ground truth for the evaluation side."""
        return {
            "fault_type": self.name,
            "family": self.spec.family,
            "node": state.name(self.node),
            "onset": self.onset,
            "phase": self.phase,
            "resolved_at": self.resolved_at,
        }

    def findings(self, state: SimState, node: int) -> list[str]:
        """What ``Inspect(node)`` shows of this fault now: its findings on the faulty node,
        its hosted findings on a process of the faulty host; nothing once cleared."""
        if not self.active:
            return []
        if node == self.node:
            lines = self.spec.findings
        elif int(state.host_of[node]) == self.node and node != self.node:
            lines = self.spec.hosted_findings
        else:
            return []
        age = max(state.tick - self.onset, 0)
        name = state.name(self.node)
        return [f.format(node=name, host=name, onset=self.onset, age=age) for f in lines]

    def hosted(self, state: SimState) -> np.ndarray:
        """Nodes on this fault's host node, the host included."""
        return np.flatnonzero(state.host_of == self.node)
