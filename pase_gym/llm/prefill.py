"""The prompt side of the Plan Synthesis Engine: from incidents to the first decoding step.

:class:`PromptPrefill` renders each incident's prompt (:mod:`pase_gym.llm.prompts`), maps a
continuous prompt embedding ``p`` (the meta-prompt optimiser's search variable, paper eq. 6)
through a small linear layer to ``k_virtual`` virtual token embeddings prepended to the prompt
through ``inputs_embeds`` (``p=None`` is exactly the fixed-prompt model), and runs the prompts
through the model in one batch. :meth:`PromptPrefill.run` returns the next-token logits of
each row, the key/value cache, the attention mask and each row's next position: where the
decoding loop of :class:`~pase_gym.llm.engine.PlanSynthesisEngine` starts.

Either the whole prompt is run (left-padded), or, where the tokenizer allows it, only each
prompt's incident-dependent suffix, on top of the cached key/values of the prefix shared by
every incident (:func:`~pase_gym.llm.prompts.split_prompt`, :mod:`pase_gym.llm.prefix_cache`).
torch is imported lazily (constructing one needs it; importing this module does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pase_gym.llm.decoding import forward_step, mask_arg, output_cache
from pase_gym.llm.incident import Incident
from pase_gym.llm.prefix_cache import PrefixCache, batch_cache
from pase_gym.llm.prompts import build_prompt, split_prompt

#: ``(last logits (batch, vocab), cache, attention mask, next position per row)``
Prefilled = tuple[Any, Any, Any, list[int]]


class PromptPrefill:
    """Prompts, the soft prompt and the prefix cache of one model and template.

    Args:
        model: a Hugging Face causal LM.
        tokenizer: its tokenizer.
        template: the prompt template (see :mod:`pase_gym.llm.prompts`).
        k_virtual: virtual tokens a prompt embedding is mapped to.
        prompt_dim: size of the prompt embedding ``p``.
        seed: seeds the initialisation of the soft-prompt projection.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        template: str,
        k_virtual: int,
        prompt_dim: int,
        seed: int,
    ) -> None:
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.k_virtual = k_virtual
        self.prompt_dim = prompt_dim
        param = next(model.parameters())
        self.device, dtype = param.device, param.dtype
        table = model.get_input_embeddings().weight
        hidden = table.shape[1]
        scale = float(table.detach().float().std())  # virtual tokens at the scale of real ones
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            proj = torch.nn.Linear(prompt_dim, k_virtual * hidden)
            torch.nn.init.normal_(proj.weight, std=scale / max(prompt_dim, 1) ** 0.5)
            torch.nn.init.zeros_(proj.bias)
        self.soft_prompt = proj.to(device=self.device, dtype=dtype)
        self.prefix_cache = PrefixCache(model, self.soft_prompt.parameters())
        self._prefix_ids: dict[str, list[int]] = {}

    # -- text and token ids ---------------------------------------------------------------

    def prompt_text(self, incident: Incident) -> str:
        """The prompt for one incident (under this template)."""
        return build_prompt(
            self.tokenizer,
            incident.description,
            incident.node_names,
            incident.groups,
            self.template,
        )

    def _add_special(self) -> bool:
        return not getattr(self.tokenizer, "chat_template", None)

    def encode(self, incidents: Sequence[Incident]) -> tuple[Any, Any]:
        """The left-padded ``(input_ids, attention_mask)`` of the whole prompts."""
        tok = self.tokenizer
        texts = [self.prompt_text(i) for i in incidents]
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(
                texts, return_tensors="pt", padding=True, add_special_tokens=self._add_special()
            )
        finally:
            tok.padding_side = side
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def split_ids(self, incidents: Sequence[Incident]) -> tuple[list[int], list[list[int]]] | None:
        """The shared prefix's token ids and each prompt's remaining ids; ``None`` when the
        tokenizer merges tokens across the cut (then the prefix cannot be reused as is)."""
        tok = self.tokenizer
        first = incidents[0]
        head, _ = split_prompt(
            tok, first.description, first.node_names, first.groups, self.template
        )
        prefix = self._prefix_ids.get(head)
        if prefix is None:
            prefix = list(tok(head, add_special_tokens=self._add_special())["input_ids"])
            self._prefix_ids[head] = prefix
        texts = [self.prompt_text(i) for i in incidents]
        rows = tok(texts, add_special_tokens=self._add_special())["input_ids"]
        cut = len(prefix)
        if not cut or any(len(r) <= cut or list(r[:cut]) != prefix for r in rows):
            return None
        return prefix, [list(r[cut:]) for r in rows]

    # -- the soft prompt ------------------------------------------------------------------

    def prompt_rows(self, prompt_embedding: Any, batch: int) -> Any:
        """``p`` as a validated ``(batch, prompt_dim)`` tensor.

        Raises:
            ValueError: ``p`` is neither ``(prompt_dim,)`` nor ``(batch, prompt_dim)``.
        """
        import torch

        p = torch.as_tensor(prompt_embedding, dtype=self.soft_prompt.weight.dtype)
        p = p.to(self.device)
        if p.dim() == 1:
            p = p.unsqueeze(0).expand(batch, -1)
        if p.shape != (batch, self.prompt_dim):
            raise ValueError(
                f"prompt_embedding must have shape ({self.prompt_dim},) or "
                f"({batch}, {self.prompt_dim}), got {tuple(p.shape)}"
            )
        return p

    def virtual_tokens(self, prompt_embedding: Any, batch: int) -> Any:
        """The ``(batch, k_virtual, hidden)`` virtual token embeddings of ``p``."""
        p = self.prompt_rows(prompt_embedding, batch)
        return self.soft_prompt(p).view(batch, self.k_virtual, -1)

    # -- running the prompts --------------------------------------------------------------

    def run(
        self,
        incidents: Sequence[Incident],
        prompt_embedding: Any,
        *,
        reuse_prefix: bool,
        reserve: int,
    ) -> Prefilled:
        """Run the prompts (with the cached prefix where ``reuse_prefix`` and the model and
        tokenizer allow it, else whole).

        Args:
            incidents: one row per incident.
            prompt_embedding: ``None`` or ``p`` (see :meth:`prompt_rows`).
            reuse_prefix: start from the cached prefix when possible.
            reserve: new tokens the caller may decode (room kept in a batched cache).
        """
        if reuse_prefix and self.prefix_cache.supported:
            out = self.run_cached(incidents, prompt_embedding, reserve)
            if out is not None:
                return out
        return self.run_full(incidents, prompt_embedding)

    def run_full(self, incidents: Sequence[Incident], prompt_embedding: Any) -> Prefilled:
        """Run the whole left-padded prompts (the virtual tokens first)."""
        import torch

        ids, mask = self.encode(incidents)
        embeds = self.model.get_input_embeddings()(ids)
        if prompt_embedding is not None:
            virtual = self.virtual_tokens(prompt_embedding, ids.shape[0]).to(embeds.dtype)
            embeds = torch.cat([virtual, embeds], dim=1)
            ones = torch.ones(ids.shape[0], self.k_virtual, dtype=mask.dtype, device=mask.device)
            mask = torch.cat([ones, mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            inputs_embeds=embeds,
            attention_mask=mask_arg(mask),
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        nxt = (positions[:, -1] + 1).tolist()
        return out.logits[:, -1, :].float(), output_cache(out), mask, nxt

    def run_cached(
        self, incidents: Sequence[Incident], prompt_embedding: Any, reserve: int
    ) -> Prefilled | None:
        """The prefill starting from the cached prefix; ``None`` where it cannot be used.

        Layout per row: ``[virtual tokens] prefix [pads] suffix``: the suffixes are left-padded
        in the middle (attention mask 0) so that every row's last token is the last column;
        positions count real tokens only, as with a left-padded full prompt.
        """
        import torch

        split = self.split_ids(incidents)
        if split is None:
            return None
        prefix, suffixes = split
        n = len(incidents)
        by_tag: dict[Any, Any] = {}
        rows = []
        if prompt_embedding is None:
            layers = self.prefix_cache.get(prefix)
            if layers is None:
                return None
            rows = [layers] * n
        else:
            p = self.prompt_rows(prompt_embedding, n)
            for r in range(n):
                tag = p[r].detach().cpu().numpy().tobytes()
                if tag not in by_tag:
                    virtual = self.soft_prompt(p[r : r + 1]).view(1, self.k_virtual, -1)
                    by_tag[tag] = self.prefix_cache.get(prefix, virtual, tag)
                    if by_tag[tag] is None:
                        return None
                rows.append(by_tag[tag])
        start = int(rows[0][0][0].shape[2])
        width = max(len(s) for s in suffixes)
        cache = batch_cache(rows, reserve=width + reserve + 8)
        mask = torch.ones(n, start, dtype=torch.long, device=self.device)
        pad = int(self.tokenizer.pad_token_id)
        return forward_step(self.model, suffixes, None, cache, mask, [start] * n, pad)


__all__ = ["Prefilled", "PromptPrefill"]
