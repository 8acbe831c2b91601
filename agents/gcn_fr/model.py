"""GCN-FR's model: a small graph convolutional network over the cloud's dependency graph.

Everything the model sees comes from the env's observation (no ground truth):

* **node features** (:func:`node_features`): the eight metrics (latency as ``log1p``), their
  change since the oldest snapshot of the metric window, the seven alarm flags and the 29
  node descriptors (role one-hot, provisioned, in service, is a process);
* **the graph** (:func:`graph_edges`): the topology edges of ``edge_index`` kept by
  ``edge_mask`` whose two ends are provisioned, made undirected. The layers propagate over the
  symmetric-normalised adjacency with self-loops ``D^-1/2 (A + I) D^-1/2`` as a
  ``torch.sparse`` matrix (one block per graph of a batch).

Two heads: a per-node root-cause logit, turned into a probability by a softmax over the
provisioned slots of each graph only (padding and inactive spares get ``-inf``), and
graph-level fault-type logits read from mean, max and root-attention pooling of the node
embeddings. Plain torch: no torch-geometric (see the README for why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pase_gym.sim.faults import FAULTS
from pase_gym.sim.roles import ROLE_NAMES, ROLES, Kind

N_METRICS = 8
LATENCY = 4  # column of the latency indicator (seconds; heavy-tailed, read as log1p)
N_ALARMS = 7
N_CONTINUOUS = 2 * N_METRICS  # metrics and their change over the window: z-scored
N_ROLES = len(ROLE_NAMES)
N_FEATURES = 2 * N_METRICS + N_ALARMS + N_ROLES + 3  # + role one-hot, provisioned, in service,
# is a process


def _transform(metrics: np.ndarray) -> np.ndarray:
    out = np.asarray(metrics, dtype=np.float32).copy()
    out[..., LATENCY] = np.log1p(out[..., LATENCY])
    return out


def node_features(obs: dict[str, Any]) -> np.ndarray:
    """(N, N_FEATURES) raw node features of one observation (slots as in the observation).

    Columns: transformed metrics (8), their change since the oldest non-empty window row (8),
    alarms (7), node descriptors (29). Slots that are not provisioned are all zero.
    """
    mask = np.asarray(obs["node_mask"], dtype=np.float32) > 0
    metrics = _transform(obs["metrics"])
    window = _transform(obs["window"])  # (W, N, 8), oldest first, zero rows where empty
    filled = window.any(axis=2)  # (W, N)
    first = np.argmax(filled, axis=0)  # first filled row per node (0 if none)
    oldest = window[first, np.arange(window.shape[1])]
    delta = np.where(filled.any(axis=0)[:, None], metrics - oldest, 0.0)
    x = np.concatenate(
        [
            metrics,
            delta,
            np.asarray(obs["alarms"], np.float32),
            np.asarray(obs["nodes"], np.float32),
        ],
        axis=1,
    ).astype(np.float32)
    x[~mask] = 0.0
    return x


def graph_edges(obs: dict[str, Any]) -> np.ndarray:
    """(2, E') undirected, de-duplicated edges between provisioned slots, without self-loops."""
    mask = np.asarray(obs["node_mask"]) > 0
    index = np.asarray(obs["edge_index"], dtype=np.int64)
    keep = np.asarray(obs["edge_mask"]) > 0
    src, dst = index[0, keep], index[1, keep]
    ok = mask[src] & mask[dst] & (src != dst)
    src, dst = src[ok], dst[ok]
    both = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], axis=1)
    if both.size == 0:
        return np.zeros((2, 0), np.int64)
    return np.unique(both, axis=1)


@dataclass
class Graph:
    """One observation as the model's input (numpy)."""

    x: np.ndarray  # (N, F) raw features
    edges: np.ndarray  # (2, E') undirected edges between provisioned slots
    mask: np.ndarray  # (N,) bool: provisioned slots (the only root candidates)

    @classmethod
    def from_obs(cls, obs: dict[str, Any]) -> Graph:
        return cls(node_features(obs), graph_edges(obs), np.asarray(obs["node_mask"]) > 0)


@dataclass
class Batch:
    """Graphs packed block-diagonally (torch)."""

    x: torch.Tensor  # (M, F) normalised features
    adj: torch.Tensor  # (M, M) sparse normalised adjacency with self-loops
    mask: torch.Tensor  # (M,) bool
    batch: torch.Tensor  # (M,) graph id of each slot
    ptr: torch.Tensor  # (B + 1,) first slot of each graph
    num_graphs: int

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.x.to(device),
            self.adj.to(device),
            self.mask.to(device),
            self.batch.to(device),
            self.ptr.to(device),
            self.num_graphs,
        )


