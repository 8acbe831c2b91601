"""PASE's Plan Synthesis Engine: a causal LM writing grammar-constrained recovery plans.

``PlanSynthesisEngine(model, tokenizer).plan(description, node_names)`` renders the prompt of
:mod:`pase_gym.llm.prompts` (template ``"full"`` or ``"compact"``), decodes under the constraint
of :mod:`pase_gym.llm.constrained` (greedy by default, seeded sampling on request) and returns a
:class:`~pase_gym.sim.plan.Plan`, so every answer parses and names only real fault types,
primitives, nodes and groups.

With ``fast=True`` (the default) three optimisations cut the latency without changing greedy
outputs (up to float rounding): the key/value cache of the prompt's incident-independent head
(:func:`~pase_gym.llm.prompts.split_prompt`) is computed once and reused by every call and batch
row (:mod:`pase_gym.llm.prefix_cache`); a lone row's tokens that the grammar forces (the only
one allowed) are appended without a model call and fed together with the next forward pass
(jump-forward decoding; in a padded batch it costs more than it saves); and the output head
scores only the tokens the grammar allows (:func:`~pase_gym.llm.decoding.forward_step`).
``fast=False`` is the plain loop (the whole prompt every call, one forward pass per token),
kept as the reference the fast path is tested against. Either way the language-model head runs
on the last position only, and rows that finish leave the batch.

A continuous prompt embedding ``p`` (the meta-prompt optimiser's search variable, paper eq. 6)
is mapped by a small linear layer to ``k_virtual`` virtual token embeddings prepended to the
prompt through ``inputs_embeds``; ``p=None`` is exactly the fixed-prompt model.
torch is imported lazily (constructing an engine needs it; importing this module does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pase_gym.llm.constrained import PlanRecognizer, State, TokenConstraint, groups_from_nodes
from pase_gym.llm.decoding import Row, forward_step, mask_arg, pick
from pase_gym.llm.prefix_cache import PrefixCache, batch_cache
from pase_gym.llm.prompts import TEMPLATES, build_prompt, split_prompt
from pase_gym.sim.plan import Plan, parse_plan


@dataclass(frozen=True)
class Incident:
    """What the engine plans for: the scene description D_t and the topology's names."""

    description: str
    node_names: tuple[str, ...]
    groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Generation:
    """One decoded plan and how it was produced.

    Attributes:
        text: the plan text (always accepted by ``parse_plan``).
        plan: the parsed plan.
        n_tokens: tokens the model generated (EOS not counted).
        truncated: whether the token budget ran out and the plan was completed by the
            shortest valid continuation.
    """

    text: str
    plan: Plan
    n_tokens: int
    truncated: bool


def _as_incident(item: Any) -> Incident:
    if isinstance(item, Incident):
        return item
    if isinstance(item, dict):
        groups = item.get("groups")
        return Incident(
            item["description"],
            tuple(item["node_names"]),
            None if groups is None else tuple(groups),
        )
    description, node_names, *rest = item
    groups = rest[0] if rest else None
    return Incident(description, tuple(node_names), None if groups is None else tuple(groups))


