"""Which failure class of Failure-Dataset-OpenStack an agent's diagnosis stands for.

An agent on the replay env (:mod:`pase_gym.env.replay`) answers in the simulator's terms:
``Diagnose(fault_type, node)`` names a node of the ``tiny`` cloud. The data set's label is the
class of the campaign's workload step that failed first (``instance_failure``,
``volume_failure``, ...). The bridge is the campaign's workload script
(:data:`pase_gym.fidelity.scripts.SCRIPTS`), read with the simulator's own rules:

1. **What the diagnosed node breaks** (:func:`affected_roles`): the node itself, every node that
   depends on it (``depends_on`` edges, transitively), every node that runs on it (a host's
   processes and instances) and every node it routes to (a load balancer's backends), all read
   from the ``tiny`` topology's typed edges.
2. **Which step of the script that breaks first** (:func:`phase_roles`): a step needs the roles
   whose health decides its chain steps (:data:`pase_gym.sim.signals.EVENT_CHAINS`, the same
   roles ``run_experiment`` draws failures from); the ``ssh`` check needs the instances (the
   data plane ``run_experiment`` asks). The first step in script order that needs a broken
   role is the first to fail, unless every broken role it needs is one of Neutron's
   asynchronous agents (:data:`pase_gym.fidelity.experiments.SILENT_ROLES`): then the client
   sees it succeed, and the next ``ssh`` check fails (the instance is not wired up).
3. **Its class**: that step's :attr:`~pase_gym.fidelity.scripts.Phase.failure_class`, or
   ``no_failure`` when the step is not asserted on (NET's clean-up) or no step needs the node,
   exactly as ``run_experiment`` labels a simulated experiment. A plan without a diagnosis
   means ``no_failure``.

A diagnosis carries a place, not a time, so a class that only a late fault produces (a
``cleanup_failure``: the clean-up needs no role the earlier steps do not) cannot be expressed
(:func:`expressible_classes`); even an agent that knows every label is then credited with
less than a perfect score (:func:`best_answer`, the *ceiling* of the replay report).
:func:`role_class_table` lists what every role of the ``tiny`` cloud maps to.
"""

from __future__ import annotations

import functools

import numpy as np

from pase_gym.datasets.campaigns import campaign_name
from pase_gym.episode import cached_topology
from pase_gym.fidelity.experiments import SILENT_ROLES
from pase_gym.fidelity.scripts import SCRIPTS, SSH_STEP_NAME, Phase
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import EVENT_CHAINS
from pase_gym.sim.topology import EDGE_TYPES, Topology

NO_FAILURE = "no_failure"
"""The class of a plan without a diagnosis, and of a node no step of the script needs."""

REPLAY_NODES = "tiny"
REPLAY_TOPOLOGY_SEED = 0
"""The replayed cloud: the ``tiny`` all-in-one layout with seed 0, the cloud
:mod:`pase_gym.fidelity.experiments` runs its experiments on (and ``PASE-OpenStack-Tiny-v4``)."""

SSH_ROLES: tuple[str, ...] = ("instance",)
"""Roles the ``ssh`` step needs: the instances that must answer on the data plane."""

_DEPENDS_ON = EDGE_TYPES.index("depends_on")
_RUNS_ON = EDGE_TYPES.index("runs_on")
_ROUTES_TO = EDGE_TYPES.index("routes_to")


def replay_topology() -> Topology:
    """The ``tiny`` cloud the replay env shows (cached)."""
    return cached_topology(REPLAY_NODES, REPLAY_TOPOLOGY_SEED)


