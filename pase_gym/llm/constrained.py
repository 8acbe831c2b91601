"""Grammar-constrained decoding of recovery plans, for any tokenizer.

The language generated is the canonical spelling of :class:`~pase_gym.sim.plan.Plan` (what
``str(plan)`` writes), restricted to the vocabularies of the current incident::

    Diagnose(<fault type>, <node>); <Primitive>(<arg>, ...); ...

Fault types come from :data:`~pase_gym.sim.faults.FAULT_NAMES`, primitives and their typed
parameters from :data:`~pase_gym.sim.primitives.PRIMITIVES`, node and group arguments from the
names given (the current topology), integers from the parameter's range. Every text this
language contains is accepted by :func:`~pase_gym.sim.plan.parse_plan`.

:class:`PlanRecognizer` is a character-level incremental recogniser of that language: its
states are small immutable tuples, :meth:`PlanRecognizer.feed` advances one character (``None``
when the text stops being a prefix of some plan) and :meth:`PlanRecognizer.accepts` says
whether the plan may end here. :class:`TokenConstraint` lifts it to tokens: it walks a
character trie of the tokenizer's vocabulary together with the recogniser, so the cost of one
step is the number of vocabulary prefixes that stay alive, not the vocabulary size. The end of
generation (an EOS token) is allowed only where the text parses. Pure Python, no torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pase_gym.errors import ConstraintError
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan_checks import DIAGNOSE, MAX_NAME_LENGTH, is_name
from pase_gym.sim.primitives import PRIMITIVES, ParamType

SEP = "; "  # between statements
ARG_SEP = ", "  # between arguments

# A state: (calls made, diagnosed, pending slots, partial text of the first pending slot).
# A slot is ("lit", text) or ("choice", kind); pending == () means "between statements".
Slot = tuple[str, str]
State = tuple[int, bool, tuple[Slot, ...], str]


class _Choice:
    """A finite set of strings with all their prefixes, for O(1) prefix checks."""

    __slots__ = ("options", "prefixes", "shortest")

    def __init__(self, options: Iterable[str]) -> None:
        self.options = frozenset(options)
        self.prefixes = frozenset(o[:i] for o in self.options for i in range(len(o) + 1))
        self.shortest: dict[str, str] = {}

    def complete(self, partial: str) -> str:
        """The shortest option starting with ``partial`` (which must be a prefix)."""
        if partial not in self.shortest:
            fits = [o for o in self.options if o.startswith(partial)]
            self.shortest[partial] = min(fits, key=lambda o: (len(o), o))
        return self.shortest[partial]


def groups_from_nodes(node_names: Iterable[str]) -> list[str]:
    """Service-group names derived from node names: ``nova-api-2`` -> ``nova-api``."""
    out: dict[str, None] = {}
    for name in node_names:
        head, _, tail = name.rpartition("-")
        if head and tail.isdigit() and is_name(head):
            out[head] = None
    return list(out)


@dataclass
class PlanRecognizer:
    """Incremental character-level recogniser of canonical plans over given vocabularies.

    Args:
        node_names: the node names a plan may mention (the current topology).
        groups: the group names it may mention; ``None`` derives them from ``node_names``.
        max_calls: most primitive calls (the diagnosis not counted).
        min_calls: fewest primitive calls before the plan may end.
        require_diagnosis: whether the plan must start with ``Diagnose(fault, node)``.
        primitives: the primitives allowed (default: all of them).
        fault_types: the fault types allowed (default: all of them).
    """

    node_names: Sequence[str]
    groups: Sequence[str] | None = None
    max_calls: int = 4
    min_calls: int = 1
    require_diagnosis: bool = True
    primitives: Sequence[str] | None = None
    fault_types: Sequence[str] | None = None
    _choices: dict[str, _Choice] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nodes = [n for n in self.node_names if is_name(n)]
        if not nodes:
            raise ConstraintError("no valid node names to build the plan constraint from")
        groups = groups_from_nodes(nodes) if self.groups is None else list(self.groups)
        groups = [g for g in groups if is_name(g)]
        prims = list(PRIMITIVES) if self.primitives is None else list(self.primitives)
        unknown = [p for p in prims if p not in PRIMITIVES]
        faults = list(FAULT_NAMES) if self.fault_types is None else list(self.fault_types)
        bad_faults = [f for f in faults if f not in FAULT_NAMES]
        if unknown or bad_faults or not prims or not faults:
            raise ConstraintError(f"unknown primitives {unknown} or fault types {bad_faults}")
        if not groups:  # no group-taking primitive can be spelled
            prims = [
                p for p in prims if all(q.type is not ParamType.GROUP for q in PRIMITIVES[p].params)
            ]
        if not 0 <= self.min_calls <= self.max_calls or self.max_calls < 1:
            raise ConstraintError(f"bad call bounds {self.min_calls}..{self.max_calls}")
        head = [DIAGNOSE] if self.require_diagnosis else [DIAGNOSE, *prims]
        self._choices = {
            "node": _Choice(nodes),
            "group": _Choice(groups or ["-"]),
            "prim": _Choice(prims),
            "head": _Choice(head),
            "fault": _Choice(faults),
        }
        for spec in PRIMITIVES.values():
            for p in spec.params:
                kind = self._kind(p)
                if kind not in self._choices:
                    opts = (
                        p.choices
                        if p.type is ParamType.RESOURCE
                        else map(str, range(p.lo, p.hi + 1))
                    )
                    self._choices[kind] = _Choice(opts)

    @staticmethod
    def _kind(param: Any) -> str:
        if param.type is ParamType.INT:
            return f"int:{param.lo}:{param.hi}"
        if param.type is ParamType.RESOURCE:
            return "res:" + ",".join(param.choices)
        return "node" if param.type is ParamType.NODE else "group"

    def initial(self) -> State:
        """The state before any character."""
        return (0, False, (("choice", "head"),), "")

    def _args(self, name: str) -> tuple[Slot, ...]:
        if name == DIAGNOSE:
            kinds = ["fault", "node"]
        else:
            kinds = [self._kind(p) for p in PRIMITIVES[name].params]
        slots: list[Slot] = [("lit", "(")]
        for i, kind in enumerate(kinds):
            if i:
                slots.append(("lit", ARG_SEP))
            slots.append(("choice", kind))
        slots.append(("lit", ")"))
        return tuple(slots)

    def _close_choice(self, state: State) -> State | None:
        """The state after the first pending slot (a choice) is complete, or ``None``."""
        calls, diagnosed, pending, partial = state
        kind = pending[0][1]
        if partial not in self._choices[kind].options:
            return None
        rest = pending[1:]
        if kind in ("head", "prim"):
            if partial == DIAGNOSE:
                diagnosed = True
            else:
                calls += 1
            rest = self._args(partial) + rest
        return (calls, diagnosed, rest, "")

    def feed(self, state: State, char: str) -> State | None:
        """The state after one more character, or ``None`` if no plan continues that way."""
        calls, diagnosed, pending, partial = state
        if not pending:  # between statements: only "; " and a primitive may follow
            if calls >= self.max_calls:
                return None
            state = (calls, diagnosed, (("lit", SEP), ("choice", "prim")), "")
            calls, diagnosed, pending, partial = state
        kind, text = pending[0]
        if kind == "lit":
            nxt = partial + char
            if not text.startswith(nxt):
                return None
            if nxt == text:
                return (calls, diagnosed, pending[1:], "")
            return (calls, diagnosed, pending, nxt)
        nxt = partial + char
        if len(nxt) <= MAX_NAME_LENGTH and nxt in self._choices[text].prefixes:
            return (calls, diagnosed, pending, nxt)
        closed = self._close_choice(state)
        return None if closed is None else self.feed(closed, char)

    def feed_text(self, state: State | None, text: str) -> State | None:
        """The state after ``text`` (``None`` stays ``None``)."""
        for char in text:
            if state is None:
                return None
            state = self.feed(state, char)
        return state

    def accepts(self, state: State | None) -> bool:
        """Whether the text read so far is a complete plan of the language."""
        if state is None:
            return False
        calls, diagnosed, pending, _ = state
        if pending:
            return False
        return calls >= self.min_calls and (diagnosed or not self.require_diagnosis)

    def finished(self, state: State) -> bool:
        """Whether the plan can only end here (no character may follow)."""
        return not state[2] and state[0] >= self.max_calls

    def complete(self, state: State) -> str:
        """A shortest text that, appended, turns ``state`` into an accepted plan."""
        out: list[str] = []
        while not self.accepts(state):
            calls, diagnosed, pending, partial = state
            if not pending:
                out.append(SEP)
                state = (calls, diagnosed, (("choice", "prim"),), "")
                continue
            kind, text = pending[0]
            if kind == "lit":
                out.append(text[len(partial) :])
                state = (calls, diagnosed, pending[1:], "")
                continue
            full = self._choices[text].complete(partial)
            out.append(full[len(partial) :])
            closed = self._close_choice((calls, diagnosed, pending, full))
            assert closed is not None
            state = closed
        return "".join(out)

    def is_prefix(self, text: str) -> bool:
        """Whether ``text`` is a prefix of some plan of the language."""
        return self.feed_text(self.initial(), text) is not None

    def recognizes(self, text: str) -> bool:
        """Whether ``text`` is a complete plan of the language."""
        return self.accepts(self.feed_text(self.initial(), text))


def token_strings(tokenizer: Any) -> list[str | None]:
    """The text each token id adds when decoded (``None`` for special / undecodable tokens)."""
    cache = getattr(tokenizer, "_pase_token_strings", None)
    if cache is not None:
        return list(cache)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    size = len(tokenizer)
    raw = tokenizer.convert_ids_to_tokens(list(range(size)))
    out: list[str | None] = []
    for i in range(size):
        if i in special or raw[i] is None:
            out.append(None)
            continue
        text = tokenizer.decode([i], clean_up_tokenization_spaces=False)
        if isinstance(raw[i], str) and raw[i].startswith("\u2581") and not text.startswith(" "):
            text = " " + text  # sentencepiece drops the leading space of a lone token
        out.append(text if text and "\ufffd" not in text else None)
    with contextlib.suppress(AttributeError):  # a tokenizer refusing attributes
        tokenizer._pase_token_strings = tuple(out)
    return out


class _Trie:
    __slots__ = ("children", "ids")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.ids: list[int] = []


def _vocab_trie(tokenizer: Any) -> _Trie:
    cached = getattr(tokenizer, "_pase_vocab_trie", None)
    if isinstance(cached, _Trie):
        return cached
    root = _Trie()
    for i, text in enumerate(token_strings(tokenizer)):
        if text is None or not text.isascii():  # plans are ASCII
            continue
        node = root
        for char in text:
            nxt = node.children.get(char)
            if nxt is None:
                nxt = node.children[char] = _Trie()
            node = nxt
        node.ids.append(i)
    with contextlib.suppress(AttributeError):
        tokenizer._pase_vocab_trie = root
    return root


def eos_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """The token ids that end generation (the tokenizer's EOS and the model's)."""
    ids: set[int] = set()
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    cfg = getattr(model, "generation_config", None)
    extra = getattr(cfg, "eos_token_id", None)
    if isinstance(extra, int):
        ids.add(extra)
    elif isinstance(extra, (list, tuple)):
        ids.update(int(x) for x in extra)
    if not ids:
        raise ConstraintError("the tokenizer has no EOS token")
    return sorted(ids)


class TokenConstraint:
    """Token-level view of a :class:`PlanRecognizer` for one tokenizer.

    Use :meth:`allowed` in a manual decoding loop (state in, token ids out, then
    :meth:`advance`), or :meth:`prefix_allowed_tokens_fn` with ``model.generate``.
    """

    def __init__(self, recognizer: PlanRecognizer, tokenizer: Any, model: Any = None) -> None:
        self.recognizer = recognizer
        self.tokenizer = tokenizer
        self.strings = token_strings(tokenizer)
        self.trie = _vocab_trie(tokenizer)
        self.eos = eos_ids(tokenizer, model)
        self._memo: dict[State, list[int]] = {}

    def allowed(self, state: State) -> list[int]:
        """Token ids that keep the text a prefix of some plan (EOS where it may end)."""
        hit = self._memo.get(state)
        if hit is not None:
            return hit
        rec = self.recognizer
        out: list[int] = []
        if not rec.finished(state):
            stack: list[tuple[_Trie, State]] = [(self.trie, state)]
            while stack:
                node, st = stack.pop()
                for char, child in node.children.items():
                    nxt = rec.feed(st, char)
                    if nxt is not None:
                        out.extend(child.ids)
                        if child.children:
                            stack.append((child, nxt))
        if rec.accepts(state):
            out.extend(self.eos)
        out.sort()
        if not out:
            raise ConstraintError("the tokenizer's vocabulary cannot continue the plan")
        if len(self._memo) < 100_000:
            self._memo[state] = out
        return out

    def advance(self, state: State, token_id: int) -> State:
        """The state after ``token_id`` (which must be allowed and not EOS)."""
        text = self.strings[token_id]
        nxt = None if text is None else self.recognizer.feed_text(state, text)
        if nxt is None:
            raise ConstraintError(f"token {token_id} ({text!r}) is not allowed here")
        return nxt

    def state_of(self, text: str) -> State | None:
        """The state after the plan text ``text`` (``None`` if not a valid prefix)."""
        return self.recognizer.feed_text(self.recognizer.initial(), text)

    def prefix_allowed_tokens_fn(
        self, prompt_lengths: Sequence[int]
    ) -> Callable[[int, Any], list[int]]:
        """A ``prefix_allowed_tokens_fn`` for ``model.generate``.

        Args:
            prompt_lengths: per batch row, the length of the (padded) prompt, so that the
                generated tokens are ``input_ids[prompt_len:]``.
        """

        def fn(batch_id: int, input_ids: Any) -> list[int]:
            ids = [int(x) for x in input_ids[prompt_lengths[batch_id] :]]
            state: State | None = self.recognizer.initial()
            for i in ids:
                if i in self.eos:
                    return self.eos
                assert state is not None
                state = self.advance(state, i)
            assert state is not None
            return self.allowed(state)

        return fn
