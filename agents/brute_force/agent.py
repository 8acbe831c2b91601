"""Brute-force policies: what an agent that wants a score without doing the work would try.

None of them diagnoses anything; each reads only what every agent reads (``info`` and the
alarm rows of the observation). They exist so that the benchmark can show they do not pay:
the harness runs them in the tests and their safe success must stay at 0 (the first three)
or below the rule-based agent (the last). Load one by path, like any submission, e.g.
``pase-bench run --agents agents/brute_force/agent.py:RestartEverything``.

| class | what it does at the first alarm (then it waits) |
|---|---|
| ``RestartEverything`` | ``Restart`` every provisioned node |
| ``FailoverEverything`` | ``Failover`` every provisioned node |
| ``ScaleToZero`` | ``ScaleIn`` every scalable group by the most the primitive allows, repeatedly |
| ``EveryRemedy`` | every remedy of :data:`REMEDIES` on every alarmed node |
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pase_gym.sim.plan import MAX_STEPS, Call, Plan
from pase_gym.sim.primitives import PRIMITIVES
from pase_gym.sim.roles import SCALABLE_ROLES

WAIT = Plan((Call("Wait", (10,)),))
REMEDIES = ("Rollback", "CleanDisk", "RenewCertificate", "FlushCache", "Failover", "Restart")
"""Every remedy of the library that takes just a node, the restart last (it applies the others)."""


def alarmed_nodes(observation: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """Names of the nodes with at least one alarm raised (from the observation's rows)."""
    rows = np.flatnonzero(np.asarray(observation["alarms"]).any(axis=1))
    names = info.get("slot_names") or []
    return [names[i] for i in rows.tolist() if i < len(names)]


class _Queue:
    """Issues a list of calls, at most a plan's worth per decision, then waits."""

    name = "brute_force"

    def __init__(self) -> None:
        self.queue: list[Call] = []
        self.started = False

    def reset(self, seed: int) -> None:
        self.queue, self.started = [], False

    def calls(self, observation: dict[str, Any], info: dict[str, Any]) -> list[Call]:
        raise NotImplementedError

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        if not self.started and np.asarray(observation["alarms"]).any():
            self.started = True
            self.queue = self.calls(observation, info)
        if not self.queue:
            return WAIT
        batch, self.queue = self.queue[:MAX_STEPS], self.queue[MAX_STEPS:]
        return Plan(tuple(batch))


class RestartEverything(_Queue):
    """Restart every provisioned node at the first alarm."""

    name = "restart_everything"

    def calls(self, observation: dict[str, Any], info: dict[str, Any]) -> list[Call]:
        return [Call("Restart", (n,)) for n in info["node_names"]]


class FailoverEverything(_Queue):
    """Fail every provisioned node over at the first alarm."""

    name = "failover_everything"

    def calls(self, observation: dict[str, Any], info: dict[str, Any]) -> list[Call]:
        return [Call("Failover", (n,)) for n in info["node_names"]]


class ScaleToZero(_Queue):
    """Scale every scalable group in as far as it goes at the first alarm (a stopped cloud
    raises no alarm)."""

    name = "scale_to_zero"
    ROUNDS = 4

    def calls(self, observation: dict[str, Any], info: dict[str, Any]) -> list[Call]:
        most = PRIMITIVES["ScaleIn"].params[1].hi
        return [Call("ScaleIn", (g, most)) for _ in range(self.ROUNDS) for g in SCALABLE_ROLES]


class EveryRemedy(_Queue):
    """Every remedy on every alarmed node, without a diagnosis."""

    name = "every_remedy"

    def calls(self, observation: dict[str, Any], info: dict[str, Any]) -> list[Call]:
        return [Call(r, (n,)) for n in alarmed_nodes(observation, info) for r in REMEDIES]


Agent = RestartEverything
