"""Plan verifiers: PASE's Neural-Symbolic World Model and the models it is compared with.

A verifier scores candidate recovery plans before they run, from what the agent sees:
``score(observations, plans) -> F`` (higher is better), where each observation is a
:class:`~pase_gym.worldmodel.view.Seen` (the env's observation and its rows' names).
torch is needed by the learned verifiers only and is imported lazily.
"""

from __future__ import annotations

from .view import Seen

__all__ = ["Seen"]
