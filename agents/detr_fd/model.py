"""Deformable DETR-FD's model: a set predictor of faults over the metric time series.

Everything the model sees comes from the env's observation (no ground truth):

* **the series** (:class:`Series`): the metric ``window`` (oldest row first, zero rows where
  empty) followed by the current ``metrics``, a (time x node slots x 8) grid. Latency is read
  as ``log1p``; the eight columns are z-scored with the training set's statistics (stored in
  the checkpoint) and a ninth channel says whether the row is filled;
* **per node** descriptors: the seven alarm flags and the 29 columns of ``nodes`` (role
  one-hot, provisioned, in service, is a process);
* ``node_mask``: the provisioned slots. The others (padding, inactive spares) are zeroed
  everywhere and can never be pointed at. Any number of slots works: a batch is padded to its
  widest observation and masked.

The network (:class:`DeformableDETRFD`):

1. an **encoder** per node over time: an input projection, a descriptor embedding, a
   time-from-now embedding, then temporal-convolution blocks, each also adding the mean over
   the provisioned nodes (the cloud's context) at every time step. Its output is a feature map
   over (time x nodes), and a per-node **memory** (current row + mean over time);
2. an **anomaly-score head** on the memory (a softmax over the provisioned slots). As in
   two-stage Deformable DETR, its top-k nodes are the reference points of the k object
   queries (reference time: the current row), and each query's content is its learned
   embedding plus the projected memory of its reference node;
3. **decoder layers**: self-attention among the queries, **deformable cross-attention** (per
   head, the query predicts K sampling offsets (time, node) around its reference point and K
   attention weights; the value map is sampled bilinearly there with ``grid_sample``) and an
   FFN, post-norm as in DETR;
4. per query: **fault-type logits** over the train-split types plus "no object", and a
   **pointer** over the provisioned slots (scaled dot product of the query with the node
   memory; padding gets ``-inf``).

Training matches the predicted set to the ground-truth faults with the Hungarian algorithm
(:func:`match`, :func:`set_loss`). Decoding (:func:`decode`) takes the most confident query
and the most probable type-consistent (type, node) pair of it. Plain torch plus scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual spelling)
from scipy.optimize import linear_sum_assignment
from torch import nn

from pase_gym.errors import PaseGymError
from pase_gym.sim.faults import FAULTS
from pase_gym.sim.roles import ROLE_NAMES, ROLES, Kind

N_METRICS = 8
LATENCY = 4  # column of the latency indicator (seconds; heavy-tailed, read as log1p)
N_ALARMS = 7
N_ROLES = len(ROLE_NAMES)
N_DESCRIPTORS = N_ROLES + 3  # role one-hot, provisioned, in service, is a process
N_STEP = N_METRICS + 1  # per time step: z-scored metrics and "the row is filled"
N_STATIC = N_ALARMS + N_DESCRIPTORS  # per node: alarms and descriptors
MAX_STEPS = 16  # rows of the time-from-now embedding (the env's window has 4, plus now)
TRAIN_COMMAND = "python agents/detr_fd/train.py"
FORMAT = "detr_fd/1"


class WeightsError(PaseGymError, RuntimeError):
    """The DETR-FD weights file cannot be loaded (corrupt, foreign or another version)."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """The DETR-FD weights file does not exist."""


# -- features ----------------------------------------------------------------------------------
def _transform(metrics: np.ndarray) -> np.ndarray:
    out = np.asarray(metrics, dtype=np.float32).copy()
    out[..., LATENCY] = np.log1p(np.maximum(out[..., LATENCY], 0.0))
    return out


@dataclass
class Series:
    """One observation as the model's input (numpy, not normalised)."""

    x: np.ndarray  # (N, T, N_METRICS) transformed metrics, oldest row first, zero where empty
    filled: np.ndarray  # (N, T) bool: the row holds a reading
    static: np.ndarray  # (N, N_STATIC) alarms then node descriptors
    mask: np.ndarray  # (N,) bool: provisioned slots (the only root candidates)

    @classmethod
    def from_obs(cls, obs: dict[str, Any]) -> Series:
        mask = np.asarray(obs["node_mask"], np.float32) > 0
        rows = np.concatenate(
            [np.asarray(obs["window"], np.float32), np.asarray(obs["metrics"], np.float32)[None]]
        )  # (T, N, 8)
        filled = rows.any(axis=2).T & mask[:, None]
        filled[:, -1] = mask  # the current row is always a reading
        x = _transform(rows).transpose(1, 0, 2) * filled[:, :, None]
        static = np.concatenate(
            [np.asarray(obs["alarms"], np.float32), np.asarray(obs["nodes"], np.float32)], axis=1
        )
        if static.shape[1] != N_STATIC:
            raise ValueError(f"expected {N_STATIC} alarm and node columns, found {static.shape[1]}")
        static = static * mask[:, None]
        return cls(np.ascontiguousarray(x, np.float32), filled, static.astype(np.float32), mask)

    @property
    def nodes(self) -> np.ndarray:
        """(N, N_DESCRIPTORS) the observation's node descriptors (zero on unprovisioned slots)."""
        return self.static[:, N_ALARMS:]


