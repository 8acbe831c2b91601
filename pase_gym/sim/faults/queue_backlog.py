"""Queue backlog (data family): Messages pile up in the broker faster than consumers drain them;
RPCs time out.

Runbook: Add consumers (scale nova-conductor) until the backlog drains. Source: os-faults
rabbitmq; RabbitMQ flow-control incidents.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from pase_gym.sim.faults.base import ActiveFault, FaultParam, FaultSpec, RunbookStep, SignatureTerm
from pase_gym.sim.faults.registry import register_fault
from pase_gym.sim.state import Modifiers, SimState

_T = SignatureTerm


@register_fault
class QueueBacklog(ActiveFault):
    """A message surge the consumers cannot drain; add consumers until they can.

    The backlog grows by ``inflow + surge - capacity`` messages per tick, where the capacity
    is that of the nova-conductor replicas in service. Flushing the queue empties it, but with
    too few consumers it fills again; enough consumers drain it and keep it empty.
    """

    spec = FaultSpec(
        name="queue_backlog",
        family="data",
        target="queue",
        description=(
            "Messages pile up in the broker faster than consumers drain them; RPCs time out."
        ),
        signature=(
            _T("node", "latency", ">", 0.2),
            _T("node", "cpu", "<", 0.9),
        ),
        symptoms=("slow", "resource"),
        recovery="Add consumers (scale nova-conductor) until the backlog drains.",
        catalogue="os-faults rabbitmq; RabbitMQ flow-control incidents",
        findings=(
            (
                "rabbitmqctl list_queues: the conductor queue has grown since t={onset}s; its "
                "consumers take messages more slowly than they arrive"
            ),
        ),
    )
    PARAMS: ClassVar[dict[str, FaultParam]] = {
        "surge": FaultParam(
            0.75, 0.1, 5.0, "extra inflow to the queue, as a multiple of its initial capacity"
        )
    }

    def _rates(self, state: SimState) -> tuple[float, float]:
        ids = state.topo.nodes_of_role("nova-conductor")
        serving = state.works[ids] & state.in_service()[ids]
        capacity = float(np.sum(state.cap0[ids] * state.cpu_alloc[ids] * serving))
        initial = float(np.sum(state.cap0[ids] * state.topo.initially_active[ids]))
        inflow = float(np.sum(state.load[ids])) + self.param("surge") * initial
        return inflow, capacity

    def advance(self, state: SimState, dt: int) -> None:
        inflow, capacity = self._rates(state)
        node = self.node
        state.backlog[node] = max(0.0, state.backlog[node] + (inflow - capacity) * dt)
        if state.backlog[node] <= 0.0 and capacity > inflow:
            self.resolve(state)

    def apply(self, state: SimState, mods: Modifiers) -> None:
        _, capacity = self._rates(state)
        backlog = state.backlog[self.node]
        mods.lat_add[self.node] += min(backlog / max(capacity, 1e-6), 60.0)
        mods.mem_add[self.node] += min(backlog / (40.0 * max(capacity, 1e-6)), 1.0)
        mods.cpu_add[state.topo.nodes_of_role("nova-conductor")] += 0.2

    def runbook(self, state: SimState) -> list[RunbookStep]:
        return [("ScaleOut", ("nova-conductor", self._conductor_scale(state)))]

    def _conductor_scale(self, state: SimState) -> int:
        """Consumers to add so that the conductors drain the surge with 15% headroom."""
        ids = state.topo.nodes_of_role("nova-conductor")
        per = float(np.max(state.cap0[ids]))
        initial = float(np.sum(state.cap0[ids] * state.topo.initially_active[ids]))
        inflow = float(np.sum(state.load[ids])) + self.param("surge") * initial
        capacity = float(np.sum(state.cap0[ids] * state.active[ids]))
        need = math.ceil(max(0.0, inflow * 1.15 - capacity) / per)
        spare = int(np.count_nonzero(~state.active[ids]))
        return max(1, min(need, spare))
