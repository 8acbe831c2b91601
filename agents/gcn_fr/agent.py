"""GCN-FR: dependency-graph reasoning. A GCN over the cloud's dependency graph classifies the
fault type and localises the root-cause node; the agent then takes ONE recovery action.

It acts, it does not plan: per incident it sends ``Diagnose(type, node); <one primitive>``,
then monitors with ``Wait(10)``. If alarms are still raised ``FOLLOW_UP_AFTER`` simulated
seconds after that action, it predicts again; only if the prediction changed (a different
fault type or node: a new reading of the incident) does it send the single action for the new
prediction. It never chains a runbook's second step: that would be planning, which is what
this baseline does not do. After that it only waits. It reads the observation only (metrics, window,
alarms, node descriptors, edges) and never the ground truth.

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
    """GCN fault-type classification + root-cause localisation, then one recovery action.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, resolved once here by
            :func:`pase_gym.devices.resolve_device` (a misspelt device, or CUDA where torch
            sees none, is a :class:`~pase_gym.errors.DeviceError`).
        weights: the checkpoint (default: ``weights.pt`` beside this file).
    """

    name = "gcn_fr"

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
            if not self.weights.is_file():
                raise FileNotFoundError(
                    f"GCN-FR weights not found at {self.weights}: run python agents/gcn_fr/train.py"
                )
            if str(self.device) == "cpu":
                import torch

                # one small graph per decision: extra threads only contend (2-core machines,
                # several harness workers)
                torch.set_num_threads(1)
            m = _model_module()
            self._model, self._types, self._mean, self._std = m.load_checkpoint(
                self.weights, self.device
            )

    def predict(self, observation: dict[str, Any], info: dict[str, Any]) -> tuple[str, str]:
        """(fault type, root-cause node name) from the observation alone."""
        import torch

        self.load()
        m = _model_module()
        graph = m.Graph.from_obs(observation)
        batch = m.collate([graph], self._mean, self._std).to(self.device)
        with torch.inference_mode():
            root_logp, logits = self._model(batch)
        t, slot = m.decode(
            root_logp.cpu().numpy(),
            logits[0].cpu().numpy(),
            self._types,
            np.asarray(observation["nodes"]),
            graph.mask,
            joint=True,
        )
        names = names_by_slot(observation, info)
        self.last_prediction = (self._types[t], names[slot])
        return self.last_prediction
