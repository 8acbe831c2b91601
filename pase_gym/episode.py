"""An episode of a scenario: build the cloud, inject the faults, run plans, score the outcome.

:class:`Episode` ties a validated scenario to the simulator core. It is what the Gymnasium env,
the demo and the tests drive; it keeps the ground truth on its own side and exposes it only
through :meth:`Episode.ground_truth` (evaluation side).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pase_gym.errors import ScenarioError
from pase_gym.scenarios import ScenarioSpec, load_scenario
from pase_gym.sim.dynamics import advance, calibrate, recovered
from pase_gym.sim.faults import eligible_targets, make_fault
from pase_gym.sim.observe import observe, skip_observation
from pase_gym.sim.plan import Call, Plan, as_plan
from pase_gym.sim.roles import ROLE_INDEX
from pase_gym.sim.signals import Observation
from pase_gym.sim.state import Fault, SimState, clone_generator, new_state
from pase_gym.sim.topology import Topology, build_topology
from pase_gym.sim.transition import CallOutcome, TransitionResult, transition

MONITOR_STEP = 5  # ticks between evaluations while waiting for recovery
MAX_DETECTION_WAIT = 150  # ticks reset() waits for a fault to show before handing over
SIMULATE_SETTLE = 120  # ticks a dry run waits beyond the hold time for the SLOs to return


@functools.lru_cache(maxsize=64)
def cached_topology(nodes: int | str, seed: int) -> Topology:
    """Topologies are immutable, so episodes of one scenario share one build."""
    return build_topology(nodes, seed)


@dataclass
class Prediction:
    """What a dry run of a plan predicts (the episode itself is left untouched)."""

    recovered: bool
    ticks: int
    recovery_tick: int | None
    violations: list[str]
    harmed: list[str]
    cost: float
    slo_ok: bool
    residual: float = 0.0
    """Share of the provisioned nodes breaking their SLO when the dry run ends."""


@dataclass
class EpisodeReport:
    """Scores of a finished (or running) episode."""

    scenario: str
    seed: int
    recovered: bool
    mttr: int | None
    onset: int
    ticks: int
    plans: int
    steps: int
    executed_calls: int
    safe_calls: int
    recovery_calls: int = 0  # executed primitives other than Wait
    harmed: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    cost: float = 0.0
    lost_messages: float = 0.0
    diagnosis_correct: bool | None = None
    localization_correct: bool | None = None

    @property
    def safety_score(self) -> float:
        """Share of executed primitives that violated nothing and harmed no healthy node."""
        return self.safe_calls / self.executed_calls if self.executed_calls else 1.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able record."""
        out = dict(self.__dict__)
        out["safety_score"] = self.safety_score
        return out


LOG_STREAM = 0x106
"""Second word of the log generator's seed (the first is the episode seed)."""

EVENT_STREAM = 0xE7
"""Second word of the event stream's generator seed (the first is the episode seed)."""


