"""Simulated experiments as rows over the data set's columns, native or calibrated.

:func:`native_matrix` aligns the simulator's own event counts to the data set's columns (the
*uncalibrated* simulator); :func:`calibrated_matrix` draws the rows of the calibrated
simulator from the experiments' outcomes and a :class:`~pase_gym.fidelity.calibration.Calibration`
(see :mod:`pase_gym.fidelity.experiments` for what the simulator decides and what is drawn).
It imports both: the calibration is fitted from experiments
(:mod:`pase_gym.fidelity.calibration` imports :mod:`~pase_gym.fidelity.experiments`), and the
experiments know nothing of the calibration, so the imports run one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from pase_gym.datasets.campaigns import CAMPAIGNS
from pase_gym.errors import DatasetError
from pase_gym.fidelity.calibration import REGENERATE, Calibration
from pase_gym.fidelity.experiments import PHASE_STATES, Experiment, phase_states
from pase_gym.fidelity.scripts import SCRIPTS, SITES, is_error_event, script_events
from pase_gym.sim.signals import EVENT_NAMES

COUPLED_OMISSIONS = True
"""Draw the omissions of a row's unmodelled columns from one shared latent (a column with a
larger ``p_zero`` goes missing first, as when a run stops early); error columns are always
drawn independently. Checked against independent draws on a development split of the train
side only (similar F1, slightly lower discriminator AUC)."""

Mode = Literal["full", "scale"]


def _column_index(columns: Sequence[str]) -> dict[str, int]:
    return {c: j for j, c in enumerate(columns)}


def native_matrix(experiments: Sequence[Experiment], columns: Sequence[str]) -> np.ndarray:
    """The simulator's own event counts, aligned to ``columns`` (absent names stay 0).

    Returns:
        ``(len(experiments), len(columns))`` int64.
    """
    index = _column_index(columns)
    src = np.array([i for i, name in enumerate(EVENT_NAMES) if name in index], dtype=np.intp)
    dst = np.array([index[EVENT_NAMES[i]] for i in src.tolist()], dtype=np.intp)
    out = np.zeros((len(experiments), len(columns)), dtype=np.int64)
    if experiments:
        native = np.array([e.native for e in experiments], dtype=np.int64)
        out[:, dst] = native[:, src]
    return out


def _draw_value(rng: np.random.Generator, dist: Sequence[Sequence[float]]) -> int:
    """Draw a count from ``[[value, probability], ...]`` (probabilities renormalised)."""
    values = np.array([d[0] for d in dist], dtype=np.float64)
    probs = np.array([d[1] for d in dist], dtype=np.float64)
    return int(values[int(rng.choice(values.size, p=probs / probs.sum()))])


Spread = tuple[float, Sequence[Sequence[float]], float]
"""A healthy run's count of one event: ``(p_zero, [[count, probability], ...], mean)``."""


def _emission_plan(
    calibration: Calibration, campaign: str, index: dict[str, int]
) -> tuple[set[str], list[tuple[int, np.ndarray, Spread | None]]]:
    """The events a campaign's script emits, and for those with an ``emission`` entry (in the
    script's sorted order): the column, the counts per step and end state, the healthy spread.

    Raises:
        DatasetError: an emission entry does not have one count per script step and state.
    """
    camp = calibration.campaigns[campaign]
    size = len(SCRIPTS[campaign]) * len(PHASE_STATES)
    modelled = set(script_events(campaign))
    plan: list[tuple[int, np.ndarray, Spread | None]] = []
    for name in sorted(modelled):
        j = index.get(name)
        weights = camp.emission.get(name)
        if j is None or not camp.present[j] or weights is None:
            continue
        if len(weights) != size:
            raise DatasetError(
                f"expected {size} emission counts for {name!r} in campaign {campaign} (script "
                f"steps x states), found {len(weights)}; regenerate the calibration with: "
                f"{REGENERATE}"
            )
        spread: Spread | None = None
        entry = camp.signature["no_failure"].get(name)
        if entry is not None and entry[2]:
            p_zero, _ratio, values = entry
            typical = (1.0 - p_zero) * sum(v * q for v, q in values) / sum(q for _, q in values)
            if typical > 0:
                spread = (p_zero, values, typical)
        plan.append((j, np.asarray(weights, dtype=np.float64), spread))
    return modelled, plan


def calibrated_matrix(
    experiments: Sequence[Experiment],
    calibration: Calibration,
    *,
    mode: Mode = "full",
) -> np.ndarray:
    """Rows over the calibration's columns for simulated experiments.

    Columns the campaign's script emits (the simulator's vocabulary): the workload client's
    count, the sum over the script's steps of the calibration's ``emission`` count for the
    state each step ended in (:func:`~pase_gym.fidelity.experiments.phase_states`: completed,
    degraded by a silent agent, failed after the API accepted it and polled until the client's
    timeout, rejected, or skipped: nothing), times a draw of the healthy run-to-run spread,
    rounded at random to an integer. Every other column the campaign has:
    drawn from the class's omission signature (``mode="full"``) or from the healthy
    distribution (``mode="scale"``). The draws of experiment ``e`` are seeded from ``e.seed``.

    Returns:
        ``(len(experiments), len(calibration.columns))`` int64.
    """
    if mode not in ("full", "scale"):
        raise DatasetError(f"expected mode 'full' or 'scale', found {mode!r}")
    columns = calibration.columns
    index = _column_index(columns)
    out = np.zeros((len(experiments), len(columns)), dtype=np.int64)
    plans = {
        name: _emission_plan(calibration, name, index) for name in {e.campaign for e in experiments}
    }
    for i, exp in enumerate(experiments):
        camp = calibration.campaigns[exp.campaign]
        rng = np.random.default_rng(
            np.random.SeedSequence(
                [exp.seed, 0xCA1, CAMPAIGNS.index(exp.campaign), SITES.index(exp.site)]
            )
        )
        healthy = camp.signature["no_failure"]
        # 1) the columns the simulator's pass decides: the client's count per step and end state
        ends = phase_states(exp).ravel()
        modelled, plan = plans[exp.campaign]
        for j, weights, spread in plan:
            mean = float(ends @ weights)
            if mean > 0 and spread is not None:
                # the run-to-run spread of a healthy run's count, scaled to this run's mean
                p_zero, values, typical = spread
                mean *= (_draw_value(rng, values) if rng.random() >= p_zero else 0) / typical
            base = int(np.floor(mean))
            out[i, j] = base + int(rng.random() < mean - base)  # rounded at random, unbiased
        # 2) the columns it does not model: the calibration's signature
        signature = camp.signature[exp.label] if mode == "full" else healthy
        shared = rng.random()  # one latent "how far the run got" for the omissions of a row
        for name in camp.columns_present:
            if name in modelled:
                continue
            entry = signature.get(name)
            if entry is None:  # never seen non-zero for this class
                continue
            p_zero, _ratio, values = entry
            u = rng.random() if (is_error_event(name) or not COUPLED_OMISSIONS) else shared
            if values and u >= p_zero:
                out[i, index[name]] = _draw_value(rng, values)
    return out
