"""Training the world models on the collected data set, and the numbers they are judged by.

Losses (all per plan, averaged): binary cross-entropy of *recovered* and of *risk* (harm or a
violation), squared error of the residual share of nodes breaking their SLO, and per real call
the squared error of the standardised ΔH (each of the :data:`~.models.DH_DIM` numbers divided
by its standard deviation over the training calls, after its mean is taken off) and the
cross-entropy of the call harming a node. Adam, seeded; episode seeds with ``seed % 5 == 4``
are the validation set that picks the best epoch (by feasibility AUC, the violation veto
applied for the models that fuse) and the NSWM's harm penalty (:func:`choose_harm_penalty`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from pase_gym.errors import WorldModelError
from pase_gym.stats import ranking_auc

from .features import CALL_DIM, N_IND, SCENE_DIM, SYMBOLIC_DIM, Batch
from .verifier import fuse

logger = logging.getLogger(__name__)

VALIDATION_EVERY = 5
VARIANTS = ("mlp", "nswm", "lstm", "transformer", "ensemble")
"""Trained rows of the comparison: (architecture, symbolic inputs and fusion, members)."""
VARIANT_SPEC: dict[str, tuple[str, bool, int]] = {
    "mlp": ("mlp", False, 1),
    "nswm": ("mlp", True, 1),
    "lstm": ("lstm", False, 1),
    "transformer": ("transformer", False, 1),
    "ensemble": ("mlp", True, 3),
}


@dataclass
class Arrays:
    """A data set as padded arrays: the encoded batch and its targets."""

    batch: Batch
    good: np.ndarray
    recovered: np.ndarray
    risk: np.ndarray
    residual: np.ndarray
    dh: np.ndarray  # (B, K, DH_DIM), raw
    call_harm: np.ndarray  # (B, K)
    seed: np.ndarray
    scenario: np.ndarray

    def __len__(self) -> int:
        return len(self.good)

    def take(self, index: np.ndarray) -> Arrays:
        b = self.batch
        return Arrays(
            Batch(b.scene[index], b.calls[index], b.symbolic[index], b.mask[index]),
            self.good[index],
            self.recovered[index],
            self.risk[index],
            self.residual[index],
            self.dh[index],
            self.call_harm[index],
            self.seed[index],
            self.scenario[index],
        )


def arrays_of(frame: Any) -> Arrays:
    """Pad a data set frame (:func:`~.collect.read`) into :class:`Arrays`."""
    n = len(frame)
    if n == 0:
        raise WorldModelError("the data set has no rows")
    k = max(1, int(frame["n_calls"].max()))
    scene = np.stack(frame["scene"].to_numpy()).astype(np.float32)
    if scene.shape[1] != SCENE_DIM:
        raise WorldModelError(f"scene: expected {SCENE_DIM} features, found {scene.shape[1]}")
    calls = np.zeros((n, k, CALL_DIM), np.float32)
    symbolic = np.zeros((n, k, SYMBOLIC_DIM), np.float32)
    mask = np.zeros((n, k), np.float32)
    dh = np.zeros((n, k, 2 * N_IND), np.float32)
    call_harm = np.zeros((n, k), np.float32)
    for i, row in enumerate(frame.itertuples(index=False)):
        m = int(row.n_calls)
        if m == 0:
            continue
        calls[i, :m] = np.asarray(row.calls, np.float32).reshape(m, CALL_DIM)
        symbolic[i, :m] = np.asarray(row.symbolic, np.float32).reshape(m, SYMBOLIC_DIM)
        mask[i, :m] = 1.0
        dh[i, :m, :N_IND] = np.asarray(row.dh_target, np.float32).reshape(m, N_IND)
        dh[i, :m, N_IND:] = np.asarray(row.dh_mean, np.float32).reshape(m, N_IND)
        call_harm[i, :m] = np.asarray(row.call_harmed, np.float32) > 0
    risk = (frame["harm"].to_numpy() > 0) | (frame["violations"].to_numpy() > 0)
    return Arrays(
        Batch(scene, calls, symbolic, mask),
        frame["good"].to_numpy().astype(bool),
        frame["recovered"].to_numpy().astype(np.float32),
        risk.astype(np.float32),
        frame["residual"].to_numpy().astype(np.float32),
        dh,
        call_harm,
        frame["seed"].to_numpy().astype(np.int64),
        frame["scenario"].to_numpy().astype(str),
    )


def dh_stats(data: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each ΔH target over the real calls."""
    real = data.dh[data.batch.mask > 0]
    mean = real.mean(axis=0)
    std = np.maximum(real.std(axis=0), 1e-4)
    return mean.astype(np.float32), std.astype(np.float32)


