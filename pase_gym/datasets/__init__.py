"""Real-world data sets that the simulator is calibrated and checked against.

:mod:`pase_gym.datasets.openstack` loads Failure-Dataset-OpenStack (GPL-3.0, not shipped; see
:func:`find_data_root` for where it is looked for).
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
