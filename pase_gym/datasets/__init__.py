"""Reading the real data set the simulator is checked against, nothing else.

Failure-Dataset-OpenStack (GPL-3.0, not shipped) is read here:

- :mod:`~pase_gym.datasets.locate` finds its folder (``root`` argument, then
  ``$PASE_GYM_OPENSTACK_DATA``, then ``../shared/data/failure-dataset-openstack`` relative to
  the current working directory);
- :mod:`~pase_gym.datasets.files` parses and validates a campaign's files
  (:func:`load_campaign`) and aligns the three campaigns (:func:`load_all`);
- :mod:`~pase_gym.datasets.campaigns` names the campaigns and failure classes;
- :mod:`~pase_gym.datasets.campaign` and :mod:`~pase_gym.datasets.dataset` are the model: one
  campaign, and the campaigns aligned;
- :mod:`~pase_gym.datasets.splits` holds the duplicate-aware splits.

What uses the data lives elsewhere: the simulator experiments, their calibration and the
sim-to-real report in :mod:`pase_gym.fidelity`, the replay env in :mod:`pase_gym.env.replay`,
its scoring in :mod:`pase_gym.harness.replay`. This package imports neither.
"""

from __future__ import annotations

from pase_gym.datasets.campaign import Campaign, CampaignSummary, ConflictGroup
from pase_gym.datasets.campaigns import CAMPAIGNS, CLASS_NAMES
from pase_gym.datasets.dataset import Dataset, align
from pase_gym.datasets.files import load_all, load_campaign
from pase_gym.datasets.locate import ENV_VAR, find_data_root
from pase_gym.datasets.splits import group_k_fold, group_train_test_split
from pase_gym.errors import DatasetError

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