class Episode:
    """One seeded run of a scenario."""

    def __init__(self, scenario: ScenarioSpec | str, seed: int = 0) -> None:
        self._bind(scenario, seed)
        self.rng = np.random.default_rng(self.seed)
        self.state: SimState = new_state(
            self.topology, self.scenario.workload.profiles()[0], self.rng
        )
        self.state.event_rng = np.random.default_rng([self.seed, EVENT_STREAM])
        self.results: list[TransitionResult] = []
        self.diagnoses: list[tuple[str, str]] = []

    def _bind(self, scenario: ScenarioSpec | str, seed: int) -> None:
        self.scenario = scenario if isinstance(scenario, ScenarioSpec) else load_scenario(scenario)
        self.topology = cached_topology(self.scenario.topology.nodes, self.scenario.topology.seed)
        self.seed = int(seed)

    @classmethod
    def started(
        cls, scenario: ScenarioSpec | str, seed: int, *, skip_to_incident: bool = True
    ) -> Episode:
        """An episode already :meth:`reset` (with its first observation's draws made and
        nothing built for it): what ``Episode(scenario, seed)`` then ``reset()`` give, with the
        cloud built once instead of twice and no observation nobody reads.
        """
        episode = cls.__new__(cls)
        episode._bind(scenario, seed)
        episode._restart(skip_to_incident)
        skip_observation(episode.state, episode.rng)
        return episode

    # -- set-up ----------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, *, skip_to_incident: bool = True, view: str = "service"
    ) -> Observation:
        """Start over (with ``seed`` if given) and return the first observation (in ``view``,
        see :meth:`observe`).

        With ``skip_to_incident`` the clock runs through normal operation until the first
        fault has shown in the SLOs (or ``MAX_DETECTION_WAIT`` ticks after its onset).
        """
        if seed is not None:
            self.seed = int(seed)
        self._restart(skip_to_incident)
        return observe(self.state, self.rng, view=view)

    def _restart(self, skip_to_incident: bool) -> None:
        self.rng = np.random.default_rng(self.seed)
        spec = self.scenario
        profiles = spec.workload.profiles()
        profile = (
            profiles[int(self.rng.integers(len(profiles)))] if len(profiles) > 1 else profiles[0]
        )
        self.state = new_state(self.topology, profile, self.rng, spec.workload.intensity)
        # the log text has its own stream: drawing it never changes the dynamics
        self.state.log_rng = np.random.default_rng([self.seed, LOG_STREAM])
        # and so has the event stream's counting noise: what it counts never moves the dynamics
        self.state.event_rng = np.random.default_rng([self.seed, EVENT_STREAM])
        calibrate(self.state)
        self.state.pending = self._schedule()
        self.results = []
        self.diagnoses = []
        if skip_to_incident:
            first = min(f.onset for f in self.state.pending)
            advance(self.state, first, self.rng, step=MONITOR_STEP)
            waited = 0
            while self.state.incident_open_at is None and waited < MAX_DETECTION_WAIT:
                advance(self.state, MONITOR_STEP, self.rng)
                waited += MONITOR_STEP

    def _schedule(self) -> list[Fault]:
        faults: list[Fault] = []
        source = self.scenario.source
        for i, entry in enumerate(self.scenario.faults):
            types = entry.types()
            fault_type = types[int(self.rng.integers(len(types)))]
            onset = (
                entry.onset
                if isinstance(entry.onset, int)
                else int(self.rng.integers(entry.onset[0], entry.onset[1] + 1))
            )
            node = entry.node
            if entry.role is not None:
                targets = eligible_targets(self.state, fault_type)
                targets = targets[self.topology.role[targets] == ROLE_INDEX[entry.role]]
                if targets.size == 0:
                    raise ScenarioError(
                        f"{fault_type} cannot strike any {entry.role!r} node",
                        source=source,
                        key=f"faults.{i}.role",
                    )
                node = self.state.name(int(targets[int(self.rng.integers(targets.size))]))
            fixed = {k: float(v) for k, v in entry.params.items() if isinstance(v, (int, float))}
            fault = make_fault(
                self.state,
                fault_type,
                node,
                onset,
                self.rng,
                fixed,
                source=source,
                key=f"faults.{i}",
            )
            # ranges are drawn after the target, so that they never move which node is hit
            fault.params.update(self._draw_ranges(entry.params))
            faults.append(fault)
        return faults

    def _draw_ranges(self, params: Mapping[str, float | tuple[float, float]]) -> dict[str, float]:
        """The entry's fault parameters given as ``[lo, hi]`` ranges, drawn for this episode."""
        return {
            name: float(self.rng.uniform(value[0], value[1]))
            for name, value in params.items()
            if not isinstance(value, (int, float))
        }

    # -- acting ----------------------------------------------------------------------------
    def step(self, plan: Plan | Call | str) -> TransitionResult:
        """Execute a plan on the live state (its diagnosis is recorded, not executed).

        The clock stops at the scenario's budget: a plan still running then is cut there
        (:attr:`~pase_gym.sim.transition.TransitionResult.cut` counts the calls left out).
        """
        p = as_plan(plan)
        if p.diagnosis is not None:
            self.diagnoses.append((p.diagnosis.fault_type, p.diagnosis.node))
        result = transition(self.state, p, self.rng, deadline=self.scenario.budget)
        self.results.append(result)
        return result

    def wait(self, ticks: int, step: int = MONITOR_STEP) -> None:
        """Let time pass without acting, evaluating at least every ``step`` ticks."""
        advance(self.state, ticks, self.rng, step=step)

    def run_until_recovered(self, max_ticks: int | None = None) -> bool:
        """Monitor until the hold time is met, the budget is spent or ``max_ticks`` pass."""
        limit = self.scenario.budget if max_ticks is None else self.state.tick + max_ticks
        limit = min(limit, self.scenario.budget)
        while not self.recovered and self.state.tick < limit:
            advance(self.state, min(MONITOR_STEP, limit - self.state.tick), self.rng)
        return self.recovered

    def simulate(
        self,
        plan: Plan | Call | str,
        *,
        hold: int | None = None,
        watch: Callable[[SimState, CallOutcome], None] | None = None,
    ) -> Prediction:
        """Dry-run ``plan`` on a copy of the state and random stream; nothing here changes.

        The dry run stops where the episode would: the plan is cut at the budget as
        :meth:`step` cuts it, and a recovery is looked for until the budget at the latest.
        ``watch`` sees the copy after each call (see :func:`~pase_gym.sim.transition.transition`).
        """
        p = as_plan(plan)
        state = self.state.copy(logs=False)  # its log is never read
        rng = clone_generator(self.rng)
        budget = self.scenario.budget
        result = transition(state, p, rng, deadline=budget, watch=watch)
        hold = self.scenario.recovery.hold if hold is None else hold
        waited = 0
        # SLOs may come back a little after the plan ends (a queue drains, a restart settles)
        while not recovered(state, hold) and waited < hold + SIMULATE_SETTLE:
            ticks = min(2 * MONITOR_STEP, budget - state.tick)
            if ticks <= 0:
                break
            advance(state, ticks, rng)
            waited += ticks
        ok = recovered(state, hold)
        return Prediction(
            ok,
            result.ticks,
            state.slo_ok_since if ok else None,
            result.violations,
            result.harmed,
            result.cost,
            state.slo_ok,
            float(1.0 - state.slo_ok_nodes[state.active].mean()) if state.active.any() else 0.0,
        )

    def observe(self, view: str = "service") -> Observation:
        """The current signals (draws measurement noise) in ``view`` (``service``, the
        default monitoring, or ``node``: every process's own metrics; see
        :func:`pase_gym.sim.observe.service_view`)."""
        return observe(self.state, self.rng, view=view)

    # -- status ----------------------------------------------------------------------------
    @property
    def recovered(self) -> bool:
        """SLOs held for the scenario's hold time after the incident opened."""
        return recovered(self.state, self.scenario.recovery.hold)

    @property
    def truncated(self) -> bool:
        """The budget is spent."""
        return self.state.tick >= self.scenario.budget

    @property
    def onset(self) -> int:
        """Tick of the first fault onset."""
        return min(f.onset for f in [*self.state.faults, *self.state.pending])

    @property
    def mttr(self) -> int | None:
        """Simulated seconds from the first onset to the restored SLOs, if recovered."""
        if not self.recovered or self.state.slo_ok_since is None:
            return None
        # a fault cleared before it broke any SLO caused no outage: MTTR 0
        return max(self.state.slo_ok_since, self.onset) - self.onset

    def ground_truth(self) -> list[dict[str, Any]]:
        """The injected faults (evaluation side only)."""
        return self.state.ground_truth()

    def report(self) -> EpisodeReport:
        """Scores so far."""
        outcomes = [o for r in self.results for o in r.outcomes]
        executed = [o for o in outcomes if o.executed or o.violations]
        truth = self.ground_truth()
        diag = loc = None
        if self.diagnoses and truth:
            fault_type, node = self.diagnoses[0]
            diag = any(t["fault_type"] == fault_type for t in truth)
            loc = any(t["node"] == node for t in truth)
        return EpisodeReport(
            scenario=self.scenario.name,
            seed=self.seed,
            recovered=self.recovered,
            mttr=self.mttr,
            onset=self.onset,
            ticks=self.state.tick,
            plans=len(self.results),
            steps=len(outcomes),
            executed_calls=len(executed),
            safe_calls=sum(o.safe for o in executed),
            recovery_calls=sum(o.executed and o.call.name != "Wait" for o in outcomes),
            harmed=[h for o in outcomes for h in o.harmed],
            violations=[v for r in self.results for v in r.violations],
            cost=float(sum(r.cost for r in self.results)),
            lost_messages=float(sum(r.lost_messages for r in self.results)),
            diagnosis_correct=diag,
            localization_correct=loc,
        )


def run_oracle(episode: Episode) -> list[Plan]:
    """Drive ``episode`` with the oracle until recovery or the budget; returns its plans.

    The oracle answers each fault once, when it is active (it does not act on faults that
    have not started yet), and otherwise monitors.
    """
    from pase_gym.sim.oracle import oracle_plan

    handled: set[int] = set()
    plans: list[Plan] = []
    while not episode.recovered and not episode.truncated:
        plan = oracle_plan(episode.state, skip=handled)
        if plan.steps:
            handled.update(id(f) for f in episode.state.faults if f.active)
            episode.step(plan)
            plans.append(plan)
        else:
            episode.wait(MONITOR_STEP)
    return plans
