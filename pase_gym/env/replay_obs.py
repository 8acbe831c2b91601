"""The observation of one replayed row: a real event stream on the simulator's ``tiny`` cloud.

A row of Failure-Dataset-OpenStack is the bag of API/RPC event counts of one experiment on a
single-node OpenStack: nothing else (no metrics, alarms or logs). :func:`replay_frame` shows
it to an agent the way the normal env shows a step, through the same code paths
(:func:`~pase_gym.env.spaces.encode_observation`, :func:`~pase_gym.env.describe.describe`):

- **The cloud** is the ``tiny`` all-in-one cloud of :mod:`pase_gym.fidelity.experiments` under the
  campaign's workload profile, run healthy for one experiment window (:data:`WINDOW` ticks,
  seeded, no fault). Its topology, node descriptors, metric window and clock are that healthy
  run's, the same for every row of a campaign.
- **Events** (the 46 the simulator models, mapped by name onto the data set's columns): the
  row's count relative to the campaign's healthy count (the calibration's ``no_failure``
  distribution, fitted on the train side; :func:`healthy_mean`), times the healthy simulated
  count over the window, rounded (a non-zero count stays at least 1). A column the campaign's
  tracer did not record shows its healthy simulated count: no evidence either way.
- **Error rate, alarms, SLOs**: derived from the row's events only. A role whose chain step
  emitted its error variant (``novaclient_POST_500``, ``..._ERROR``) gets an error-rate estimate
  by inverting the simulator's emission rule (an error variant is emitted for
  :data:`~pase_gym.fidelity.experiments.ERROR_SHARE` of the failures): failures ``e / 0.3`` over
  ``ok + e / 0.3``, the largest over the role's steps. Its in-service nodes carry that error
  rate (current metrics and the newest window snapshot); alarms are the simulator's threshold
  rules on those metrics (``HighErrorRate`` above 0.2) and a node violates its SLO above its
  error-rate objective (5%). Every other metric stays healthy: a missing event raises no
  alarm, it shows only in the event stream (``... 80% below normal``). There are no logs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pase_gym.env.replay_classes import replay_topology
from pase_gym.episode import Episode
from pase_gym.errors import DatasetError
from pase_gym.fidelity.calibration import Calibration
from pase_gym.fidelity.experiments import ERROR_SHARE, SIM_STEP, experiment_scenario
from pase_gym.fidelity.scripts import NO_FAULT, WINDOW
from pase_gym.sim.roles import ROLE_INDEX
from pase_gym.sim.signals import (
    EVENT_CHAINS,
    EVENT_INDEX,
    EVENT_NAMES,
    Observation,
    alarms_of,
    baseline_event_rates,
)
from pase_gym.sim.state import IND, SimState

HEALTHY_SEED = 0
"""Seed of the healthy run every replayed row of a campaign is shown on."""

_ERR = IND["error_rate"]


def healthy_mean(entry: tuple[float, float | None, list[list[float]]] | None) -> float:
    """Mean healthy count of one column from its calibration entry ``[p_zero, ratio, values]``.

    ``values`` holds the most frequent non-zero counts with their probabilities; the mean is
    ``(1 - p_zero)`` times their probability-weighted mean (0 when the column is never non-zero).
    """
    if entry is None:
        return 0.0
    p_zero, _ratio, values = entry
    pairs = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    if pairs.size == 0 or pairs[:, 1].sum() <= 0:
        return 0.0
    mean = float((pairs[:, 0] * pairs[:, 1]).sum() / pairs[:, 1].sum())
    return (1.0 - float(p_zero)) * mean


def _error_steps() -> tuple[tuple[str, int, int], ...]:
    """(role, success event, error event) of every chain step that has an error variant."""
    out = []
    for chain in EVENT_CHAINS.values():
        for event, role, _per, error in chain:
            if error is not None:
                out.append((role, EVENT_INDEX[event], EVENT_INDEX[error]))
    return tuple(out)


ERROR_STEPS = _error_steps()


@dataclass(frozen=True, eq=False)
class CampaignView:
    """What every replayed row of one campaign shares.

    Attributes:
        campaign: DEPL, NET or STO.
        state: the healthy ``tiny`` cloud at the end of the window (never modified).
        observation: its healthy observation (metrics, window); events are replaced per row.
        baseline: healthy simulated events per tick (what ``describe`` compares against).
        expected: healthy simulated events over the window, per event.
        factor: per event, simulated healthy count per real healthy count.
        column: per event, its column in the data set (-1 where the data set has none).
        present: per event, whether the campaign's tracer recorded it.
        budget: the clock's budget (the window plus the simulated experiments' margin).
    """

    campaign: str
    state: SimState
    observation: Observation
    baseline: np.ndarray
    expected: np.ndarray
    factor: np.ndarray
    column: np.ndarray
    present: np.ndarray
    budget: int


@functools.lru_cache(maxsize=8)
def healthy_run(campaign: str) -> tuple[SimState, Observation, int]:
    """The healthy ``tiny`` cloud of ``campaign`` after one window, its observation, budget."""
    spec = experiment_scenario(campaign, NO_FAULT, 1)  # the fault is scheduled after the window
    episode = Episode(spec, seed=HEALTHY_SEED)
    episode.reset(skip_to_incident=False)
    episode.wait(WINDOW, step=SIM_STEP)
    return episode.state, episode.observe(), int(spec.budget)


def campaign_view(
    campaign: str,
    columns: Sequence[str],
    present_columns: np.ndarray,
    calibration: Calibration,
) -> CampaignView:
    """Build the shared part of ``campaign``'s replayed rows.

    Args:
        campaign: DEPL, NET or STO.
        columns: the data set's aligned column names.
        present_columns: bool per column: the campaign recorded it.
        calibration: the calibration whose ``no_failure`` signature gives the healthy scale.

    Raises:
        DatasetError: the calibration has no entry for the campaign.
    """
    if campaign not in calibration.campaigns:
        raise DatasetError(
            f"expected a calibration of campaign {campaign}, found only "
            f"{', '.join(calibration.campaigns) or 'none'}"
        )
    healthy = calibration.campaigns[campaign].signature.get("no_failure", {})
    state, observation, budget = healthy_run(campaign)
    if state.topo is not replay_topology():  # one cached build: a guard, not a check of input
        raise DatasetError("the healthy run is not on the replayed tiny cloud")
    baseline = baseline_event_rates(state)
    expected = baseline * WINDOW
    index = {c: j for j, c in enumerate(columns)}
    column = np.array([index.get(name, -1) for name in EVENT_NAMES], dtype=np.intp)
    present = np.array([j >= 0 and bool(present_columns[j]) for j in column.tolist()], dtype=bool)
    real = np.array([healthy_mean(healthy.get(name)) for name in EVENT_NAMES])
    factor = np.where(real > 0, expected / np.where(real > 0, real, 1.0), expected)
    for _role, ok, err in ERROR_STEPS:  # an error variant counts on its step's scale
        factor[err] = factor[ok] if real[ok] > 0 else 1.0
    for array in (baseline, expected, factor, column, present):
        array.setflags(write=False)
    return CampaignView(
        campaign, state, observation, baseline, expected, factor, column, present, budget
    )


def row_events(view: CampaignView, counts: np.ndarray) -> np.ndarray:
    """The event channel for one data-set row (``counts`` over the data set's columns)."""
    real = np.where(view.column >= 0, np.asarray(counts)[np.maximum(view.column, 0)], 0)
    real = real.astype(np.float64)
    scaled = np.rint(np.where(view.present, real * view.factor, view.expected))
    return np.where(view.present & (real > 0), np.maximum(scaled, 1.0), scaled)


def role_error_rates(view: CampaignView, counts: np.ndarray) -> dict[str, float]:
    """Role -> error rate estimated from the row's error events (roles without any left out)."""
    real = np.where(view.column >= 0, np.asarray(counts)[np.maximum(view.column, 0)], 0)
    rates: dict[str, float] = {}
    for role, ok, err in ERROR_STEPS:
        if not (view.present[ok] and view.present[err]) or real[err] <= 0:
            continue
        failures = float(real[err]) / ERROR_SHARE
        rate = failures / (float(real[ok]) + failures)
        rates[role] = max(rates.get(role, 0.0), rate)
    return rates


def replay_frame(view: CampaignView, counts: np.ndarray) -> tuple[SimState, Observation]:
    """The state and observation an agent is shown for one row (fresh objects each call)."""
    base = view.state
    state = base.copy()
    metrics = view.observation.metrics.copy()
    window = view.observation.window.copy()
    err = np.array(base.err, dtype=np.float64, copy=True)
    topo = base.topo
    serving = base.in_service()
    for role, rate in role_error_rates(view, counts).items():
        nodes = np.flatnonzero(serving & (topo.role == ROLE_INDEX[role]))
        metrics[nodes, _ERR] = np.maximum(metrics[nodes, _ERR], rate)
        window[-1, nodes, _ERR] = np.maximum(window[-1, nodes, _ERR], rate)
        err[nodes] = np.maximum(err[nodes], rate)
    bad = serving & (err > base.slo_error)
    state.slo_ok_nodes = base.slo_ok_nodes & ~bad
    state.slo_ok = bool(base.slo_ok and not bad.any())
    events = row_events(view, counts)
    observation = Observation(base.tick, metrics, window, alarms_of(state, metrics), [], events)
    return state, observation


def views_for(
    campaigns: Sequence[str],
    columns: Sequence[str],
    present: Mapping[str, np.ndarray],
    calibration: Calibration,
) -> dict[str, CampaignView]:
    """:func:`campaign_view` of each campaign (``present``: campaign -> bool per column)."""
    return {c: campaign_view(c, columns, present[c], calibration) for c in campaigns}
