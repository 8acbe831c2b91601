"""Real-world data sets that the simulator is calibrated and checked against.

:mod:`pase_gym.datasets.openstack` loads Failure-Dataset-OpenStack (GPL-3.0, not shipped; see
:func:`find_data_root` for where it is looked for). :mod:`pase_gym.datasets.simulate` runs
simulated experiments shaped like its rows, :mod:`pase_gym.datasets.calibration` fits them to
the data set's train side (``python -m pase_gym.datasets.calibrate``) and
:mod:`pase_gym.datasets.fidelity` writes the sim-to-real report
(``python -m pase_gym.datasets.fidelity``); ``docs/fidelity.md`` explains all three.
:mod:`pase_gym.datasets.replay` is the env ``PASE-OpenStack-Replay-v0`` that replays real rows
as the event stream of the simulator's tiny cloud (with :mod:`~pase_gym.datasets.replay_obs`
and :mod:`~pase_gym.datasets.replay_classes`), and :mod:`pase_gym.datasets.replay_eval`
scores any agent's fault detection on them (``pase-bench replay``).
"""

from __future__ import annotations

from pase_gym.datasets.openstack import (
    CAMPAIGNS,
    CLASS_NAMES,
    ENV_VAR,
    Campaign,
    CampaignSummary,
    ConflictGroup,
    Dataset,
    DatasetError,
    align,
    find_data_root,
    group_k_fold,
    group_train_test_split,
    load_all,
    load_campaign,
)

__all__ = [
    "CAMPAIGNS",
    "CLASS_NAMES",
    "ENV_VAR",
    "Campaign",
    "CampaignSummary",
    "ConflictGroup",
    "Dataset",
    "DatasetError",
    "align",
    "find_data_root",
    "group_k_fold",
    "group_train_test_split",
    "load_all",
    "load_campaign",
]
