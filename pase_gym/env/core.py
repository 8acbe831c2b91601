"""The Gymnasium environment: ``gym.make("PASE-OpenStack-v4")``."""

from __future__ import annotations

import logging
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from pase_gym.episode import Episode, Prediction, cached_topology
from pase_gym.errors import PaseGymError, PlanError, ScenarioError
from pase_gym.scenarios import ScenarioSpec, list_scenarios, load_scenario
from pase_gym.sim.faults import eligible_targets
from pase_gym.sim.observe import VIEWS
from pase_gym.sim.plan import Plan
from pase_gym.sim.primitives import PRIMITIVES, Safety
from pase_gym.sim.signals import Observation, baseline_event_rates
from pase_gym.sim.state import new_state
from pase_gym.sim.transition import TransitionResult

from .actions import to_plan
from .describe import SceneSnapshot, describe, remember_contexts
from .info import Lazy, LazyInfo
from .render import render_ansi, render_rgb
from .spaces import (
    OBS_PARTS,
    Shapes,
    action_space,
    encode_observation,
    observation_space,
    topology_edges,
)

logger = logging.getLogger(__name__)

# reward weights (documented in the env card)
TIME_PENALTY = 0.05  # per simulated second while an incident is open
COST_PENALTY = 0.05  # per unit of primitive resource cost
HARM_PENALTY = 1.0  # per healthy node a call interrupted
VIOLATION_PENALTY = 0.5  # per call whose preconditions failed
MALFORMED_PENALTY = 0.5  # per plan that did not parse
SAFETY_PENALTY = {Safety.SAFE: 0.0, Safety.RISKY: 0.1, Safety.DESTRUCTIVE: 0.5}
RECOVERY_BONUS = 10.0


