"""Simulated experiments shaped like the rows of Failure-Dataset-OpenStack.

One *experiment* here mirrors one row of the data set: a single pass of a campaign's workload
script on the ``tiny`` cloud (an all-in-one controller, like the data set's single-node
deployment) while one fault is active, or none. The scripts, the window and the injection
sites are data in :mod:`pase_gym.fidelity.scripts`; this module runs them. What the simulator
decides, and what it does not:

- **The simulator's own dynamics decide the outcome.** The episode runs for ``WINDOW`` ticks
  with the campaign's workload profile and one fault injected at a seeded onset. The workload
  script issues its requests at fixed ticks (``SCRIPTS``); each request walks its event chain
  (:data:`pase_gym.sim.signals.EVENT_CHAINS`) and stops at the first step whose role fails,
  with the probability the simulator reports for that role at that tick (``state.role_err``,
  the same failure shares :func:`~pase_gym.sim.signals.accumulate_events` turns into expected
  counts). In the walk a request that stops reaches none of its later chain steps (the
  simulator's omission semantics; what the client's trace then shows is the calibrated
  rows' business, below), and the failing step emits its error variant for
  :data:`ERROR_SHARE` of the failures. The ``ssh`` step asks whether a booted instance
  answers on the data plane (``state.works`` and ``state.err`` of the instances) while the
  control plane worked. The
  **class** is the class of the first step that failed (``Phase.failure_class``), or
  ``no_failure``; it is never read from the fault type. A clean-up step runs only when the
  step that created its resource was accepted (``Phase.cleans``). A failure of one of
  Neutron's asynchronous agents (:data:`SILENT_ROLES`) does not stop its request: the client
  sees success, the agent's events are missing, and the next ``ssh`` check fails.
- **The native event stream** is what the simulator's monitoring shows over the window: the
  Poisson counts of :meth:`pase_gym.episode.Episode.observe` over its 46 event types, aligned
  to the data set's 112 columns (every other column stays 0;
  :func:`pase_gym.fidelity.rows.native_matrix`). This is the *uncalibrated* simulator.
- **Calibrated rows** (:func:`pase_gym.fidelity.rows.calibrated_matrix`) use the same pass:
  each step of the script ends ``completed``, ``degraded`` (an asynchronous agent dropped its
  part unseen), ``failed`` after the API accepted it (its client keeps polling until its
  timeout), ``rejected`` or skipped (:func:`phase_states`); a
  column the simulator models gets the workload client's count for those end states (the
  calibration's ``emission``, fitted on the train rows' class means, scaled by a healthy run's
  spread); the columns the simulator does not model (about 66 of 112) are drawn from the
  calibration: from the class's fitted omission signature (``mode="full"``), or from the
  healthy distribution whatever the class (``mode="scale"``, an ablation). See
  :mod:`pase_gym.fidelity.calibration` and ``docs/fidelity.md``.

Every experiment is seeded and deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pase_gym.datasets.campaigns import CAMPAIGN_WORKLOADS, CAMPAIGNS, campaign_name
from pase_gym.episode import Episode
from pase_gym.errors import DatasetError
from pase_gym.fidelity.scripts import (
    NO_FAULT,
    SCRIPTS,
    SITES,
    WINDOW,
    check_site,
    phase_ticks,
)
from pase_gym.scenarios import ScenarioSpec, load_scenario
from pase_gym.sim.faults import FAMILIES, FAULTS
from pase_gym.sim.roles import ROLE_INDEX
from pase_gym.sim.signals import EVENT_CHAINS

ONSET_RANGE = (1, WINDOW // 2)
"""The fault's onset is drawn uniformly from these ticks (the first half of the window)."""

SIM_STEP = 10
"""Ticks between the simulator's evaluations while the window runs (onsets are exact)."""

ERROR_SHARE = 0.3
"""Share of failing steps that emit their error variant (as in ``accumulate_events``)."""

PHASE_STATES: tuple[str, ...] = ("completed", "degraded", "failed", "rejected")
"""How one step of the workload script ended, as its client saw it (:func:`phase_states`):

- ``completed``: every request of the step succeeded;
- ``degraded``: the client saw success, but an asynchronous agent (:data:`SILENT_ROLES`) dropped
  its part of the work: its events are missing and nothing tells the client until the data
  plane is checked;
- ``failed``: the API accepted the request (its first chain step completed) and a later step
  failed, or the SSH check failed: the client holds a resource and keeps polling it, as the
  data set's workload does, until its timeout;
- ``rejected``: the request failed at its first step (the client got an error answer at once).

A step that did not run (a step it needs failed) is in none of them."""

SILENT_ROLES: frozenset[str] = frozenset({"dhcp-agent", "l3-agent", "ovs-agent"})
"""Neutron's agents: the server hands them their work as RPC casts and answers the client
before they act, so when one of them fails its step the client's request still succeeds (the
port stays down, the router unplugged, no DHCP lease) and the failure shows only when the
instance does not answer (the ``ssh`` check)."""