@dataclass
class Batch:
    """Series padded to the widest one (torch)."""

    x: torch.Tensor  # (B, N, T, N_STEP) normalised metrics and the filled flag
    static: torch.Tensor  # (B, N, N_STATIC)
    mask: torch.Tensor  # (B, N) bool

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.x.to(device), self.static.to(device), self.mask.to(device))


def feature_stats(series: Sequence[Series]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the eight transformed metrics over the filled rows of provisioned slots."""
    rows = np.concatenate([s.x[s.filled] for s in series]).astype(np.float64)
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def collate(series: Sequence[Series], mean: np.ndarray, std: np.ndarray) -> Batch:
    """Pad to the widest series (zeros, masked) and z-score the metrics (empty rows stay 0)."""
    if not series:
        raise ValueError("collate needs at least one series")
    steps = {s.x.shape[1] for s in series}
    if len(steps) != 1:
        raise ValueError(f"series of different lengths in one batch: {sorted(steps)}")
    t = steps.pop()
    n = max(s.x.shape[0] for s in series)
    x = np.zeros((len(series), n, t, N_STEP), np.float32)
    static = np.zeros((len(series), n, N_STATIC), np.float32)
    mask = np.zeros((len(series), n), bool)
    for i, s in enumerate(series):
        k = s.x.shape[0]
        x[i, :k, :, :N_METRICS] = (s.x - mean) / std * s.filled[:, :, None]
        x[i, :k, :, N_METRICS] = s.filled
        static[i, :k] = s.static
        mask[i, :k] = s.mask
    return Batch(torch.from_numpy(x), torch.from_numpy(static), torch.from_numpy(mask))


# -- deformable sampling -----------------------------------------------------------------------
def sample(value: torch.Tensor, t: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a (time x nodes) map at fractional cell coordinates.

    Args:
        value: (B, C, T, N) feature map (rows: time, columns: node slots).
        t, n: (B, Q, P) time and node coordinates in cell units (``t = 2`` is row 2).

    Returns:
        (B, C, Q, P). A point outside the map reads zeros beyond the border
        (``padding_mode="zeros"``); an exact cell centre reads that cell.
    """
    steps, width = value.shape[-2], value.shape[-1]
    # align_corners=True: -1 and +1 are the centres of the first and last cells
    gx = 2.0 * n / max(width - 1, 1) - 1.0
    gy = 2.0 * t / max(steps - 1, 1) - 1.0
    grid = torch.stack([gx, gy], dim=-1)  # grid_sample reads (x = width, y = height)
    return F.grid_sample(value, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class DeformableAttention(nn.Module):
    """Each query attends to ``points`` sampled locations per head around its reference point.

    The value projection has no bias, so it commutes with bilinear sampling: the map itself is
    sampled (H x Q x P points per example) and each head's slice of the projection is applied
    to its samples, instead of projecting every (time, node) cell first. The result is the
    same, and padding (zero in the map) still reads zero."""

    def __init__(self, dim: int, heads: int = 4, points: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads, self.points, self.head_dim = heads, points, dim // heads
        self.offsets = nn.Linear(dim, heads * points * 2)
        self.weights = nn.Linear(dim, heads * points)
        self.value = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self._init_offsets()

    def _init_offsets(self) -> None:
        """Start from a fixed pattern: each head looks back over the window at one node offset
        (0, +1, -1, +2, ...), its points spread over time (Deformable DETR starts from a grid)."""
        nn.init.zeros_(self.offsets.weight)
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)
        bias = torch.zeros(self.heads, self.points, 2)
        for h in range(self.heads):
            node = (h + 1) // 2 * (1 if h % 2 else -1)
            for p in range(self.points):
                bias[h, p, 0] = -float(p)  # rows back from the reference time
                bias[h, p, 1] = float(node)
        with torch.no_grad():
            self.offsets.bias.copy_(bias.flatten())

    def forward(
        self,
        query: torch.Tensor,
        feat: torch.Tensor,
        ref_t: torch.Tensor,
        ref_n: torch.Tensor,
    ) -> torch.Tensor:
        """``query`` (B, Q, D); ``feat`` (B, D, T, N), zero on padding; ``ref_t``, ``ref_n``
        (B, Q) in cell units. Returns (B, Q, D)."""
        b, d = feat.shape[:2]
        q = query.shape[1]
        h, p, hd = self.heads, self.points, self.head_dim
        off = self.offsets(query).view(b, q, h, p, 2).transpose(1, 2)  # (B, H, Q, P, 2)
        st = (ref_t[:, None, :, None] + off[..., 0]).reshape(b, h * q, p)
        sn = (ref_n[:, None, :, None] + off[..., 1]).reshape(b, h * q, p)
        got = sample(feat, st, sn).view(b, d, h, q, p)
        w = torch.softmax(self.weights(query).view(b, q, h, p), dim=-1)  # (B, Q, H, P)
        mixed = torch.einsum("bdhqp,bqhp->bhqd", got, w)  # (B, H, Q, D)
        heads = self.value.weight.view(h, hd, d)  # each head's rows of the projection
        value = torch.einsum("bhqd,hed->bqhe", mixed, heads).reshape(b, q, d)
        return self.out(value)


# -- the network -------------------------------------------------------------------------------
def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the last axis where ``mask`` holds; ``-inf`` elsewhere."""
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)


class TemporalBlock(nn.Module):
    """``h <- norm(h + relu(conv_t(h) + W ctx_t))`` with ``ctx_t`` the mean over provisioned
    nodes at time ``t``; padding stays zero.

    ``conv_t`` is a width-3 convolution over time written as one linear map of the rows
    ``(t - 1, t, t + 1)`` side by side (zeros beyond the ends): on five rows this is several
    times faster on a CPU than ``nn.Conv1d``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Linear(3 * dim, dim)
        self.context = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padded = F.pad(h, (0, 0, 1, 1))  # (B, N, T + 2, D)
        c = self.conv(torch.cat([padded[:, :, :-2], h, padded[:, :, 2:]], dim=-1))
        m = mask[:, :, None, None].to(h.dtype)
        ctx = (h * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, T, D)
        return self.norm(h + torch.relu(c + self.context(ctx)[:, None])) * m


class DecoderLayer(nn.Module):
    """Self-attention among the queries, deformable cross-attention, FFN (post-norm)."""

    def __init__(self, dim: int, heads: int, points: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross = DeformableAttention(dim, heads, points)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, dim)
        )
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        tgt: torch.Tensor,
        pos: torch.Tensor,
        feat: torch.Tensor,
        ref_t: torch.Tensor,
        ref_n: torch.Tensor,
    ) -> torch.Tensor:
        qk = tgt + pos
        attended, _ = self.self_attn(qk, qk, tgt, need_weights=False)
        tgt = self.norm1(tgt + self.drop(attended))
        tgt = self.norm2(tgt + self.drop(self.cross(tgt + pos, feat, ref_t, ref_n)))
        return self.norm3(tgt + self.drop(self.ffn(tgt)))