class PaseOpenStackEnv(gym.Env[dict[str, np.ndarray], Any]):
    """A simulated OpenStack cloud in which an agent answers faults with recovery plans.

    ## Description
    A seeded cloud (controllers with the replicated control plane behind haproxy, compute,
    network and storage nodes, instances, tenant networks, volumes) runs a workload. At a
    seeded tick one or more faults strike (process crash, memory leak, partition, bad deploy,
    queue backlog, ... 18 types). Each step the agent submits one recovery *plan*: an optional
    ``Diagnose(fault_type, node)`` and typed primitive calls (``Restart(nova-api-2);
    ScaleOut(nova-api, 1)``); ``Wait(ticks)`` is a legal plan. The simulator runs the plan
    through its durations, then monitors for ``monitor_ticks`` more.

    ## Action Space
    A ``Dict``: ``diagnosis`` (``fault`` in 0..18, 0 = none; ``node`` slot) and ``steps``, a
    ``Sequence`` of calls (``primitive`` id, argument slots ``node``, ``target``, ``group``,
    ``number``, ``resource``; see :func:`pase_gym.env.spaces.action_space`), at most 64 calls,
    every slot inside its ``Discrete`` range (:mod:`pase_gym.env.actions`). ``step`` also
    accepts a :class:`~pase_gym.sim.plan.Plan`, a ``Call`` or plan text. Wrappers:
    ``TextPlanAction`` (text), ``DiscretePlanAction`` (flat ``Discrete`` with action masks).

    ## Observation Space
    A ``Dict`` of fixed-shape arrays (``N`` node slots, ``E`` edge slots, ``W`` window):

    | key | shape | meaning |
    |---|---|---|
    | metrics | (N, 8) | cpu, memory, disk, network, latency (s), error rate, throughput, |
    |         |        | availability (a process row: see "service view" below) |
    | window | (W, N, 8) | the last W observed metric snapshots, oldest first |
    | alarms | (N, 7) | NodeDown, HighErrorRate, HighLatency, HighCPU, HighMemory, DiskFull, |
    |        |        | NetworkSaturation |
    | events | (46,) | OpenStack API/RPC event counts since the last step (data-set vocabulary) |
    | nodes | (N, 29) | role one-hot, provisioned, in service, is a process |
    | node_mask | (N,) | 1 for provisioned nodes |
    | edge_index, edge_type, edge_mask | (2, E), (E,), (E,) | typed topology edges |
    | clock | (1,) | tick / budget |
    | probed | (N, 9) | the eight indicators of each node ``Inspect`` read during the step, |
    |        |        | then 1 in the last column (zero rows elsewhere) |

    **Service view** (``view="service"``, the default): monitoring shows services, not
    processes. A process row keeps its own availability (the load balancer's health check),
    but its latency, error rate and throughput are its service's mean over its replicas, and
    its CPU, memory, disk and network use read 0; alarms are raised on what is shown. Hosts
    and tenant resources keep their own rows. The detail is one probe away: ``Inspect(node)``
    (5 s) reports a node's process state, its own metrics, what the tools an operator runs
    there find and its last log lines; ``QueryLogs(node, seconds)`` (2 s) its log lines;
    ``Trace(request)`` (3 s) the path of one of the workload's request types (``boot``,
    ``volume``, ``network``, ``cleanup``): each hop's component, the share of requests passing
    it, and the replicas whose spans failed where requests stop. A probe changes nothing;
    its report comes with the next observation (``info["probes"]``, the description's "Probe
    results", the ``probed`` rows of ``Inspect``). ``view="node"`` shows every
    process's own metrics (v2's observation) for ablations.

    ``info["description"]`` is the natural-language scene description D_t for language-model
    agents (``info`` is a :class:`~pase_gym.env.info.LazyInfo`: the description is written
    when first read, from a snapshot taken at the step); ``info["node_names"]`` lists the
    provisioned nodes (the public inventory), in the
    order of their slots among those with ``node_mask == 1``; ``info["slot_names"]`` names
    every observation row (spare slots included, padding excluded). Neither the observation nor
    ``info`` names the injected fault or its location; the evaluation side reads
    :meth:`ground_truth`. After a step ``info`` also has ``plan`` (as run), ``plan_error``
    (``None``, or why the action was a malformed no-op) and, when calls ran, ``violations``,
    ``harmed``, ``cost``, ``plan_ticks`` and ``plan_cut`` (calls cut by the budget).

    ## Rewards
    Per step: ``-0.05`` per simulated second an incident is open, ``-0.05`` per unit of resource
    cost, ``-1`` per healthy node harmed, ``-0.5`` per call with failed preconditions, ``-0.5``
    for a plan that does not parse (a no-op step), ``-0.1``/``-0.5`` per risky/destructive
    call, and ``+10`` on recovery. An open incident costs 0.5 per 10 s of monitoring, more
    than a wasted safe call (its resource cost, at most 0.2): waiting is not near-optimal. The
    oracle scores +4 to +6 (the SLOs must hold for the scenario's hold time, 60 s, before the
    incident closes, and that time counts); doing nothing until the budget about -28.

    ## Starting State
    Normal operation at tick ``warmup`` (faults have not struck yet) with ``start="normal"``;
    with ``start="incident"`` the clock runs until the first fault shows in the SLOs.

    ## Episode End
    Terminates when every SLO has held for the scenario's hold time after the incident opened
    (recovered). Truncates when the scenario's budget (simulated seconds) is spent; the clock
    never passes the budget (a plan still running then is cut there).

    ## Arguments
    ``scenario`` (name, path or spec), or ``suite`` (a split name or a list of scenarios, one
    drawn per episode); ``nodes`` (override the cloud size); ``obs_parts``; ``window``;
    ``start``; ``monitor_ticks``; ``render_mode`` (``"ansi"`` or ``"rgb_array"``); ``view``
    (``"service"`` or ``"node"``).

    ## Version History
    * v4: the event stream keeps the workload client's status polls (``novaclient_GET_200``,
      ``cinderclient_GET_200``) for every request the API accepted, whether or not it then
      completes (a failed boot used to lose them: the real data's clients keep polling until
      their timeout); the event counts' noise has its own seeded stream, so that what the
      stream counts never moves the dynamics; the read-only probe ``Trace(request)``.
    * v3: the service view is the default observation (per-process metrics behind the new
      read-only probes ``Inspect`` and ``QueryLogs``; ``view="node"`` keeps v2's); the
      observation gains ``probed``; HighErrorRate fires above 0.1 (was 0.2: a service-wide
      rate is a mean over replicas); a bad deploy's and a drifted config's error rate is
      drawn per episode from one range in their scenarios, so they differ in their cause,
      not their size.
    * v2: the scene no longer names the fault: log lines are drawn, in the real components'
      wording, from symptom classes several fault types share (a fault's onset line, its
      callers' timeouts and refusals, a healthy cloud's background warnings; their text has
      its own seeded stream and never changes the dynamics); a node that monitoring cannot
      reach (a dead host, a cut link) reports no metrics, so a lost host and a cut-off one
      look alike; the scenarios of a split share one cloud and draw their workload profile
      per episode, so the cloud and its traffic do not name the scenario before the onset;
      database lock contention needs a failover before the restart, a failed replica a
      fence (``Isolate``) before it; a noisy neighbour also floods its host's link; an open
      incident costs 0.05 per simulated second (was 0.01).
    * v1: a plan still running when the budget is spent is cut there (the episode truncates
      inside the plan; ``info["plan_cut"]`` counts the calls left out), where v0 let the
      clock run past the budget; structured actions are checked field by field (a slot out
      of its ``Discrete`` range, a float, ``inf`` or ``bool`` is a malformed plan, never
      wrapped around); a diagnosis naming a node the cloud does not have is a malformed plan.
      Episodes that stayed within the budget run exactly as in v0.
    * v0: initial release.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        scenario: str | ScenarioSpec | None = None,
        suite: str | list[str] | None = None,
        nodes: int | str | None = None,
        obs_parts: tuple[str, ...] | list[str] = OBS_PARTS,
        window: int = 4,
        start: str = "normal",
        warmup: int = 10,
        monitor_ticks: int = 10,
        render_mode: str | None = None,
        view: str = "service",
    ) -> None:
        self.specs = _resolve_scenarios(scenario, suite, nodes)
        unknown = [p for p in obs_parts if p not in OBS_PARTS]
        if unknown or not obs_parts:
            raise ValueError(
                f"obs_parts must be a non-empty subset of {OBS_PARTS}, found {list(obs_parts)}"
            )
        if start not in ("normal", "incident"):
            raise ValueError(f"start must be 'normal' or 'incident', found {start!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, found {render_mode!r}"
            )
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, found {view!r}")
        self.view = view
        if window < 1 or monitor_ticks < 0 or warmup < 0:
            raise ValueError("window must be >= 1, monitor_ticks and warmup >= 0")
        self.obs_parts = tuple(obs_parts)
        self.start = start
        self.warmup = int(warmup)
        self.monitor_ticks = int(monitor_ticks)
        self.render_mode = render_mode
        topologies = [cached_topology(s.topology.nodes, s.topology.seed) for s in self.specs]
        edges = max(topology_edges(t)[0].shape[1] for t in topologies)
        self.shapes = Shapes(max(t.n for t in topologies), edges, int(window), topologies[0].groups)
        self.observation_space = observation_space(self.shapes, self.obs_parts)  # type: ignore[assignment]
        self.action_space = action_space(self.shapes)
        self.episode: Episode | None = None
        self._baseline: np.ndarray | None = None
        self._context_cache: dict[int, str] = {}
        self._last_obs_tick = 0
        self._last_obs: Observation | None = None
        self._last_plan: str = ""
        self._last_result: TransitionResult | None = None

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode of one of the env's scenarios (drawn with the env's generator)."""
        super().reset(seed=seed)
        spec = self.specs[int(self.np_random.integers(len(self.specs)))]
        episode_seed = int(self.np_random.integers(2**31 - 1))
        incident = self.start == "incident"
        self.episode = Episode.started(spec, episode_seed, skip_to_incident=incident)
        if self.start == "normal" and self.warmup:
            self.episode.wait(self.warmup)
        self._baseline = baseline_event_rates(self.episode.state)
        self._context_cache = {}
        self._last_obs_tick = 0
        self._last_plan = ""
        self._last_result = None
        return self._observe(reward_info={})

    def step(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Run one plan (then monitor), and score it."""
        episode = self.current_episode()
        state = episode.state
        t0 = state.tick
        open_before = state.incident_open_at is not None
        reward = 0.0
        plan_error: str | None = None
        try:
            plan = self._to_plan(action)
        except PlanError as exc:
            plan, plan_error = Plan.empty(), str(exc)
            reward -= MALFORMED_PENALTY
        result = episode.step(plan) if plan_error is None else None
        if result is not None and not result.outcomes:
            result = None  # a diagnosis alone: recorded, nothing executed
        monitor = min(self.monitor_ticks, episode.scenario.budget - state.tick)
        if monitor > 0 and not episode.recovered:
            episode.wait(monitor, step=monitor)
        elapsed = state.tick - t0
        if open_before or state.incident_open_at is not None:
            reward -= TIME_PENALTY * elapsed
        if result is not None:
            reward -= COST_PENALTY * result.cost
            reward -= HARM_PENALTY * len(result.harmed)
            reward -= VIOLATION_PENALTY * sum(bool(o.violations) for o in result.outcomes)
            reward -= sum(
                SAFETY_PENALTY[PRIMITIVES[o.call.name].safety]
                for o in result.outcomes
                if o.executed
            )
        terminated = episode.recovered
        if terminated:
            reward += RECOVERY_BONUS
        truncated = episode.truncated and not terminated
        self._last_plan = str(plan) if plan_error is None else f"<malformed: {plan_error}>"
        self._last_result = result
        info_extra: dict[str, Any] = {"plan": str(plan), "plan_error": plan_error}
        if result is not None:
            info_extra.update(
                violations=result.violations,
                harmed=result.harmed,
                cost=result.cost,
                plan_ticks=result.ticks,
                plan_cut=result.cut,
            )
        obs, info = self._observe(reward_info=info_extra)
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> str | np.ndarray | None:
        """The incident view as text (``ansi``) or a picture of the topology (``rgb_array``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode=...")
            return None
        episode = self.current_episode()
        if self.render_mode == "ansi":
            return render_ansi(episode.state, self._last_obs, self._last_plan, self._last_result)
        return render_rgb(episode.state)

    # -- the evaluation side and the verifier hook --------------------------------------------
    def simulate(self, plan: Any) -> Prediction:
        """Dry-run ``plan`` on a copy of the state; the episode is left untouched."""
        return self.current_episode().simulate(self._to_plan(plan))

    def node_names(self) -> list[str]:
        """Names of the provisioned nodes (public: what an operator's inventory lists)."""
        state = self.current_episode().state
        return [state.name(int(i)) for i in np.flatnonzero(state.active)]

    def ground_truth(self) -> list[dict[str, Any]]:
        """The injected faults (evaluation side only: never give this to an agent)."""
        return self.current_episode().ground_truth()

    @property
    def last_signals(self) -> Observation | None:
        """The monitoring signals the last observation and description were built from
        (what the agent was shown, in structured form; the diagnosis-hardness report reads
        it); ``None`` before the first ``reset``."""
        return self._last_obs

    @property
    def baseline_events(self) -> np.ndarray | None:
        """Expected API/RPC events per tick of the healthy cloud (the description's yardstick)."""
        return self._baseline

    def current_episode(self) -> Episode:
        """The running episode: the simulator state, its records and the ground truth.

        The evaluation side and the wrappers read it (action masks, reports); an agent is
        never handed it. Raises ``gymnasium.error.ResetNeeded`` before the first ``reset``.
        """
        if self.episode is None:
            raise gym.error.ResetNeeded("call reset() before using the environment")
        return self.episode

    # -- helpers --------------------------------------------------------------------------------

    def _to_plan(self, action: Any) -> Plan:
        return to_plan(action, self.current_episode().topology, self.shapes)

    def _observe(self, reward_info: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        episode = self.current_episode()
        state = episode.state
        obs = episode.observe(self.view)
        interval = max(state.tick - self._last_obs_tick, 1)
        self._last_obs_tick = state.tick
        self._last_obs = obs
        names = episode.topology.names
        encoded = encode_observation(
            state, obs, self.shapes, self.obs_parts, episode.scenario.budget
        )
        # The description is written when first read (most learners never do), from a
        # snapshot of what it reads; the context lines it names are remembered now, as an
        # eager description would have, so that reading it later gives the same text.
        scene = SceneSnapshot.of(state)
        remember_contexts(scene, obs, self._context_cache)
        baseline, cache = self._baseline, self._context_cache
        info = LazyInfo(
            {
                "description": Lazy(
                    lambda: describe(scene, obs, interval=interval, baseline=baseline, cache=cache)
                ),
                "tick": state.tick,
                "slo_ok": state.slo_ok,
                "alarms": len(obs.alarms),
                "node_names": [names[i] for i in np.flatnonzero(state.active)],
                "slot_names": names,
                "probes": [p.as_dict() for p in obs.probes],
                **reward_info,
            }
        )
        return encoded, info


def _resolve_scenarios(
    scenario: str | ScenarioSpec | None, suite: str | list[str] | None, nodes: int | str | None
) -> list[ScenarioSpec]:
    if scenario is not None and suite is not None:
        raise ValueError("give either scenario or suite, not both")
    if suite is None:
        specs = [
            scenario if isinstance(scenario, ScenarioSpec) else load_scenario(scenario or "default")
        ]
    elif isinstance(suite, str):
        if suite not in ("train", "test", "unseen"):
            raise ScenarioError(
                "expected a split name (train, test, unseen) or a list of scenario names",
                source="suite",
                key=suite,
            )
        specs = [load_scenario(n) for n in list_scenarios(suite)]
    else:
        if not suite:
            raise ScenarioError("expected at least one scenario", source="suite")
        specs = [load_scenario(n) for n in suite]
    if nodes is not None:
        specs = [_resized(s, nodes) for s in specs]
    return specs


def _resized(spec: ScenarioSpec, nodes: int | str) -> ScenarioSpec:
    """``spec`` on a cloud of another size, keeping only the fault types that fit it.

    A fault type that has no target on the resized cloud (a database replica failure on an
    all-in-one cloud with one database) is dropped from the draw with a warning; an entry
    left with none is an error, raised here rather than at some later reset.
    """
    try:
        topo = cached_topology(nodes, spec.topology.seed)
    except PaseGymError as exc:
        raise ScenarioError(str(exc), source="nodes") from None
    probe = new_state(topo, spec.workload.profiles()[0], np.random.default_rng(0))
    entries = []
    for i, entry in enumerate(spec.faults):
        fits = [f for f in entry.types() if eligible_targets(probe, f).size > 0]
        if not fits:
            raise ScenarioError(
                f"no fault type of this entry can strike a cloud of size {nodes!r} "
                f"({', '.join(entry.types())})",
                source=spec.source,
                key=f"faults.{i}.type",
            )
        dropped = sorted(set(entry.types()) - set(fits))
        if dropped:
            logger.warning(
                "scenario %s on a %s cloud: dropping %s (no target)",
                spec.name,
                nodes,
                ", ".join(dropped),
            )
        entries.append(entry.model_copy(update={"type": fits if len(fits) > 1 else fits[0]}))
    topology = spec.topology.model_copy(update={"nodes": nodes})
    return spec.model_copy(update={"topology": topology, "faults": entries})


def episode_of(env: gym.Env[Any, Any]) -> Episode:
    """The running :class:`~pase_gym.episode.Episode` of a (possibly wrapped) pase-gym env.

    Raises:
        TypeError: ``env`` does not wrap a pase-gym environment.
        gymnasium.error.ResetNeeded: the env has not been reset yet.
    """
    base = env.unwrapped
    current = getattr(base, "current_episode", None)
    if current is None:
        raise TypeError(
            f"expected a pase-gym environment (or a wrapper of one), found {type(base).__name__}"
        )
    episode: Episode = current()
    return episode