def experiment_scenario(campaign: str, site: str, onset: int) -> ScenarioSpec:
    """The scenario of one experiment: the ``tiny`` cloud under the campaign's workload with
    one fault at ``site`` from tick ``onset`` (``none``: a fault scheduled after the window)."""
    parsed = check_site(site)
    if parsed is None:
        # a bug that never activates: scheduled after the window ends
        fault, role, onset = "process_crash", "nova-api", WINDOW + 5
    else:
        fault, role = parsed
    split = FAMILIES[FAULTS[fault].family].splits[0]
    return load_scenario(
        {
            "name": f"fidelity-{campaign.lower()}",
            "split": split,
            "topology": {"nodes": "tiny", "seed": 0},
            "workload": {"profile": CAMPAIGN_WORKLOADS[campaign]},
            "faults": [{"type": fault, "role": role, "onset": int(onset)}],
            "budget": WINDOW + 10,
        }
    )


@dataclass(frozen=True)
class Experiment:
    """One simulated experiment (one row-to-be).

    Attributes:
        campaign: DEPL, NET or STO.
        site: the injection site (``<fault type>@<role>`` or ``none``).
        seed: the experiment's seed (episode and draws).
        onset: tick of the fault's onset (after the window for ``none``).
        label: the class derived from the simulated outcome.
        outcomes: per script step, ``-1`` when it completed, the index of the chain step it
            stopped at when it failed (``0`` for a failed ``ssh`` check), ``-2`` when it did not
            run (a step it needs failed or was skipped).
        errors: the error-variant events the failing steps emitted in the walk (a record of
            the simulator's answer; the calibrated rows take their error counts from the
            client model's end states, :func:`pase_gym.fidelity.rows.calibrated_matrix`).
        native: the simulator's own event counts over the window, over
            :data:`~pase_gym.sim.signals.EVENT_NAMES`.
        silent: per script step, the chain step whose asynchronous agent
            (:data:`SILENT_ROLES`) dropped its work while the client saw success, or -1.
    """

    campaign: str
    site: str
    seed: int
    onset: int
    label: str
    outcomes: tuple[int, ...]
    errors: tuple[str, ...]
    native: tuple[int, ...]
    silent: tuple[int, ...]


def _walk(
    chain: str, steps: range, role_err: np.ndarray, rng: np.random.Generator
) -> tuple[int, str | None, int]:
    """Walk one request through ``steps``.

    Returns:
        ``(stop, error, silent)``: ``stop`` is -1 when the client saw the request succeed, else
        the failing chain step; ``error`` the error event it emitted, if any; ``silent`` the
        first step an asynchronous agent (:data:`SILENT_ROLES`) dropped, or -1.
    """
    spec = EVENT_CHAINS[chain]
    silent = -1
    for k in steps:
        _event, role, _per, error = spec[k]
        p_fail = float(np.clip(role_err[ROLE_INDEX[role]], 0.0, 1.0))
        if rng.random() < p_fail:
            if role in SILENT_ROLES:
                silent = k if silent < 0 else silent
                continue
            emitted = error if (error is not None and rng.random() < ERROR_SHARE) else None
            return k, emitted, silent
    return -1, None, silent


def _data_plane_failure(episode: Episode) -> float:
    """Share of the active instances that do not answer on the data plane."""
    state = episode.state
    ids = state.topo.instance_ids
    ids = ids[state.active[ids]]
    if ids.size == 0:
        return 1.0
    ok = state.works[ids] * (1.0 - np.clip(state.err[ids], 0.0, 1.0))
    return float(1.0 - ok.mean())


