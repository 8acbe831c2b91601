"""The oracle planner: reads the ground truth and writes the runbook plan that clears it.

It is the ceiling agent of the benchmark and the proof, in the tests, that every fault of
every built-in scenario is recoverable. It reads the injected faults directly, which no agent
may do; the harness labels it as using the ground truth. Each fault type's runbook is its
own (:meth:`pase_gym.sim.faults.ActiveFault.runbook`); the oracle only merges them.
"""

from __future__ import annotations

from pase_gym.sim.faults import ActiveFault
from pase_gym.sim.plan import Call, Diagnosis, Plan
from pase_gym.sim.state import SimState


def runbook_calls(state: SimState, fault: ActiveFault) -> list[Call]:
    """The calls of ``fault``'s runbook in ``state``."""
    return [Call(name, args) for name, args in fault.runbook(state)]


def oracle_plan(state: SimState, skip: set[int] | None = None) -> Plan:
    """The ground-truth plan for every active fault of ``state`` (empty plan if none).

    Args:
        state: the state whose injected faults the oracle reads.
        skip: ``id()`` of faults already handled (a runbook in progress is not restarted).
    """
    faults: list[ActiveFault] = []
    for f in state.faults:
        if f.active and id(f) not in (skip or set()) and isinstance(f, ActiveFault):
            faults.append(f)
    if not faults:
        return Plan.empty()
    calls: list[Call] = []
    for fault in faults:
        for call in runbook_calls(state, fault):
            if call not in calls:
                calls.append(call)
    first = faults[0]
    return Plan(tuple(calls), Diagnosis(first.name, state.name(first.node)))
