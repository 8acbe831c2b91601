"""PASE's Plan Synthesis Engine: a causal LM writing grammar-constrained recovery plans.

``PlanSynthesisEngine(model, tokenizer).plan(description, node_names)`` renders the prompt of
:mod:`pase_gym.llm.prompts`, decodes under the constraint of :mod:`pase_gym.llm.constrained`
(greedy by default, seeded sampling on request) and returns a :class:`~pase_gym.sim.plan.Plan`,
so every answer parses and names only real fault types, primitives, nodes and groups.

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
from pase_gym.llm.prompts import build_prompt
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
    ) -> None:
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.k_virtual = k_virtual
        self.prompt_dim = prompt_dim
        self.max_calls = max_calls
        self.max_new_tokens = max_new_tokens
        self.require_diagnosis = require_diagnosis
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
        self._constraints: dict[tuple[Any, ...], TokenConstraint] = {}
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
        """The prompt for one incident."""
        return build_prompt(
            self.tokenizer, incident.description, incident.node_names, incident.groups
        )

    def _encode(self, incidents: Sequence[Incident]) -> tuple[Any, Any]:
        tok = self.tokenizer
        texts = [self.prompt_text(i) for i in incidents]
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(
                texts,
                return_tensors="pt",
                padding=True,
                add_special_tokens=not getattr(tok, "chat_template", None),
            )
        finally:
            tok.padding_side = side
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    def virtual_tokens(self, prompt_embedding: Any, batch: int) -> Any:
        """The ``(batch, k_virtual, hidden)`` virtual token embeddings of ``p``."""
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
        return self.soft_prompt(p).view(batch, self.k_virtual, -1)

    def _prefill(self, incidents: Sequence[Incident], prompt_embedding: Any) -> tuple[Any, ...]:
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
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True
        )
        return out.logits[:, -1, :].float(), out.past_key_values, mask, positions[:, -1:]

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
            temperature: ``0`` for greedy decoding, else sampling at this temperature.
            seed: seeds the sampler (ignored when greedy).
        """
        import torch

        items = [_as_incident(i) for i in incidents]
        if not items:
            return []
        constraints = [self.constraint(i) for i in items]
        gen = torch.Generator(device="cpu")
        gen.manual_seed(0 if seed is None else seed)
        n = len(items)
        states: list[State] = [c.recognizer.initial() for c in constraints]
        texts = [""] * n
        counts = [0] * n
        done = [False] * n
        pad = int(self.tokenizer.pad_token_id)
        with torch.no_grad():
            logits, past, mask, last_pos = self._prefill(items, prompt_embedding)
            for _ in range(self.max_new_tokens):
                picks = [pad] * n
                for row in range(n):
                    if done[row]:
                        continue
                    con = constraints[row]
                    allowed = con.allowed(states[row])
                    choice = self._pick(logits[row], allowed, temperature, gen)
                    if choice in con.eos:
                        done[row] = True
                        continue
                    picks[row] = choice
                    states[row] = con.advance(states[row], choice)
                    texts[row] += con.strings[choice] or ""
                    counts[row] += 1
                    if con.recognizer.finished(states[row]):
                        done[row] = True
                if all(done):
                    break
                step = torch.tensor(picks, device=self.device).unsqueeze(1)
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                last_pos = last_pos + 1
                out = self.model(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=last_pos,
                    past_key_values=past,
                    use_cache=True,
                )
                logits, past = out.logits[:, -1, :].float(), out.past_key_values
        results = []
        for row in range(n):
            rec = constraints[row].recognizer
            truncated = not rec.accepts(states[row])
            text = texts[row] + (rec.complete(states[row]) if truncated else "")
            results.append(Generation(text, parse_plan(text), counts[row], truncated))
        return results

    @staticmethod
    def _pick(logits: Any, allowed: list[int], temperature: float, gen: Any) -> int:
        import torch

        idx = torch.tensor(allowed, device=logits.device)
        sub = logits.index_select(0, idx)
        if temperature <= 0:
            return allowed[int(torch.argmax(sub))]
        probs = torch.softmax(sub / temperature, dim=0).cpu()
        return allowed[int(torch.multinomial(probs, 1, generator=gen))]

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
