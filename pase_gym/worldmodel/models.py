"""The learned world models (torch, imported lazily by :mod:`pase_gym.worldmodel.verifier`).

Every model reads an encoded batch (:class:`~pase_gym.worldmodel.features.Batch`) and returns,
per plan, the logits of *recovered* and of *risk* (any harm or violation), the predicted
residual share of nodes breaking their SLO, and per call the predicted ΔH
(:data:`DH_DIM` numbers: the eight indicators' change at the call's target node and their
mean change over the cloud, standardised) and the logit of the call harming a node. The plan
feasibility score is eq. 5 of the paper, ``F = -(λ1 · Risk + λ2 · Severity)`` with
``Risk = P(risk)`` and ``Severity = 1 - P(recovered)`` (:data:`LAMBDA_RISK`,
:data:`LAMBDA_SEVERITY`), so ``F`` lies in [-2, 0].

* :class:`RolloutMLP` is the paper's NSWM dynamics: a scene encoder gives the latent state
  ``s_0``; a 3-layer MLP maps ``(s_k, r_k)`` to ``(s_{k+1} - s_k, ΔĤ_k)`` call by call
  (eq. 3-4, a rollout over the plan); the heads read ``s_K``. With ``symbolic=True`` each call
  also carries the symbolic flags (the NSWM); without, it is the "MLP only" row.
* :class:`RolloutLSTM`: the same rollout through an LSTM cell.
* :class:`PlanTransformer`: the scene and the calls as tokens of a 2-layer Transformer
  encoder; the heads read the scene token.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .features import CALL_DIM, N_IND, SCENE_DIM, SYMBOLIC_DIM

DH_DIM = 2 * N_IND
LAMBDA_RISK = 1.0
LAMBDA_SEVERITY = 1.0


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Heads(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.plan = _mlp([hidden, hidden, 3])

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.plan(z)
        return out[:, 0], out[:, 1], torch.sigmoid(out[:, 2])


class WorldModel(nn.Module):
    """Common interface: ``forward(scene, calls, mask) -> dict of tensors``."""

    symbolic: bool

    def call_inputs(self, calls: torch.Tensor, symbolic: torch.Tensor) -> torch.Tensor:
        return torch.cat([calls, symbolic], dim=-1) if self.symbolic else calls


class RolloutMLP(WorldModel):
    """Latent rollout with a 3-layer MLP transition (the NSWM, or "MLP only")."""

    def __init__(self, hidden: int = 64, symbolic: bool = True) -> None:
        super().__init__()
        self.symbolic = symbolic
        width = CALL_DIM + (SYMBOLIC_DIM if symbolic else 0)
        self.encoder = _mlp([SCENE_DIM, 128, hidden])
        self.call = _mlp([width, 128, hidden])
        self.dynamics = _mlp([2 * hidden, 128, 128, hidden + DH_DIM + 1])
        self.heads = _Heads(hidden)
        self.hidden = hidden

    def forward(
        self, scene: torch.Tensor, calls: torch.Tensor, symbolic: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        z = torch.tanh(self.encoder(scene))
        inputs = self.call(self.call_inputs(calls, symbolic))
        dh, harm = [], []
        for k in range(calls.shape[1]):
            out = self.dynamics(torch.cat([z, inputs[:, k]], dim=-1))
            m = mask[:, k : k + 1]
            z = z + m * torch.tanh(out[:, : self.hidden])
            dh.append(out[:, self.hidden : self.hidden + DH_DIM])
            harm.append(out[:, -1])
        rec, risk, residual = self.heads(z)
        return _pack(rec, risk, residual, dh, harm)


class RolloutLSTM(WorldModel):
    """Latent rollout through an LSTM cell."""

    def __init__(self, hidden: int = 64, symbolic: bool = False) -> None:
        super().__init__()
        self.symbolic = symbolic
        width = CALL_DIM + (SYMBOLIC_DIM if symbolic else 0)
        self.encoder = _mlp([SCENE_DIM, 128, 2 * hidden])
        self.call = _mlp([width, 128, hidden])
        self.cell = nn.LSTMCell(hidden, hidden)
        self.out = nn.Linear(hidden, DH_DIM + 1)
        self.heads = _Heads(hidden)
        self.hidden = hidden

    def forward(
        self, scene: torch.Tensor, calls: torch.Tensor, symbolic: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        h, c = torch.tanh(self.encoder(scene)).chunk(2, dim=-1)
        inputs = self.call(self.call_inputs(calls, symbolic))
        dh, harm = [], []
        for k in range(calls.shape[1]):
            h2, c2 = self.cell(inputs[:, k], (h, c))
            m = mask[:, k : k + 1]
            h = m * h2 + (1 - m) * h
            c = m * c2 + (1 - m) * c
            out = self.out(h2)
            dh.append(out[:, :DH_DIM])
            harm.append(out[:, -1])
        rec, risk, residual = self.heads(h)
        return _pack(rec, risk, residual, dh, harm)


class PlanTransformer(WorldModel):
    """The scene and the calls as tokens of a small Transformer encoder."""

    def __init__(self, hidden: int = 64, symbolic: bool = False, max_calls: int = 16) -> None:
        super().__init__()
        self.symbolic = symbolic
        width = CALL_DIM + (SYMBOLIC_DIM if symbolic else 0)
        self.scene = _mlp([SCENE_DIM, 128, hidden])
        self.call = _mlp([width, 128, hidden])
        self.position = nn.Embedding(max_calls + 1, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, nhead=4, dim_feedforward=128, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, DH_DIM + 1)
        self.heads = _Heads(hidden)

    def forward(
        self, scene: torch.Tensor, calls: torch.Tensor, symbolic: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        k = calls.shape[1]
        tokens = torch.cat(
            [self.scene(scene)[:, None], self.call(self.call_inputs(calls, symbolic))], dim=1
        )
        tokens = tokens + self.position(torch.arange(k + 1, device=scene.device))[None]
        pad = torch.cat([torch.zeros_like(mask[:, :1]), 1 - mask], dim=1) > 0.5
        encoded = self.encoder(tokens, src_key_padding_mask=pad)
        out = self.out(encoded[:, 1:])
        rec, risk, residual = self.heads(encoded[:, 0])
        return {
            "recovered": rec,
            "risk": risk,
            "residual": residual,
            "dh": out[..., :DH_DIM],
            "harm": out[..., -1],
        }


def _pack(
    rec: torch.Tensor,
    risk: torch.Tensor,
    residual: torch.Tensor,
    dh: list[torch.Tensor],
    harm: list[torch.Tensor],
) -> dict[str, torch.Tensor]:
    return {
        "recovered": rec,
        "risk": risk,
        "residual": residual,
        "dh": torch.stack(dh, dim=1),
        "harm": torch.stack(harm, dim=1),
    }


def build(architecture: str, symbolic: bool, hidden: int = 64) -> WorldModel:
    """A fresh model of ``architecture`` (``mlp``, ``lstm`` or ``transformer``)."""
    classes: dict[str, Any] = {
        "mlp": RolloutMLP,
        "lstm": RolloutLSTM,
        "transformer": PlanTransformer,
    }
    model: WorldModel = classes[architecture](hidden=hidden, symbolic=symbolic)
    return model


def feasibility(out: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 5 from a model's outputs: ``-(λ1 · P(risk) + λ2 · (1 - P(recovered)))``."""
    risk = torch.sigmoid(out["risk"])
    severity = 1.0 - torch.sigmoid(out["recovered"])
    return -(LAMBDA_RISK * risk + LAMBDA_SEVERITY * severity)