def run_experiment(campaign: str, site: str, seed: int, *, onset: int | None = None) -> Experiment:
    """Run one seeded experiment of ``campaign`` with a fault at ``site`` (or ``none``).

    Args:
        campaign: DEPL, NET or STO (or the workload names).
        site: an entry of :data:`SITES`.
        seed: the same seed gives the same experiment, in any process.
        onset: the fault's onset tick in ``[1, WINDOW)``; by default drawn from
            :data:`ONSET_RANGE` with the experiment's seed.

    Returns:
        The :class:`Experiment`, its class derived from what failed in the simulation.
    """
    campaign = campaign_name(campaign)
    check_site(site)
    ss = np.random.SeedSequence([int(seed), CAMPAIGNS.index(campaign), SITES.index(site)])
    episode_seed, draw_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
    rng = np.random.default_rng(draw_seed)
    drawn = int(rng.integers(ONSET_RANGE[0], ONSET_RANGE[1] + 1))
    if onset is None:
        onset = drawn
    elif not 1 <= int(onset) < WINDOW:
        raise DatasetError(f"expected an onset tick in [1, {WINDOW}), found {onset!r}")
    onset = int(onset)
    spec = experiment_scenario(campaign, site, onset)
    episode = Episode(spec, seed=episode_seed)
    episode.reset(skip_to_incident=False)
    script = SCRIPTS[campaign]
    outcomes: list[int] = []
    silents: list[int] = []
    errors: list[str] = []
    label = "no_failure"
    failed = False
    completed: set[str] = set()
    accepted: set[str] = set()  # steps whose request the API took (their resources exist)
    for phase, tick in zip(script, phase_ticks(campaign), strict=True):
        if tick > episode.state.tick:
            episode.wait(tick - episode.state.tick, step=SIM_STEP)
        if phase.teardown:
            runs = not phase.cleans or any(n in accepted for n in phase.cleans)
        else:
            runs = all(n in completed for n in phase.needs)
        if not runs:
            outcomes.append(-2)
            silents.append(-1)
            continue
        silent = -1
        if phase.chain is None:  # the SSH check: does a booted instance answer?
            unwired = any(k >= 0 for k in silents)  # a port, lease or router never set up
            stop = 0 if unwired or rng.random() < _data_plane_failure(episode) else -1
        else:
            stop, error, silent = _walk(phase.chain, phase.steps(), episode.state.role_err, rng)
            if error is not None:
                errors.append(error)
        outcomes.append(stop)
        silents.append(silent)
        if stop < 0 or phase.chain is None or stop > phase.steps().start:
            accepted.add(phase.name)
        if stop < 0:
            completed.add(phase.name)
        elif not failed:
            failed = True
            if phase.failure_class is not None:
                label = phase.failure_class
    if episode.state.tick < WINDOW:
        episode.wait(WINDOW - episode.state.tick, step=SIM_STEP)
    native = episode.observe().events.astype(np.int64)
    return Experiment(
        campaign=campaign,
        site=site,
        seed=int(seed),
        onset=onset if site != NO_FAULT else WINDOW + 5,
        label=label,
        outcomes=tuple(outcomes),
        errors=tuple(errors),
        native=tuple(int(v) for v in native),
        silent=tuple(silents),
    )


def phase_states(experiment: Experiment) -> np.ndarray:
    """Per step of the campaign's script, one-hot over :data:`PHASE_STATES` (all 0: skipped).

    Returns:
        ``(len(SCRIPTS[campaign]), len(PHASE_STATES))`` float64.
    """
    script = SCRIPTS[experiment.campaign]
    out = np.zeros((len(script), len(PHASE_STATES)), dtype=np.float64)
    steps = zip(script, experiment.outcomes, experiment.silent, strict=True)
    for i, (phase, outcome, silent) in enumerate(steps):
        if outcome == -1:
            out[i, PHASE_STATES.index("degraded" if silent >= 0 else "completed")] = 1.0
        elif outcome >= 0:
            accepted = phase.chain is None or outcome > phase.steps().start
            out[i, PHASE_STATES.index("failed" if accepted else "rejected")] = 1.0
    return out


def draw_sites(mix: Mapping[str, float], n: int, rng: np.random.Generator) -> list[str]:
    """Draw ``n`` injection sites from a mixture (site -> weight; weights need not sum to 1)."""
    names = [s for s in SITES if mix.get(s, 0.0) > 0.0]
    if not names:
        raise DatasetError("expected an injection mix with at least one positive weight")
    unknown = sorted(set(mix) - set(SITES))
    if unknown:
        raise DatasetError(f"unknown injection sites in the mix: {', '.join(unknown)}")
    w = np.array([mix[s] for s in names], dtype=np.float64)
    picks = rng.choice(len(names), size=int(n), p=w / w.sum())
    return [names[int(i)] for i in picks]


def uniform_mix() -> dict[str, float]:
    """Every site equally likely (the uncalibrated simulator's injection campaign)."""
    return {s: 1.0 / len(SITES) for s in SITES}


def simulate_campaign(
    campaign: str, n: int, *, seed: int = 0, mix: Mapping[str, float] | None = None
) -> list[Experiment]:
    """Run ``n`` experiments of ``campaign`` with sites drawn from ``mix`` (default uniform).

    Experiment ``i`` is seeded from ``(seed, i)``, so the first ``m`` experiments of a larger
    run are the ``m`` experiments of a smaller one with the same seed and mix.
    """
    campaign = campaign_name(campaign)
    mix = uniform_mix() if mix is None else mix
    site_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x51E5]))
    sites = draw_sites(mix, n, site_rng)
    return [
        run_experiment(campaign, site, int(seed) * 1_000_003 + i) for i, site in enumerate(sites)
    ]


def labels_of(experiments: Sequence[Experiment]) -> np.ndarray:
    """The derived classes of ``experiments``."""
    return np.array([e.label for e in experiments], dtype="<U16")
