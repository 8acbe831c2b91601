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

The prompt side (the templates, the soft prompt ``p``, the prefix cache, the prefill) is
:class:`~pase_gym.llm.prefill.PromptPrefill`; the incidents and generations are
:mod:`pase_gym.llm.incident`; this module is the decoding loop. torch is imported lazily
(constructing an engine needs it; importing this module does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pase_gym.llm.constrained import PlanRecognizer, State, TokenConstraint, groups_from_nodes
from pase_gym.llm.decoding import Row, forward_step, pick
from pase_gym.llm.incident import Generation, Incident, as_incident
from pase_gym.llm.prefill import Prefilled, PromptPrefill
from pase_gym.llm.prefix_cache import PrefixCache
from pase_gym.llm.prompts import TEMPLATES
from pase_gym.sim.plan import Plan, parse_plan


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
        if template not in TEMPLATES:
            raise ValueError(f"unknown prompt template {template!r}; expected one of {TEMPLATES}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_calls = max_calls
        self.max_new_tokens = max_new_tokens
        self.require_diagnosis = require_diagnosis
        self.fast = fast
        self._jump = fast
        self.prompts = PromptPrefill(model, tokenizer, template, k_virtual, prompt_dim, seed)
        self.device = self.prompts.device
        self._constraints: dict[tuple[Any, ...], TokenConstraint] = {}
        self._index_memo: dict[tuple[TokenConstraint, State], Any] = {}
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    # -- the constraint -------------------------------------------------------------------

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

    # -- the prompt side (see PromptPrefill) -----------------------------------------------

    @property
    def template(self) -> str:
        """The prompt template, ``"full"`` or ``"compact"``."""
        return self.prompts.template

    @property
    def k_virtual(self) -> int:
        """Virtual tokens a prompt embedding is mapped to."""
        return self.prompts.k_virtual

    @property
    def prompt_dim(self) -> int:
        """Size of the prompt embedding ``p``."""
        return self.prompts.prompt_dim

    @property
    def soft_prompt(self) -> Any:
        """The linear layer mapping ``p`` to the virtual token embeddings."""
        return self.prompts.soft_prompt

    @property
    def prefix_cache(self) -> PrefixCache:
        """The key/value cache of the prompt prefix shared by every incident."""
        return self.prompts.prefix_cache

    def prompt_text(self, incident: Incident) -> str:
        """The prompt for one incident (under the engine's template)."""
        return self.prompts.prompt_text(incident)

    def virtual_tokens(self, prompt_embedding: Any, batch: int) -> Any:
        """The ``(batch, k_virtual, hidden)`` virtual token embeddings of ``p``."""
        return self.prompts.virtual_tokens(prompt_embedding, batch)

    def clear_prefix_cache(self) -> None:
        """Forget the cached prompt prefixes (needed only after a weight change that bumps no
        parameter's version counter, e.g. switching a LoRA adapter on or off)."""
        self.prefix_cache.clear()

    def _prefill(self, incidents: Sequence[Incident], prompt_embedding: Any) -> Prefilled:
        """Run the prompts: ``(last logits, cache, attention mask, next positions)``.

        Rows that are all the same incident under the same prompt embedding (candidates
        sampled for one incident) are run once and the result repeated for each row.
        """
        shared, row = self._shared_row(incidents, prompt_embedding)
        if not shared:
            return self.prompts.run(
                incidents, prompt_embedding, reuse_prefix=self.fast, reserve=self.max_new_tokens
            )
        n = len(incidents)
        logits, past, mask, nxt = self.prompts.run(
            incidents[:1], row, reuse_prefix=self.fast, reserve=self.max_new_tokens
        )
        past.batch_repeat_interleave(n)
        return logits.expand(n, -1), past, mask.repeat(n, 1), nxt * n

    def _shared_row(self, incidents: Sequence[Incident], prompt_embedding: Any) -> tuple[bool, Any]:
        """``(True, p)`` for a batch whose rows are all the same incident under the same
        prompt embedding ``p`` (``None``: the fixed prompt); ``(False, None)`` otherwise."""
        if len(incidents) < 2 or any(i != incidents[0] for i in incidents[1:]):
            return False, None
        if prompt_embedding is None:
            return True, None
        p = self.prompts.prompt_rows(prompt_embedding, len(incidents))
        if not bool((p == p[:1]).all()):
            return False, None
        return True, p[0].detach().clone()

    def first_logits(self, incidents: Sequence[Any], prompt_embedding: Any = None) -> Any:
        """Unconstrained next-token logits after the prompt, ``(batch, vocab)`` (for tests
        and for scoring)."""
        import torch

        with torch.no_grad():
            return self._prefill([as_incident(i) for i in incidents], prompt_embedding)[0]

    # -- decoding -------------------------------------------------------------------------

    def generate(
        self,
        incidents: Sequence[Any],
        prompt_embedding: Any = None,
        temperature: float | Sequence[float] = 0.0,
        seed: int | None = None,
    ) -> list[Generation]:
        """Decode one plan per incident, in one batch.

        Args:
            incidents: :class:`Incident` objects, ``(description, node_names[, groups])``
                tuples or mappings with those keys.
            prompt_embedding: ``None`` (the fixed prompt), a ``(prompt_dim,)`` vector shared
                by the batch or a ``(batch, prompt_dim)`` array.
            temperature: ``0`` for greedy decoding, else sampling at this temperature (a
                token the grammar forces is taken without a draw); one number for the batch
                or one per incident (e.g. a greedy row beside sampled ones).
            seed: seeds the sampler (ignored when greedy).

        Raises:
            ValueError: per-incident temperatures whose number is not the batch's.
        """
        import torch

        items = [as_incident(i) for i in incidents]
        if not items:
            return []
        temps = self._temperatures(temperature, len(items))
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
                    self._next_tokens(rows[r], scores[b], temps[r], gen, jump)
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
            results.append(
                Generation(text, parse_plan(text), row.n_tokens, truncated, tuple(row.tokens))
            )
        return results

    @staticmethod
    def _temperatures(temperature: float | Sequence[float], n: int) -> list[float]:
        if isinstance(temperature, int | float):
            return [float(temperature)] * n
        temps = [float(t) for t in temperature]
        if len(temps) != n:
            raise ValueError(
                f"temperature: expected one number or {n} (one per incident), found {len(temps)}"
            )
        return temps

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
        temperature: float | Sequence[float] = 0.0,
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


__all__ = ["PlanSynthesisEngine"]