def dh_mse(pred: np.ndarray, data: Arrays, mean: np.ndarray, std: np.ndarray) -> float:
    """Mean squared error of the standardised ΔH over the real calls (0 is exact; predicting
    the training mean scores about 1)."""
    m = data.batch.mask > 0
    target = (data.dh - mean) / std
    k = min(pred.shape[1], target.shape[1])
    err = (pred[:, :k] - target[:, :k])[m[:, :k]]
    return float((err**2).mean()) if err.size else float("nan")


HARM_PENALTIES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
"""The harm penalties the NSWM's fusion is chosen from (on the validation episodes)."""


def choose_harm_penalty(f_net: np.ndarray, val: Arrays) -> float:
    """The penalty of :data:`HARM_PENALTIES` with the best validation AUC (the smallest on a
    tie)."""
    aucs = [ranking_auc(val.good, fuse(f_net, val.batch, p)) for p in HARM_PENALTIES]
    return float(HARM_PENALTIES[int(np.nanargmax(aucs))])


def fit(
    data: Arrays,
    architecture: str,
    symbolic: bool,
    *,
    seed: int = 0,
    epochs: int = 40,
    hidden: int = 64,
    batch_size: int = 256,
    lr: float = 1e-3,
    device: str = "cpu",
    progress: bool = True,
    label: str = "",
) -> tuple[Any, dict[str, Any]]:
    """Train one model; returns it (best validation epoch) and its training record."""
    import torch
    from torch.nn import functional

    from .models import build, feasibility

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    val = data.seed % VALIDATION_EVERY == VALIDATION_EVERY - 1
    train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)
    if train_idx.size == 0 or val_idx.size == 0:
        raise WorldModelError(
            "the data set needs episodes on both sides of the validation rule "
            f"(seed % {VALIDATION_EVERY} == {VALIDATION_EVERY - 1}): collect more episodes"
        )
    mean, std = dh_stats(data.take(train_idx))
    model = build(architecture, symbolic, hidden).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)

    def tensors(part: Arrays) -> list[Any]:
        b = part.batch
        arrays = [b.scene, b.calls, b.symbolic, b.mask, part.recovered, part.risk]
        arrays += [part.residual, (part.dh - mean) / std, part.call_harm]
        return [torch.as_tensor(a, device=device) for a in arrays]

    train_t = tensors(data.take(train_idx))
    val_part = data.take(val_idx)
    val_t = tensors(val_part)
    best: tuple[float, dict[str, Any]] | None = None
    history = []
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=f"train {label or architecture}", disable=not progress)
    for epoch in bar:
        model.train()
        order = rng.permutation(train_idx.size)
        total = 0.0
        for s in range(0, order.size, batch_size):
            idx = torch.as_tensor(order[s : s + batch_size], device=device)
            scene, calls, sym, mask, rec, risk, residual, dh, harm = (t[idx] for t in train_t)
            out = model(scene, calls, sym, mask)
            loss = functional.binary_cross_entropy_with_logits(out["recovered"], rec)
            loss = loss + functional.binary_cross_entropy_with_logits(out["risk"], risk)
            loss = loss + functional.mse_loss(out["residual"], residual)
            m = mask[:, : out["dh"].shape[1]]
            denom = m.sum().clamp(min=1.0)
            dh_err = ((out["dh"] - dh[:, : out["dh"].shape[1]]) ** 2).mean(dim=-1)
            loss = loss + 0.5 * (dh_err * m).sum() / denom
            harm_loss = functional.binary_cross_entropy_with_logits(
                out["harm"], harm[:, : out["harm"].shape[1]], reduction="none"
            )
            loss = loss + 0.5 * (harm_loss * m).sum() / denom
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * idx.numel()
        model.eval()
        with torch.inference_mode():
            scores = feasibility(model(*val_t[:4])).cpu().numpy()
        if symbolic:
            scores = fuse(scores, val_part.batch, 0.0)
        auc = ranking_auc(val_part.good, scores)
        history.append({"epoch": epoch + 1, "loss": total / train_idx.size, "val_auc": auc})
        bar.set_postfix(loss=f"{total / train_idx.size:.3f}", val_auc=f"{auc:.3f}")
        if best is None or auc > best[0]:
            best = (auc, {k: v.detach().clone() for k, v in model.state_dict().items()})
    assert best is not None
    model.load_state_dict(best[1])
    model.eval()
    harm_penalty = 0.0
    if symbolic:
        with torch.inference_mode():
            f_net = feasibility(model(*val_t[:4])).cpu().numpy()
        harm_penalty = choose_harm_penalty(f_net, val_part)
    record = {
        "harm_penalty": harm_penalty,
        "seconds": round(time.perf_counter() - start, 1),
        "epochs": epochs,
        "best_val_auc": round(best[0], 4),
        "train_plans": int(train_idx.size),
        "val_plans": int(val_idx.size),
        "dh_mean": mean.tolist(),
        "dh_std": std.tolist(),
        "history": history,
    }
    return model, record
