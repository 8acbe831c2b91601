"""The decoding loop's building blocks: a row being decoded, token choice, one forward step.

Used by :class:`~pase_gym.llm.engine.PlanSynthesisEngine`; torch is imported inside the
functions only.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

from pase_gym.llm.constrained import State, TokenConstraint


@dataclass
class Row:
    """One plan being decoded: its constraint, recogniser state and text so far."""

    constraint: TokenConstraint
    state: State
    pieces: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    done: bool = False

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    def push(self, token: int) -> None:
        self.state = self.constraint.advance(self.state, token)
        self.pieces.append(self.constraint.strings[token] or "")
        self.tokens.append(token)


@functools.cache
def _cache_keyword(forward: Any) -> str:
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def cache_keyword(model: Any) -> str:
    """The keyword a model's ``forward`` takes its key/value cache by: ``cache`` in recent
    transformers releases (which warn on every call given the older ``past_key_values``),
    ``past_key_values`` before."""
    return _cache_keyword(type(model).forward)


def output_cache(out: Any) -> Any:
    """The key/value cache of a model's output: its ``cache`` field in recent transformers
    releases (whose ``past_key_values`` property still answers, with a deprecation warning),
    ``past_key_values`` before."""
    if "cache" in getattr(out, "__dataclass_fields__", {}):
        return out.cache
    return out.past_key_values


def mask_arg(mask: Any) -> Any:
    """The attention mask to pass: ``None`` when nothing is masked (one row, or rows without
    padding), which lets attention skip the mask and use grouped-query kernels without
    repeating keys. A row left alone after the others finished keeps its padding: masked."""
    return None if bool(mask.all()) else mask


def pick(scores: Any, allowed: list[int], temperature: float, gen: Any) -> int:
    """Greedy or sampled choice among ``allowed`` given their logits ``scores``."""
    import torch

    if temperature <= 0:
        return allowed[int(torch.argmax(scores))]
    probs = torch.softmax(scores / temperature, dim=0).cpu()
    return allowed[int(torch.multinomial(probs, 1, generator=gen))]


#: Causal LMs whose logits are exactly ``lm_head(last hidden state)`` (no scaling, no soft-cap),
#: so the head may be applied to a subset of the vocabulary.
PLAIN_HEAD_MODELS = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


def decoder_and_head(model: Any) -> tuple[Any, Any] | None:
    """The decoder stack and the linear output head of a plain-head causal LM (also under a
    PEFT wrapper), or ``None``."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if type(base).__name__ not in PLAIN_HEAD_MODELS:
        return None
    head = getattr(base, "lm_head", None)
    decoder = getattr(base, "model", None)
    if type(head) is not torch.nn.Linear or decoder is None:
        return None
    return decoder, head


def forward_step(
    model: Any,
    feeds: list[list[int]],
    allowed: list[Any] | None,
    past: Any,
    mask: Any,
    nxt: list[int],
    pad: int,
    restricted_head: bool = True,
) -> tuple[Any, Any, Any, list[int]]:
    """Feed each row its new tokens in one pass and score the tokens each may take next.

    Rows whose feeds are shorter are left-padded up to the longest (attention mask 0, so the
    pads stay invisible for good); every row's last real token is then the last column.

    Args:
        model: the causal LM.
        feeds: per row, the token ids not read yet (at least one each).
        allowed: per row, the ids of the tokens allowed next (a tensor); ``None`` for the
            whole vocabulary's logits as one ``(batch, vocab)`` tensor.
        past: the key/value cache, extended in place.
        mask: the ``(batch, cached length)`` attention mask so far.
        nxt: per row, the position of its next token.
        pad: the padding token id.
        restricted_head: with a plain linear output head (:func:`decoder_and_head`), compute
            the logits of the allowed tokens only (a plan step allows tens to hundreds of the
            vocabulary's ~50,000 tokens, and the head is a fifth of SmolLM2's weights).

    Returns:
        Per row the float logits of its allowed tokens (see ``allowed``), the cache, the
        extended mask and the next positions.
    """
    import torch

    device = mask.device
    width = max(len(f) for f in feeds)
    ids, real, pos = [], [], []
    for feed, start in zip(feeds, nxt, strict=True):
        gap = width - len(feed)
        ids.append([pad] * gap + feed)
        real.append([0] * gap + [1] * len(feed))
        pos.append([start] * gap + list(range(start, start + len(feed))))
    mask = torch.cat([mask, torch.tensor(real, dtype=mask.dtype, device=device)], dim=1)
    split = decoder_and_head(model) if restricted_head else None
    inputs = {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": mask_arg(mask),
        "position_ids": torch.tensor(pos, device=device),
        cache_keyword(model if split is None else split[0]): past,
        "use_cache": True,
    }
    nxt = [start + len(feed) for feed, start in zip(feeds, nxt, strict=True)]
    if split is None or allowed is None:
        out = model(**inputs, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()
        if allowed is None:
            return logits, output_cache(out), mask, nxt
        scores = [logits[b].index_select(0, idx) for b, idx in enumerate(allowed)]
        return scores, output_cache(out), mask, nxt
    decoder, head = split
    out = decoder(**inputs)
    hidden = out.last_hidden_state[:, -1, :]
    scores = []
    for b, idx in enumerate(allowed):
        bias = None if head.bias is None else head.bias.index_select(0, idx)
        weight = head.weight.index_select(0, idx)
        scores.append(torch.nn.functional.linear(hidden[b], weight, bias).float())
    return scores, output_cache(out), mask, nxt
