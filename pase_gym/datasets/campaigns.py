"""The campaigns and failure classes of Failure-Dataset-OpenStack, and their names.

A campaign is named ``DEPL``, ``NET`` or ``STO`` (any case) or by the simulator's workload
profile of the same focus (``deployment``, ``network``, ``storage``). The correspondence is the
simulator's own (:data:`pase_gym.sim.roles.PROFILE_ALIASES`, resolved by
:func:`pase_gym.sim.workload.resolve_profile`), so a campaign and its workload profile cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from pase_gym.errors import DatasetError, TopologyError
from pase_gym.sim.roles import PROFILE_ALIASES
from pase_gym.sim.workload import resolve_profile

CAMPAIGNS: tuple[str, ...] = ("DEPL", "NET", "STO")
"""The three campaigns, in the order :func:`load_all` stacks them."""

CAMPAIGN_WORKLOADS: dict[str, str] = {c: PROFILE_ALIASES[c] for c in CAMPAIGNS}
"""Campaign -> the simulator's workload profile of the same focus (also accepted as a name)."""

CLASS_NAMES: tuple[str, ...] = (
    "instance_failure",
    "volume_failure",
    "ssh_failure",
    "cleanup_failure",
    "network_failure",
    "no_failure",
)
"""Every failure class of the data set, in a fixed order (used for strata and tie-breaks)."""

DEFAULT_LABEL_MAP: dict[str, dict[int, str]] = {
    "DEPL": {
        1: "instance_failure",
        2: "volume_failure",
        3: "ssh_failure",
        4: "cleanup_failure",
        5: "network_failure",
        6: "no_failure",
    },
    "NET": {1: "instance_failure", 2: "network_failure", 3: "ssh_failure", 4: "no_failure"},
    "STO": {1: "volume_failure", 2: "instance_failure", 3: "cleanup_failure", 4: "no_failure"},
}
"""Numeric label -> class per campaign, from the upstream README; used when the data root has
no ``label_map.json`` (an upstream clone has none)."""


def campaign_name(name: str) -> str:
    """Return the campaign ``name`` stands for: ``DEPL``, ``NET`` or ``STO``.

    Args:
        name: a campaign (any case) or its workload profile (``deployment``, ``network``,
            ``storage``, any case); surrounding spaces are ignored.

    Returns:
        The campaign's upper-case name.

    Raises:
        DatasetError: ``name`` is neither; the message lists both spellings of each campaign.
    """
    key = str(name).strip()
    alias = key.upper() if key.upper() in PROFILE_ALIASES else key.lower()
    try:
        profile = resolve_profile(alias)
    except TopologyError:
        profile = None
    for campaign, workload in CAMPAIGN_WORKLOADS.items():
        if workload == profile:
            return campaign
    choices = ", ".join(f"{c} ({w})" for c, w in CAMPAIGN_WORKLOADS.items())
    raise DatasetError(f"unknown campaign: expected one of {choices}, found {name!r}")


def parse_campaigns(campaigns: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"all"``/``None``, one name, a comma-separated list or a sequence -> campaign names.

    Raises:
        DatasetError: an unknown or repeated campaign.
    """
    if campaigns is None or (isinstance(campaigns, str) and campaigns.strip().lower() == "all"):
        return CAMPAIGNS
    items = campaigns.split(",") if isinstance(campaigns, str) else list(campaigns)
    names = tuple(campaign_name(str(c)) for c in items if str(c).strip())
    if not names or len(set(names)) != len(names):
        raise DatasetError(
            f"expected 'all' or distinct campaigns among {', '.join(CAMPAIGNS)}, "
            f"found {campaigns!r}"
        )
    return tuple(c for c in CAMPAIGNS if c in names)