@dataclass
class Output:
    """What the network predicts for a batch."""

    type_logits: torch.Tensor  # (B, Q, C + 1): the train-split types, then "no object"
    node_logp: torch.Tensor  # (B, Q, N) pointer log-probabilities, -inf off the mask
    anomaly_logp: torch.Tensor  # (B, N) anomaly-score log-probabilities, -inf off the mask
    reference: torch.Tensor  # (B, Q) the reference node slot of each query


class DeformableDETRFD(nn.Module):
    """Fault-set prediction over the (time x nodes) metric map with deformable attention."""

    def __init__(
        self,
        n_types: int,
        dim: int = 64,
        queries: int = 8,
        heads: int = 4,
        points: int = 4,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        ffn: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.config = {
            "n_types": n_types,
            "dim": dim,
            "queries": queries,
            "heads": heads,
            "points": points,
            "encoder_layers": encoder_layers,
            "decoder_layers": decoder_layers,
            "ffn": ffn,
            "dropout": dropout,
        }
        self.n_types, self.queries = n_types, queries
        self.inp = nn.Linear(N_STEP, dim)
        self.describe = nn.Sequential(nn.Linear(N_STATIC, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.when = nn.Embedding(MAX_STEPS, dim)  # row 0 = now, 1 = one row back, ...
        self.encoder = nn.ModuleList(TemporalBlock(dim) for _ in range(encoder_layers))
        self.memory = nn.Sequential(nn.Linear(2 * dim, dim), nn.LayerNorm(dim))
        self.anomaly = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.query_content = nn.Embedding(queries, dim)
        self.query_pos = nn.Embedding(queries, dim)
        self.ref_proj = nn.Linear(dim, dim)
        self.decoder = nn.ModuleList(
            DecoderLayer(dim, heads, points, ffn, dropout) for _ in range(decoder_layers)
        )
        self.type_head = nn.Linear(dim, n_types + 1)
        self.pointer_query = nn.Linear(dim, dim)
        self.pointer_key = nn.Linear(dim, dim)

    def encode(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(feature map (B, N, T, D), node memory (B, N, D)), zero on padding."""
        steps = b.x.shape[2]
        if steps > MAX_STEPS:
            raise ValueError(f"at most {MAX_STEPS} time rows, found {steps}")
        m = b.mask[:, :, None, None].to(b.x.dtype)
        back = torch.arange(steps - 1, -1, -1, device=b.x.device)
        h = self.inp(b.x) + self.describe(b.static)[:, :, None] + self.when(back)
        h = h * m
        for block in self.encoder:
            h = block(h, b.mask)
        memory = self.memory(torch.cat([h[:, :, -1], h.mean(dim=2)], dim=-1)) * m[:, :, 0]
        return h, memory

    def forward(self, b: Batch) -> Output:
        feat, memory = self.encode(b)
        bsz, n, steps, _ = feat.shape
        anomaly_logp = masked_log_softmax(self.anomaly(memory).squeeze(-1), b.mask)
        k = min(self.queries, n)
        # two-stage: the top-k anomalous slots are the queries' reference points (not a
        # gradient path: the anomaly head learns from its own loss)
        reference = anomaly_logp.detach().topk(k, dim=-1).indices  # (B, k)
        picked = memory.gather(1, reference[:, :, None].expand(-1, -1, memory.shape[-1]))
        tgt = self.query_content.weight[:k] + self.ref_proj(picked)
        pos = self.query_pos.weight[:k].expand(bsz, -1, -1)
        ref_t = torch.full((bsz, k), float(steps - 1), device=feat.device, dtype=feat.dtype)
        ref_n = reference.to(feat.dtype)
        value_map = feat.permute(0, 3, 2, 1)  # (B, D, T, N): rows time, columns nodes
        for layer in self.decoder:
            tgt = layer(tgt, pos, value_map, ref_t, ref_n)
        keys = self.pointer_key(memory)
        scores = torch.einsum("bqd,bnd->bqn", self.pointer_query(tgt), keys)
        node_logp = masked_log_softmax(scores / math.sqrt(keys.shape[-1]), b.mask[:, None, :])
        return Output(self.type_head(tgt), node_logp, anomaly_logp, reference)


# -- Hungarian matching and the set loss -------------------------------------------------------
Target = Sequence[tuple[int, int]]  # (type index, slot) of each ground-truth fault


def match(type_prob: np.ndarray, node_prob: np.ndarray, target: Target) -> list[tuple[int, int]]:
    """(query, target) pairs minimising the total cost ``-p(type) - p(node)``.

    ``type_prob`` (Q, C + 1) and ``node_prob`` (Q, N) are one example's probabilities. Each
    target gets a distinct query (all of them when there are at least as many queries).
    """
    if not len(target):
        return []
    types = [t for t, _ in target]
    slots = [s for _, s in target]
    cost = -np.asarray(type_prob)[:, types] - np.asarray(node_prob)[:, slots]  # (Q, G)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]


def set_loss(
    out: Output,
    targets: Sequence[Target],
    no_object_weight: float = 0.1,
    anomaly_weight: float = 0.5,
) -> tuple[torch.Tensor, list[list[tuple[int, int]]]]:
    """DETR's loss: type cross-entropy of every query (matched queries to their fault's type,
    the others to "no object", weighted ``no_object_weight``), the pointer NLL of the matched
    queries, and the anomaly head's NLL of the root slots. Returns (loss, the matches)."""
    logits, node_logp = out.type_logits, out.node_logp
    bsz, q, classes = logits.shape
    no_object = classes - 1
    with torch.no_grad():
        type_prob = torch.softmax(logits, dim=-1).cpu().numpy()
        node_prob = node_logp.exp().cpu().numpy()
    matches = [match(type_prob[i], node_prob[i], targets[i]) for i in range(bsz)]
    labels = torch.full((bsz, q), no_object, dtype=torch.long)
    bi, qi, si, ri, rs = [], [], [], [], []
    for i, (pairs, target) in enumerate(zip(matches, targets, strict=True)):
        for query, g in pairs:
            labels[i, query] = target[g][0]
            bi.append(i)
            qi.append(query)
            si.append(target[g][1])
        for _, slot in target:
            ri.append(i)
            rs.append(slot)
    dev = logits.device
    weight = torch.ones(classes, device=dev)
    weight[no_object] = no_object_weight
    loss = F.cross_entropy(logits.reshape(-1, classes), labels.to(dev).flatten(), weight=weight)
    if bi:
        b_, q_, s_ = (torch.tensor(v, device=dev) for v in (bi, qi, si))
        loss = loss - node_logp[b_, q_, s_].mean()
        r_, rslot = torch.tensor(ri, device=dev), torch.tensor(rs, device=dev)
        loss = loss - anomaly_weight * out.anomaly_logp[r_, rslot].mean()
    return loss, matches


# -- decoding ----------------------------------------------------------------------------------
_ROLE_KIND = np.array([int(ROLES[r].kind) for r in ROLE_NAMES])
_ROLE_SCALABLE = np.array([ROLES[r].scalable for r in ROLE_NAMES])
_ROLE_TLS = np.array([ROLES[r].tls for r in ROLE_NAMES])
_COMPUTE = ROLE_NAMES.index("compute")


def eligible_slots(nodes: np.ndarray, mask: np.ndarray, fault_type: str) -> np.ndarray:
    """(N,) bool: provisioned slots a fault of ``fault_type`` could strike, read from the node
    descriptors (role one-hot, is a process) and the public catalogue's target kind."""
    nodes = np.asarray(nodes)
    has_role = nodes[:, :N_ROLES].any(axis=1)
    role = np.argmax(nodes[:, :N_ROLES], axis=1)
    kind = _ROLE_KIND[role]
    process = nodes[:, N_ROLES + 2] > 0
    service = kind == Kind.SERVICE
    by_target = {
        "service": service & process,
        "host": kind == Kind.HOST,
        "disk_host": kind == Kind.HOST,
        "compute_host": role == _COMPUTE,
        "instance": kind == Kind.INSTANCE,
        "queue": kind == Kind.QUEUE,
        "database": kind == Kind.DATABASE,
        "replicated_service": service & _ROLE_SCALABLE[role],
        "tls_service": service & _ROLE_TLS[role],
    }
    ok = by_target.get(FAULTS[fault_type].target, np.ones(len(role), bool))
    return ok & has_role & (np.asarray(mask) > 0)


def decode(
    type_logits: np.ndarray,
    node_logp: np.ndarray,
    fault_types: Sequence[str],
    nodes: np.ndarray,
    mask: np.ndarray,
    joint: bool = True,
) -> tuple[int, int, int]:
    """(fault-type index, root slot, query) of one example.

    The query is the one with the highest object confidence ``1 - p(no object)``. Its type
    distribution is renormalised over the real types. ``joint=False``: the argmax of each of
    its heads. ``joint=True``: the most probable *consistent* pair ``argmax log p(type) +
    log p(node)`` over the slots the type can strike (the plain argmax when none can).
    """
    z = np.asarray(type_logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    query = int(np.argmax(1.0 - prob[:, -1]))
    p_type = prob[query, :-1] / max(prob[query, :-1].sum(), 1e-30)
    type_logp = np.log(np.maximum(p_type, 1e-30))
    node = np.asarray(node_logp, np.float64)[query]
    best = (int(np.argmax(type_logp)), int(np.argmax(node)), query)
    if not joint:
        return best
    score = -np.inf
    for t, name in enumerate(fault_types):
        cand = np.flatnonzero(eligible_slots(nodes, mask, name))
        cand = cand[np.isfinite(node[cand])]
        if cand.size == 0:
            continue
        slot = int(cand[np.argmax(node[cand])])
        s = type_logp[t] + node[slot]
        if s > score:
            score, best = s, (t, slot, query)
    return best


# -- checkpoints -------------------------------------------------------------------------------
def save_checkpoint(
    path: Any,
    model: DeformableDETRFD,
    fault_types: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
) -> None:
    """Weights, architecture and feature normalisation in one small file."""
    torch.save(
        {
            "format": FORMAT,
            "config": model.config,
            "state_dict": model.state_dict(),
            "fault_types": list(fault_types),
            "mean": mean.astype(np.float32).tolist(),
            "std": std.astype(np.float32).tolist(),
        },
        path,
    )


def load_checkpoint(
    path: Any, device: torch.device | str = "cpu"
) -> tuple[DeformableDETRFD, list[str], np.ndarray, np.ndarray]:
    """(model in eval mode on ``device``, fault types, metric mean, metric std).

    Raises:
        WeightsNotFoundError: no file at ``path``.
        WeightsError: the file is not a DETR-FD checkpoint of this version (corrupt,
            truncated, foreign). Both name the path and the command that trains one.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"Deformable DETR-FD weights not found at {path}: train them with {TRAIN_COMMAND}"
        )
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
            raise ValueError(f"expected format {FORMAT!r}, found {found!r}")
        model = DeformableDETRFD(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        fault_types = [str(t) for t in ckpt["fault_types"]]
        mean = np.asarray(ckpt["mean"], np.float32)
        std = np.asarray(ckpt["std"], np.float32)
        if len(fault_types) != model.n_types or {mean.shape, std.shape} != {(N_METRICS,)}:
            raise ValueError("fault types or feature statistics do not fit the model")
    except Exception as exc:  # a corrupt or foreign file fails in many ways, all of them here
        raise WeightsError(
            f"{path}: not loadable Deformable DETR-FD weights ({type(exc).__name__}: "
            f"{str(exc)[:200]}); train them again with {TRAIN_COMMAND}"
        ) from None
    model.to(device).eval()
    return model, fault_types, mean, std