def affected_nodes(topo: Topology, node: int) -> np.ndarray:
    """Node ids whose requests fail when ``node`` fails (``node`` included), sorted.

    Follows the typed edges: ``a depends_on b`` (a fails with b), ``a runs_on h`` (a fails
    with its host h) and ``lb routes_to b`` (b is unreachable without its load balancer),
    transitively.
    """
    src, dst = topo.edge_index
    kind = topo.edge_type
    upstream = (kind == _DEPENDS_ON) | (kind == _RUNS_ON)  # src fails when dst fails
    downstream = kind == _ROUTES_TO  # dst fails when src fails
    hit = np.zeros(topo.n, dtype=bool)
    hit[int(node)] = True
    while True:
        grown = hit.copy()
        grown[src[upstream & hit[dst]]] = True
        grown[dst[downstream & hit[src]]] = True
        if (grown == hit).all():
            return np.flatnonzero(hit)
        hit = grown


def affected_roles(topo: Topology, node: int) -> frozenset[str]:
    """The roles of :func:`affected_nodes`."""
    return frozenset(ROLE_NAMES[int(r)] for r in topo.role[affected_nodes(topo, node)])


def _needs(phase: Phase) -> frozenset[str]:
    if phase.chain is None:
        return frozenset(SSH_ROLES) if phase.name == SSH_STEP_NAME else frozenset()
    chain = EVENT_CHAINS[phase.chain]
    return frozenset(chain[k][1] for k in phase.steps())


def phase_roles(campaign: str) -> tuple[tuple[Phase, frozenset[str]], ...]:
    """The campaign's script steps, in order, each with the roles it needs."""
    return tuple((phase, _needs(phase)) for phase in SCRIPTS[campaign_name(campaign)])


def class_of_roles(campaign: str, roles: frozenset[str]) -> str:
    """The class of the first script step that fails when ``roles`` are broken (or
    ``no_failure``): the first step that needs one of them, where a step that needs only
    asynchronous agents among them (:data:`SILENT_ROLES`) does not fail itself but makes the
    next ``ssh`` check fail, as in ``run_experiment``."""
    degraded = False
    for phase, needs in phase_roles(campaign):
        hit = needs & roles
        if phase.name == SSH_STEP_NAME and degraded:
            return phase.failure_class or NO_FAILURE
        if hit - SILENT_ROLES:
            return phase.failure_class or NO_FAILURE
        if hit and not phase.teardown:
            degraded = True
    return NO_FAILURE


@functools.lru_cache(maxsize=16)
def _node_classes(campaign: str) -> dict[str, str]:
    topo = replay_topology()
    return {topo.names[i]: class_of_roles(campaign, affected_roles(topo, i)) for i in range(topo.n)}


def diagnosis_class(campaign: str, node: str | None) -> str:
    """The class a diagnosis of ``node`` stands for in ``campaign`` (``None``: no diagnosis).

    Raises:
        KeyError: ``node`` is not a node of the replayed ``tiny`` cloud.
    """
    if node is None:
        return NO_FAILURE
    return _node_classes(campaign_name(campaign))[node]


def expressible_classes(campaign: str) -> frozenset[str]:
    """The classes some diagnosis (or none) stands for in ``campaign``."""
    return frozenset(_node_classes(campaign_name(campaign)).values()) | {NO_FAILURE}


def best_answer(campaign: str, true_class: str) -> str:
    """What an agent that knows the label can at best be credited with: the label when a
    diagnosis (or none) expresses it, else ``no_failure`` (no diagnosis)."""
    return true_class if true_class in expressible_classes(campaign) else NO_FAILURE


@functools.lru_cache(maxsize=4)
def role_class_table() -> dict[str, dict[str, str]]:
    """Role -> campaign -> class, for every role of the replayed ``tiny`` cloud.

    Replicas of a role (``nova-api-1`` .. ``nova-api-3``, spares included) map alike; the
    table shows the first node of each role.
    """
    topo = replay_topology()
    out: dict[str, dict[str, str]] = {}
    for i in range(topo.n):
        role = ROLE_NAMES[int(topo.role[i])]
        if role not in out:
            out[role] = {c: _node_classes(c)[topo.names[i]] for c in SCRIPTS}
    return out
