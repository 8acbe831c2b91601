"""The Gymnasium environment and its registered ids.

Every id is generated from :data:`ENV_TABLE`; ``import pase_gym`` registers them. Entry points
are strings, so registering imports neither the simulator env nor the replay env (whose data
set is read only when it is made).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

ENTRY_POINT = "pase_gym.env.core:PaseOpenStackEnv"
"""The simulator env: every id but the replay one."""

VECTOR_ENTRY_POINT = "pase_gym.env.vector:PaseVectorEnv"
"""The native vector env of the simulator ids (``gym.make_vec(id, num_envs=N)``)."""

REPLAY_ENTRY_POINT = "pase_gym.env.replay:ReplayEnv"
"""Real rows of Failure-Dataset-OpenStack replayed on the tiny cloud (needs the data set)."""


@dataclass(frozen=True)
class EnvVariant:
    """One registered id: its name, version, what it runs and how long it may take.

    ``max_episode_steps`` ``None`` registers no ``TimeLimit`` (the env ends its episodes).
    """

    name: str
    version: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = 200
    doc: str = ""
    entry_point: str = ENTRY_POINT

    @property
    def id(self) -> str:
        """The Gymnasium id, ``PASE-<name>-v<version>``."""
        return f"PASE-{self.name}-v{self.version}"


ENV_TABLE: tuple[EnvVariant, ...] = (
    EnvVariant(
        "OpenStack",
        4,
        {"scenario": "default"},
        doc="~200-node cloud; one fault drawn from the train/test families",
    ),
    EnvVariant(
        "OpenStack-Tiny",
        4,
        {"scenario": "tiny-mix-train"},
        doc="~20-node all-in-one cloud; one fault drawn per episode (fast, for RL)",
    ),
    EnvVariant(
        "OpenStack-Train",
        4,
        {"suite": "train"},
        doc="every train-split scenario, one drawn per episode",
    ),
    EnvVariant(
        "OpenStack-Test",
        4,
        {"suite": "test"},
        doc="every test-split scenario, one drawn per episode",
    ),
    EnvVariant(
        "OpenStack-Unseen",
        4,
        {"suite": "unseen"},
        doc="the held-out families (certificate expiry, CPU-memory deadlock)",
    ),
    EnvVariant(
        "OpenStack-Replay",
        4,
        {},
        max_episode_steps=None,
        doc="real rows of Failure-Dataset-OpenStack as the tiny cloud's event stream; "
        "scores the diagnosed failure class (needs the data set)",
        entry_point=REPLAY_ENTRY_POINT,
    ),
)
ENV_IDS: tuple[str, ...] = tuple(v.id for v in ENV_TABLE)
SIM_ENV_IDS: tuple[str, ...] = tuple(v.id for v in ENV_TABLE if v.entry_point == ENTRY_POINT)
"""The ids of the simulator env (every id but the replay one, which needs the data set)."""


def register_envs() -> None:
    """Register every id of :data:`ENV_TABLE` (idempotent)."""
    for variant in ENV_TABLE:
        if variant.id in gym.registry:
            continue
        gym.register(
            id=variant.id,
            entry_point=variant.entry_point,
            kwargs=dict(variant.kwargs),
            max_episode_steps=variant.max_episode_steps,
            vector_entry_point=(VECTOR_ENTRY_POINT if variant.entry_point == ENTRY_POINT else None),
        )
