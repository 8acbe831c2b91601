"""Deformable DETR-FD: time-series anomaly detection as set prediction. A DETR-style decoder
with deformable attention over the (time x nodes) metric map predicts a small set of
(fault type, root node) objects; the agent takes the most confident one and then ONE recovery
action.

It acts, it does not plan: per incident it sends ``Diagnose(type, node); <one primitive>``,
then monitors with ``Wait(10)``. If alarms are still raised ``FOLLOW_UP_AFTER`` simulated
seconds after that action, it predicts again; only if the prediction changed (a different
fault type or node: a new reading of the incident) does it send the single action for the new
prediction. It never chains a runbook's second step. After that it only waits. The action is
the catalogue runbook's first step, aimed by :mod:`pase_gym.harness.one_action` (shared with
GCN-FR). It reads the observation only (metrics, window, alarms, node descriptors, node mask,
and the edges for aiming a host action) and never the ground truth.

The weights are trained on the train split by ``train.py`` in this folder and shipped beside
this file (``weights.pt``); they are loaded on the first decision. The classifier knows the
16 train/test fault types only: the unseen families (certificate expiry, the CPU-memory
deadlock) are always diagnosed as one of those.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.devices import resolve_device
from pase_gym.harness.agent import sibling
from pase_gym.harness.one_action import ActOnce, names_by_slot

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.pt"


def _model_module() -> Any:
    """``model.py`` of this folder, imported under a private name (agents are not a package)."""
    return sibling(HERE, "model")


class Agent(ActOnce):
    """Deformable DETR fault-set prediction over the metric time series, then one recovery
    action per incident.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, resolved once here by
            :func:`pase_gym.devices.resolve_device` (a misspelt device, or CUDA where torch
            sees none, is a :class:`~pase_gym.errors.DeviceError`).
        weights: the checkpoint (default: ``weights.pt`` beside this file). A missing or
            unloadable file raises ``WeightsNotFoundError`` / ``WeightsError`` (from
            ``model.py``) on the first decision, naming the path and the training command.
    """

    name = "detr_fd"

    def __init__(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        self.device = resolve_device(device)
        self.weights = Path(weights) if weights is not None else WEIGHTS
        self._model: Any = None
        self._types: list[str] = []
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self.reset(0)

    # -- inference ---------------------------------------------------------------------------
    def load(self) -> None:
        """Load the weights (done on the first decision)."""
        if self._model is None:
            m = _model_module()
            if str(self.device) == "cpu":
                import torch

                # one small map per decision: extra threads only contend (2-core machines,
                # several harness workers)
                torch.set_num_threads(1)
            self._model, self._types, self._mean, self._std = m.load_checkpoint(
                self.weights, self.device
            )

    def predict(self, observation: dict[str, Any], info: dict[str, Any]) -> tuple[str, str]:
        """(fault type, root-cause node name) from the observation alone."""
        import torch

        self.load()
        m = _model_module()
        series = m.Series.from_obs(observation)
        batch = m.collate([series], self._mean, self._std).to(self.device)
        with torch.inference_mode():
            out = self._model(batch)
        t, slot, _ = m.decode(
            out.type_logits[0].cpu().numpy(),
            out.node_logp[0].cpu().numpy(),
            self._types,
            series.nodes,
            series.mask,
            joint=True,
        )
        names = names_by_slot(observation, info)
        self.last_prediction = (self._types[t], names[slot])
        return self.last_prediction