class PlanSynthesisEngine:
    """Constrained plan generation with an optional soft prompt.

    Args:
        model: a Hugging Face causal LM (e.g. from :func:`pase_gym.llm.models.load_model`).
        tokenizer: its tokenizer.
        k_virtual: virtual tokens a prompt embedding is mapped to.
        prompt_dim: size of the prompt embedding ``p``.
        max_calls: most primitive calls in a plan (the diagnosis not counted).
        max_new_tokens: token budget per plan; a plan still open when it runs out is closed
            with the shortest valid continuation (and marked ``truncated``).
        require_diagnosis: whether plans start with ``Diagnose(fault, node)``.
        seed: seeds the initialisation of the soft-prompt projection.
        template: the prompt template, ``"full"`` or ``"compact"``
            (see :mod:`pase_gym.llm.prompts`).
        fast: reuse the prompt prefix's key/value cache and jump over forced tokens (same
            greedy plans as ``fast=False``, up to float rounding).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        k_virtual: int = 8,
        prompt_dim: int = 64,
        max_calls: int = 4,
        max_new_tokens: int = 96,
        require_diagnosis: bool = True,
        seed: int = 0,
        template: str = "full",
        fast: bool = True,
    ) -> None:
        import torch

        if template not in TEMPLATES:
            raise ValueError(f"unknown prompt template {template!r}; expected one of {TEMPLATES}")
        self.model = model
        self.tokenizer = tokenizer
        self.k_virtual = k_virtual
        self.prompt_dim = prompt_dim
        self.max_calls = max_calls
        self.max_new_tokens = max_new_tokens
        self.require_diagnosis = require_diagnosis
        self.template = template
        self.fast = fast
        self._jump = fast
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
        self._constraints: dict[tuple[Any, ...], TokenConstraint] = {}
        self._index_memo: dict[tuple[TokenConstraint, State], Any] = {}
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    # -- constraint and prompt ------------------------------------------------------------

    def constraint(self, incident: Incident) -> TokenConstraint:
        """The token constraint for an incident's topology (cached per name set)."""
        groups = incident.groups
        if groups is None:
            groups = tuple(groups_from_nodes(incident.node_names))
        key = (incident.node_names, groups)
        hit = self._constraints.get(key)
        if hit is None:
            rec = PlanRecognizer(
                list(incident.node_names),
                list(groups),
                max_calls=self.max_calls,
                require_diagnosis=self.require_diagnosis,
            )
            hit = TokenConstraint(rec, self.tokenizer, self.model)
            if len(self._constraints) >= 16:
                self._constraints.pop(next(iter(self._constraints)))
            self._constraints[key] = hit
        return hit

    def prompt_text(self, incident: Incident) -> str:
        """The prompt for one incident (under the engine's template)."""
        return build_prompt(
            self.tokenizer,
            incident.description,
            incident.node_names,
            incident.groups,
            self.template,
        )

    def _add_special(self) -> bool:
        return not getattr(self.tokenizer, "chat_template", None)

    def _encode(self, incidents: Sequence[Incident]) -> tuple[Any, Any]:
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

    def _split_ids(self, incidents: Sequence[Incident]) -> tuple[list[int], list[list[int]]] | None:
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

    def _prompt_rows(self, prompt_embedding: Any, batch: int) -> Any:
        """``p`` as a validated ``(batch, prompt_dim)`` tensor."""
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
        p = self._prompt_rows(prompt_embedding, batch)
        return self.soft_prompt(p).view(batch, self.k_virtual, -1)

    def clear_prefix_cache(self) -> None:
        """Forget the cached prompt prefixes (needed only after a weight change that bumps no
        parameter's version counter, e.g. switching a LoRA adapter on or off)."""
        self.prefix_cache.clear()

    # -- prefill --------------------------------------------------------------------------

    def _prefill(self, incidents: Sequence[Incident], prompt_embedding: Any) -> tuple[Any, ...]:
        """Run the prompts: ``(last logits, cache, attention mask, next positions)``."""
        if self.fast and self.prefix_cache.supported:
            out = self._prefill_cached(incidents, prompt_embedding)
            if out is not None:
                return out
        return self._prefill_full(incidents, prompt_embedding)

    def _prefill_full(
        self, incidents: Sequence[Incident], prompt_embedding: Any
    ) -> tuple[Any, ...]:
        import torch

        ids, mask = self._encode(incidents)
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
        return out.logits[:, -1, :].float(), out.past_key_values, mask, nxt

    def _prefill_cached(
        self, incidents: Sequence[Incident], prompt_embedding: Any
    ) -> tuple[Any, ...] | None:
        """The prefill starting from the cached prefix; ``None`` where it cannot be used.

        Layout per row: ``[virtual tokens] prefix [pads] suffix``: the suffixes are left-padded
        in the middle (attention mask 0) so that every row's last token is the last column;
        positions count real tokens only, as with a left-padded full prompt.
        """
        import torch

        split = self._split_ids(incidents)
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
            p = self._prompt_rows(prompt_embedding, n)
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
        cache = batch_cache(rows, reserve=width + self.max_new_tokens + 8)
        mask = torch.ones(n, start, dtype=torch.long, device=self.device)
        pad = int(self.tokenizer.pad_token_id)
        return forward_step(self.model, suffixes, None, cache, mask, [start] * n, pad)

    def first_logits(self, incidents: Sequence[Any], prompt_embedding: Any = None) -> Any:
        """Unconstrained next-token logits after the prompt, ``(batch, vocab)`` (for tests
        and for scoring)."""
        import torch

        with torch.no_grad():
            return self._prefill([_as_incident(i) for i in incidents], prompt_embedding)[0]

    # -- decoding -------------------------------------------------------------------------

    def generate(
        self,
        incidents: Sequence[Any],
        prompt_embedding: Any = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[Generation]:
        """Decode one plan per incident, in one batch.

        Args:
            incidents: :class:`Incident` objects, ``(description, node_names[, groups])``
                tuples or mappings with those keys.
            prompt_embedding: ``None`` (the fixed prompt), a ``(prompt_dim,)`` vector shared
                by the batch or a ``(batch, prompt_dim)`` array.
            temperature: ``0`` for greedy decoding, else sampling at this temperature (a
                token the grammar forces is taken without a draw).
            seed: seeds the sampler (ignored when greedy).
        """
        import torch

        items = [_as_incident(i) for i in incidents]
        if not items:
            return []
        rows = []
        for item in items:
            con = self.constraint(item)
            rows.append(Row(con, con.recognizer.initial()))
        gen = torch.Generator(device="cpu")
        gen.manual_seed(0 if seed is None else seed)
        with torch.no_grad():
            logits, past, mask, nxt = self._prefill(items, prompt_embedding)
            scores = [logits[b].index_select(0, self._index(row)) for b, row in enumerate(rows)]
            active = list(range(len(rows)))  # batch position -> row
            while True:
                # Jump forward only for a lone row: in a padded batch a multi-token step makes
                # attention repeat the grouped keys per head, which costs more than it saves.
                jump = self._jump and len(active) == 1
                feeds = [
                    self._next_tokens(rows[r], scores[b], temperature, gen, jump)
                    for b, r in enumerate(active)
                ]
                live = [b for b, r in enumerate(active) if not rows[r].done]
                if not live:
                    break
                if len(live) < len(active):  # finished rows leave the batch
                    index = torch.tensor(live, device=self.device)
                    past.batch_select_indices(index)
                    mask = mask.index_select(0, index)
                    nxt = [nxt[b] for b in live]
                    feeds = [feeds[b] for b in live]
                    active = [active[b] for b in live]
                scores, past, mask, nxt = self._forward(
                    feeds, [rows[r] for r in active], past, mask, nxt
                )
        results = []
        for row in rows:
            rec = row.constraint.recognizer
            truncated = not rec.accepts(row.state)
            text = "".join(row.pieces) + (rec.complete(row.state) if truncated else "")
            results.append(Generation(text, parse_plan(text), row.n_tokens, truncated))
        return results

    def _index(self, row: Row) -> Any:
        """The allowed token ids of the row's state as a tensor (memoised)."""
        import torch

        key = (row.constraint, row.state)
        hit = self._index_memo.get(key)
        if hit is None:
            if len(self._index_memo) >= 100_000:
                self._index_memo.clear()
            allowed = row.constraint.allowed(row.state)
            hit = self._index_memo[key] = torch.tensor(allowed, device=self.device)
        return hit

    def _next_tokens(
        self, row: Row, scores: Any, temperature: float, gen: Any, jump: bool
    ) -> list[int]:
        """Pick the row's next token (``scores``: the logits of its allowed tokens) and, with
        ``jump``, every token the grammar then forces; returns the tokens the model has to read
        next (and marks the row done when it ends)."""
        con = row.constraint
        allowed = con.allowed(row.state)
        choice = allowed[0] if len(allowed) == 1 else pick(scores, allowed, temperature, gen)
        feed: list[int] = []
        while True:
            if choice in con.eos:
                row.done = True
                break
            row.push(choice)
            feed.append(choice)
            if con.recognizer.finished(row.state) or row.n_tokens >= self.max_new_tokens:
                row.done = True
                break
            if not jump:
                break
            allowed = con.allowed(row.state)
            if len(allowed) != 1:
                break
            choice = allowed[0]
        return feed

    def _forward(
        self, feeds: list[list[int]], rows: list[Row], past: Any, mask: Any, nxt: list[int]
    ) -> tuple[Any, ...]:
        """Feed each row its new tokens in one pass (see :func:`~.decoding.forward_step`)."""
        return forward_step(
            self.model,
            feeds,
            [self._index(row) for row in rows],
            past,
            mask,
            nxt,
            int(self.tokenizer.pad_token_id),
            restricted_head=self.fast,
        )

    def plan_batch(
        self,
        incidents: Sequence[Any],
        prompt_embedding: Any = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[Plan]:
        """One plan per incident (see :meth:`generate`)."""
        return [g.plan for g in self.generate(incidents, prompt_embedding, temperature, seed)]

    def plan(
        self,
        description: str,
        node_names: Sequence[str],
        groups: Sequence[str] | None = None,
        prompt_embedding: Any = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Plan:
        """The plan for one incident: D_t, the topology's node names and (optionally) groups."""
        incident = Incident(
            description, tuple(node_names), None if groups is None else tuple(groups)
        )
        return self.plan_batch([incident], prompt_embedding, temperature, seed)[0]


__all__ = ["Generation", "Incident", "PlanSynthesisEngine"]
