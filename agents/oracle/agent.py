"""The ceiling: reads the ground truth and answers each fault with its runbook.

This agent declares ``uses_ground_truth = True``; the harness then binds it to the env's
evaluation side and labels its results as using the ground truth. It is not an agent anyone
could deploy: it is the best the benchmark's runbooks can do.
"""

from __future__ import annotations

from typing import Any

from pase_gym.env.core import episode_of
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Call, Plan


class Agent:
    """Plans from the injected faults; monitors (``Wait(10)``) when nothing is left to do."""

    name = "oracle"
    uses_ground_truth = True

    def __init__(self) -> None:
        self._env: Any = None
        self._handled: set[int] = set()

    def bind_ground_truth(self, env: Any) -> None:
        """Called by the harness with the unwrapped env (evaluation side)."""
        self._env = env

    def reset(self, seed: int) -> None:
        self._handled = set()

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan:
        if self._env is None:
            raise RuntimeError("the oracle needs the ground truth: run it through the harness")
        state = episode_of(self._env).state
        plan = oracle_plan(state, skip=self._handled)
        if plan.steps:
            self._handled.update(id(f) for f in state.faults if f.active)
            return plan
        return Plan((Call("Wait", (10,)),))