def normalised_adjacency(edges: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (2, K) and values (K,) of ``D^-1/2 (A + I) D^-1/2`` for undirected ``edges``."""
    loops = np.arange(n, dtype=np.int64)
    index = np.concatenate([edges, np.stack([loops, loops])], axis=1)
    deg = np.bincount(index[0], minlength=n).astype(np.float32)
    inv = 1.0 / np.sqrt(deg)
    return index, inv[index[0]] * inv[index[1]]


def collate(graphs: Sequence[Graph], mean: np.ndarray, std: np.ndarray) -> Batch:
    """Pack graphs into one block-diagonal batch, z-scoring the continuous feature columns."""
    xs, idx, vals, masks, batch, ptr = [], [], [], [], [], [0]
    for g_id, g in enumerate(graphs):
        n = g.x.shape[0]
        x = g.x.copy()
        x[:, :N_CONTINUOUS] = (x[:, :N_CONTINUOUS] - mean) / std
        x[~g.mask] = 0.0
        xs.append(x)
        index, value = normalised_adjacency(g.edges, n)
        idx.append(index + ptr[-1])
        vals.append(value)
        masks.append(g.mask)
        batch.append(np.full(n, g_id, np.int64))
        ptr.append(ptr[-1] + n)
    total = ptr[-1]
    adj = torch.sparse_coo_tensor(
        torch.from_numpy(np.concatenate(idx, axis=1)),
        torch.from_numpy(np.concatenate(vals).astype(np.float32)),
        (total, total),
        check_invariants=False,
    ).coalesce()
    return Batch(
        torch.from_numpy(np.concatenate(xs).astype(np.float32)),
        adj,
        torch.from_numpy(np.concatenate(masks)),
        torch.from_numpy(np.concatenate(batch)),
        torch.tensor(ptr, dtype=torch.long),
        len(graphs),
    )


def segment_log_softmax(
    logits: torch.Tensor, mask: torch.Tensor, batch: torch.Tensor, num_graphs: int
) -> torch.Tensor:
    """Log-softmax of ``logits`` within each graph over the slots where ``mask`` holds.

    Masked slots get ``-inf`` (probability exactly 0), so they can never be picked.
    """
    neg_inf = torch.full_like(logits, float("-inf"))
    z = torch.where(mask, logits, neg_inf)
    top = torch.full((num_graphs,), float("-inf"), dtype=z.dtype, device=z.device)
    top = top.scatter_reduce(0, batch, z, reduce="amax", include_self=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
    shifted = z - top[batch]
    total = torch.zeros(num_graphs, dtype=z.dtype, device=z.device).index_add(
        0, batch, torch.exp(shifted)
    )
    return shifted - torch.log(total.clamp_min(1e-30))[batch]


class GCNLayer(nn.Module):
    """``relu(Â H W + H U)``: a graph convolution plus a self term (keeps the root's own
    signal from being smoothed into its neighbours')."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.neigh = nn.Linear(dim, dim)
        self.self_ = nn.Linear(dim, dim, bias=False)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.sparse.mm(adj, self.neigh(h)) + self.self_(h))


class GCNFR(nn.Module):
    """Fault-type classification and root-cause localisation over the dependency graph."""

    def __init__(
        self,
        n_types: int,
        in_dim: int = N_FEATURES,
        hidden: int = 64,
        layers: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not 2 <= layers <= 3:
            raise ValueError(f"layers must be 2 or 3, found {layers}")
        self.config = {
            "n_types": n_types,
            "in_dim": in_dim,
            "hidden": hidden,
            "layers": layers,
            "dropout": dropout,
        }
        self.inp = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(GCNLayer(hidden) for _ in range(layers))
        self.drop = nn.Dropout(dropout)
        self.root = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.kind = nn.Sequential(
            nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_types)
        )

    def forward(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(root log-probabilities (M,), -inf on masked slots; fault-type logits (B, T))."""
        h0 = torch.relu(self.inp(b.x))
        h = h0
        for conv in self.convs:
            h = self.drop(conv(h, b.adj))
        root_logp = segment_log_softmax(
            self.root(torch.cat([h, h0], dim=1)).squeeze(1), b.mask, b.batch, b.num_graphs
        )
        m = b.mask.to(h.dtype).unsqueeze(1)
        hm = h * m
        count = torch.zeros(b.num_graphs, 1, dtype=h.dtype, device=h.device).index_add(
            0, b.batch, m
        )
        mean = torch.zeros(b.num_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add(
            0, b.batch, hm
        ) / count.clamp_min(1.0)
        mx = torch.zeros(b.num_graphs, h.shape[1], dtype=h.dtype, device=h.device)
        mx = mx.scatter_reduce(
            0, b.batch.unsqueeze(1).expand_as(hm), hm, reduce="amax", include_self=True
        )  # h >= 0 after relu, so 0 is neutral
        attn = torch.exp(root_logp).unsqueeze(1)  # 0 on masked slots
        at = torch.zeros(b.num_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add(
            0, b.batch, attn * h
        )
        return root_logp, self.kind(torch.cat([mean, mx, at], dim=1))


def save_checkpoint(
    path: Any, model: GCNFR, fault_types: Sequence[str], mean: np.ndarray, std: np.ndarray
) -> None:
    """Weights, architecture and feature normalisation in one small file."""
    torch.save(
        {
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
) -> tuple[GCNFR, list[str], np.ndarray, np.ndarray]:
    """(model in eval mode on ``device``, fault types, feature mean, feature std).

    Raises:
        ValueError: ``path`` is not a readable GCN-FR checkpoint (corrupt, truncated, or
            another kind of file); the message names it and the command that retrains it.
    """
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        model = GCNFR(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        types, mean, std = ckpt["fault_types"], ckpt["mean"], ckpt["std"]
    except Exception as exc:
        raise ValueError(
            f"{path}: not a readable GCN-FR checkpoint ({type(exc).__name__}: {exc}); "
            "retrain it with python agents/gcn_fr/train.py"
        ) from exc
    model.to(device).eval()
    return model, list(types), np.asarray(mean, np.float32), np.asarray(std, np.float32)


_ROLE_KIND = np.array([int(ROLES[r].kind) for r in ROLE_NAMES])
_ROLE_SCALABLE = np.array([ROLES[r].scalable for r in ROLE_NAMES])
_ROLE_TLS = np.array([ROLES[r].tls for r in ROLE_NAMES])


def eligible_slots(nodes: np.ndarray, mask: np.ndarray, fault_type: str) -> np.ndarray:
    """(N,) bool: provisioned slots a fault of ``fault_type`` could sit on, read from the
    observation's node descriptors (role one-hot, is-a-process) and the public fault
    catalogue's target kinds."""
    nodes = np.asarray(nodes)
    has_role = nodes[:, :N_ROLES].any(axis=1)
    role = np.argmax(nodes[:, :N_ROLES], axis=1)
    kind = _ROLE_KIND[role]
    process = nodes[:, N_ROLES + 2] > 0
    target = FAULTS[fault_type].target
    if target == "service":
        ok = (kind == Kind.SERVICE) & process
    elif target in ("host", "disk_host"):
        ok = kind == Kind.HOST
    elif target == "compute_host":
        ok = role == ROLE_NAMES.index("compute")
    elif target == "instance":
        ok = kind == Kind.INSTANCE
    elif target == "queue":
        ok = kind == Kind.QUEUE
    elif target == "database":
        ok = kind == Kind.DATABASE
    elif target == "replicated_service":
        ok = (kind == Kind.SERVICE) & _ROLE_SCALABLE[role]
    elif target == "tls_service":
        ok = (kind == Kind.SERVICE) & _ROLE_TLS[role]
    else:  # pragma: no cover - the catalogue is fixed
        ok = np.ones(len(role), bool)
    return ok & has_role & (np.asarray(mask) > 0)


def decode(
    root_logp: np.ndarray,
    type_logits: np.ndarray,
    fault_types: Sequence[str],
    nodes: np.ndarray,
    mask: np.ndarray,
    joint: bool = True,
) -> tuple[int, int]:
    """(fault-type index, root slot) of one graph.

    ``joint=False``: the argmax of each head. ``joint=True``: the most probable *consistent*
    pair, ``argmax log p(type) + log p(root)`` over the slots the type can strike (falls back
    to the plain argmax when no type has a candidate slot).
    """
    root_logp = np.asarray(root_logp, np.float64)
    z = np.asarray(type_logits, np.float64)
    type_logp = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
    best = (int(np.argmax(type_logp)), int(np.argmax(root_logp)))
    if not joint:
        return best
    score = -np.inf
    for t, name in enumerate(fault_types):
        cand = np.flatnonzero(eligible_slots(nodes, mask, name))
        cand = cand[np.isfinite(root_logp[cand])]
        if cand.size == 0:
            continue
        slot = int(cand[np.argmax(root_logp[cand])])
        s = type_logp[t] + root_logp[slot]
        if s > score:
            score, best = s, (t, slot)
    return best
