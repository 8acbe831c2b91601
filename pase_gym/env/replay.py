"""``PASE-OpenStack-Replay-v4``: episodes that replay real rows of Failure-Dataset-OpenStack.

Any agent of the benchmark can be scored on real data with it: it sees a real row's event
stream in the observation of the ``tiny`` cloud (:mod:`pase_gym.env.replay_obs`), answers
with a plan, and its diagnosis is mapped onto the data set's failure classes
(:mod:`pase_gym.env.replay_classes`). ``pase-bench replay`` measures agents' macro-F1 per
campaign (:mod:`pase_gym.harness.replay`). The data set is GPL-3.0 and not shipped; it is
read when the env is made, never when the id is registered.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from pase_gym.datasets import Dataset, load_all
from pase_gym.datasets.campaigns import parse_campaigns
from pase_gym.datasets.splits import unique_rows
from pase_gym.env.actions import to_plan
from pase_gym.env.describe import describe
from pase_gym.env.replay_classes import diagnosis_class, replay_topology
from pase_gym.env.replay_obs import CampaignView, replay_frame, views_for
from pase_gym.env.spaces import (
    OBS_PARTS,
    Shapes,
    action_space,
    encode_observation,
    observation_space,
    topology_edges,
)
from pase_gym.errors import DatasetError, PlanError
from pase_gym.fidelity.calibration import check_split, load_calibration
from pase_gym.fidelity.scripts import WINDOW
from pase_gym.sim.plan import Plan

SPLITS = ("all", "train", "test")
ROW_SETS = ("unique", "all")
ORDERS = ("sequential", "shuffle")
DEFAULT_MAX_STEPS = 3
CORRECT_REWARD = 1.0


def select_rows(dataset: Dataset, campaigns: Sequence[str], split: str, rows: str) -> np.ndarray:
    """Row indices (into ``dataset``) the env replays, campaign by campaign in row order.

    Args:
        dataset: all three campaigns, aligned (:func:`~pase_gym.datasets.load_all`).
        campaigns: which campaigns.
        split: ``"all"``, or the ``"train"``/``"test"`` side of the calibration's
            duplicate-aware split (:func:`~pase_gym.fidelity.calibration.check_split`).
        rows: ``"unique"`` (the first row of each distinct ``(counts, label)`` pair of the
            campaign, as the sim-to-real report's evaluation rows) or ``"all"``.

    Raises:
        DatasetError: an unknown option, or a data set that differs from the calibration's.
    """
    if split not in SPLITS:
        raise DatasetError(f"expected split in {', '.join(SPLITS)}, found {split!r}")
    if rows not in ROW_SETS:
        raise DatasetError(f"expected rows in {', '.join(ROW_SETS)}, found {rows!r}")
    if split == "all":
        side = np.arange(dataset.n_rows, dtype=np.int64)
    else:
        train, test = check_split(load_calibration(), dataset)
        side = train if split == "train" else test
    out = []
    for campaign in campaigns:
        picked = np.intersect1d(dataset.rows_of(campaign), side)
        if rows == "unique":
            positions, _ = unique_rows(dataset.X[picked], dataset.labels[picked])
            picked = picked[positions]
        out.append(picked)
    return np.concatenate(out).astype(np.int64)


class ReplayEnv(gym.Env[dict[str, np.ndarray], Any]):
    """Real rows of Failure-Dataset-OpenStack replayed as the event stream of the tiny cloud.

    ## Description
    Each episode is one real experiment (one row) of a fault-injection campaign (DEPL, NET,
    STO). The agent sees the ``tiny`` all-in-one cloud (like the data set's single-node
    deployment) under the campaign's workload after one experiment window, with the row's
    event counts in its event stream, and answers with a plan, as in ``PASE-OpenStack-v4``.
    Its ``Diagnose(fault_type, node)`` is mapped onto the data set's failure classes: the
    first step of the campaign's workload script that the diagnosed node breaks, and that
    step's class (:mod:`pase_gym.env.replay_classes`); a plan without a diagnosis means
    ``no_failure``. Nothing is simulated after the window: the row is all there is.

    ## Action Space
    That of the normal env on the tiny cloud (:func:`pase_gym.env.spaces.action_space`);
    ``step`` also takes a :class:`~pase_gym.sim.plan.Plan`, a ``Call`` or plan text. Only the
    diagnosis is scored; the calls are not executed.

    ## Observation Space
    Exactly that of ``PASE-OpenStack-Tiny-v4`` with the same ``obs_parts`` and ``window``.
    ``events`` carries the row (the 46 modelled event types, on the simulator's scale);
    metrics, window, node descriptors, edges and clock are those of a healthy run, except the
    error rate (and so ``HighErrorRate`` alarms and SLOs) of roles whose error events the row
    holds (:mod:`pase_gym.env.replay_obs`). ``info`` has the normal env's keys
    (``description`` rendered by the same ``describe``, ``tick``, ``slo_ok``, ``alarms``,
    ``node_names``, ``slot_names``), after a step also ``plan`` and ``plan_error``, and at the
    end of an episode ``campaign``, ``row`` (index into ``load_all()``), ``diagnosis``,
    ``predicted_class`` and ``true_class``. Nothing names the label before the episode ends.

    ## Rewards
    ``1.0`` at the end of an episode whose predicted class equals the row's label, else ``0``.
    A malformed plan (or a diagnosis of a node the cloud does not have) is a no-op step with
    the error in ``info["plan_error"]``.

    ## Starting State
    ``reset(seed=...)`` starts a pass over the rows (``order="sequential"``: in row order;
    ``"shuffle"``: a permutation drawn from the seed); ``reset()`` moves on to the next row
    (a new pass after the last). ``options={"row": k}`` replays the ``k``-th selected row.

    ## Episode End
    Terminates on the first plan that carries a valid diagnosis. Truncates after
    ``max_steps`` plans without one (the prediction is then ``no_failure``).

    ## Arguments
    ``campaigns`` (``"all"``, one of DEPL/NET/STO, a comma-separated list or a sequence);
    ``root`` (the data set's folder; default ``$PASE_GYM_OPENSTACK_DATA``, then
    ``../shared/data/failure-dataset-openstack``); ``split`` (``"all"``, ``"train"``, ``"test"``:
    a side of the calibration's duplicate-aware split); ``rows`` (``"unique"`` distinct
    ``(counts, label)`` rows or ``"all"``); ``order``; ``max_steps``; ``obs_parts``;
    ``window``; ``render_mode`` (``"ansi"``). A missing or malformed data set raises
    :class:`~pase_gym.errors.DatasetError`.

    ## Version History
    * v1: structured actions are checked field by field (nothing is wrapped around); a
      diagnosis naming a node the cloud does not have is a malformed plan.
    * v0: initial release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        campaigns: str | Sequence[str] | None = "all",
        root: str | os.PathLike[str] | None = None,
        split: str = "all",
        rows: str = "unique",
        order: str = "sequential",
        max_steps: int = DEFAULT_MAX_STEPS,
        obs_parts: tuple[str, ...] | list[str] = OBS_PARTS,
        window: int = 4,
        render_mode: str | None = None,
    ) -> None:
        if order not in ORDERS:
            raise DatasetError(f"expected order in {', '.join(ORDERS)}, found {order!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise DatasetError(f"expected max_steps a positive integer, found {max_steps!r}")
        unknown = [p for p in obs_parts if p not in OBS_PARTS]
        if unknown or not obs_parts:
            raise ValueError(
                f"obs_parts must be a non-empty subset of {OBS_PARTS}, found {list(obs_parts)}"
            )
        if window < 1:
            raise ValueError(f"window must be >= 1, found {window}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']}, found {render_mode!r}"
            )
        self.campaigns = parse_campaigns(campaigns)
        self.dataset = load_all(root)
        self.rows = select_rows(self.dataset, self.campaigns, split, rows)
        if self.rows.size == 0:
            raise DatasetError(f"no rows to replay for {self.campaigns} on the {split!r} side")
        self.split, self.row_set, self.order = split, rows, order
        self.max_steps = int(max_steps)
        self.obs_parts = tuple(obs_parts)
        self.render_mode = render_mode
        self.topology = replay_topology()
        edges = topology_edges(self.topology)[0].shape[1]
        self.shapes = Shapes(self.topology.n, edges, int(window), self.topology.groups)
        self.observation_space = observation_space(self.shapes, self.obs_parts)  # type: ignore[assignment]
        self.action_space = action_space(self.shapes)
        present = {c: self.dataset.present[self.dataset.campaigns.index(c)] for c in self.campaigns}
        self._views: dict[str, CampaignView] = views_for(
            self.campaigns, self.dataset.columns, present, load_calibration()
        )
        self._context: dict[int, str] = {}
        self._order: np.ndarray | None = None
        self._cursor = 0
        self._row: int | None = None
        self._steps = 0
        self._result: dict[str, Any] | None = None
        self._description = ""

    # -- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Replay the next row (a seeded reset starts a new pass; see the env card)."""
        super().reset(seed=seed)
        if seed is not None or self._order is None:
            self._new_pass()
        if options and "row" in options:
            k = options["row"]
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
                raise DatasetError(f"expected options['row'] an integer, found {k!r}")
            if not 0 <= int(k) < self.rows.size:
                raise DatasetError(
                    f"expected options['row'] in [0, {self.rows.size}), found {int(k)}"
                )
            self._row = int(self.rows[int(k)])
        else:
            if self._cursor >= self.rows.size:
                self._new_pass()
            assert self._order is not None  # for the type checker: _new_pass set it
            self._row = int(self.rows[int(self._order[self._cursor])])
            self._cursor += 1
        self._steps = 0
        self._result = None
        return self._frame({})

    def step(
        self, action: Any
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Read the plan's diagnosis; end the episode on a diagnosis or the step budget."""
        if self._row is None or self._result is not None:
            raise gym.error.ResetNeeded("call reset() before step() (the episode is over)")
        plan_error: str | None = None
        try:
            plan = self._to_plan(action)
        except PlanError as exc:
            plan, plan_error = Plan.empty(), str(exc)
        # to_plan refuses a diagnosis of a node the replayed cloud does not have
        node = plan.diagnosis.node if plan.diagnosis is not None else None
        self._steps += 1
        terminated = node is not None
        truncated = not terminated and self._steps >= self.max_steps
        reward = 0.0
        extra: dict[str, Any] = {
            "plan": str(plan) if plan_error is None else "",
            "plan_error": plan_error,
        }
        if terminated or truncated:
            truth = self.ground_truth()
            predicted = diagnosis_class(truth["campaign"], node)
            reward = CORRECT_REWARD if predicted == truth["class"] else 0.0
            self._result = {
                "campaign": truth["campaign"],
                "row": truth["row"],
                "diagnosis": None if node is None else str(plan.diagnosis),
                "predicted_class": predicted,
                "true_class": truth["class"],
            }
            extra.update(self._result)
        obs, info = self._frame(extra)
        return obs, reward, terminated, truncated, info

    def render(self) -> str | None:
        """The scene description of the replayed row (and its outcome once it is over)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode=...")
            return None
        text = self._description
        if self._result is not None:
            r = self._result
            text += (
                f"\n[{r['campaign']} row {r['row']}] predicted {r['predicted_class']}, "
                f"true {r['true_class']}"
            )
        return text

    # -- the evaluation side -----------------------------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        """The replayed row: campaign, row index, class (evaluation side only)."""
        if self._row is None:
            raise gym.error.ResetNeeded("call reset() before using the environment")
        return {
            "campaign": str(self.dataset.campaign[self._row]),
            "row": self._row,
            "class": str(self.dataset.labels[self._row]),
        }

    def node_names(self) -> list[str]:
        """Names of the provisioned nodes of the replayed cloud."""
        state = self._views[self.campaigns[0]].state
        return [self.topology.names[i] for i in np.flatnonzero(state.active)]

    # -- helpers -------------------------------------------------------------------------------
    def _new_pass(self) -> None:
        n = self.rows.size
        self._order = self.np_random.permutation(n) if self.order == "shuffle" else np.arange(n)
        self._cursor = 0

    def _to_plan(self, action: Any) -> Plan:
        return to_plan(action, self.topology, self.shapes)

    def _frame(self, extra: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        assert self._row is not None  # reset() chose a row before any frame is built
        view = self._views[str(self.dataset.campaign[self._row])]
        state, obs = replay_frame(view, self.dataset.X[self._row])
        encoded = encode_observation(state, obs, self.shapes, self.obs_parts, view.budget)
        self._description = describe(
            state, obs, interval=WINDOW, baseline=view.baseline, cache=self._context
        )
        names = self.topology.names
        info: dict[str, Any] = {
            "description": self._description,
            "tick": int(state.tick),
            "slo_ok": bool(state.slo_ok),
            "alarms": len(obs.alarms),
            "node_names": [names[i] for i in np.flatnonzero(state.active)],
            "slot_names": names,
            "probes": [p.as_dict() for p in obs.probes],  # a real row answers no probe
            **extra,
        }
        return encoded, info
