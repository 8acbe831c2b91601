"""Recovery plans: typed primitive calls, their text grammar and their structured (JSON) form.

A plan is an optional diagnosis followed by calls to the recovery primitives of
:mod:`pase_gym.sim.primitives`. It has two spellings that round-trip exactly: the text read by
:func:`parse_plan` (see :data:`PLAN_GRAMMAR`), e.g.
``Diagnose(memory_leak, nova-compute-3); Restart(nova-compute-3)``, and the JSON-able mapping of
:meth:`Plan.to_structured`. Every failure raises :class:`~pase_gym.errors.PlanError` saying
where (a character offset in text, a step index in structured plans), what was expected and
what was found. The argument checks live in :mod:`pase_gym.sim.plan_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pase_gym.errors import PlanError
from pase_gym.sim.plan_checks import (
    DIAGNOSE,
    IDENT_RE,
    Value,
    bind,
    check_arg,
    checked_mapping,
    diag_params,
    expected_text,
    is_int_literal,
    params_of,
    plan_error,
    show_value,
    suggest,
    validate_args,
)
from pase_gym.sim.plan_checks import MAX_NAME_LENGTH as MAX_NAME_LENGTH
from pase_gym.sim.primitives import PRIMITIVES, Param, ParamType, PrimitiveSpec

MAX_STEPS = 64  # most primitive calls in a plan
MAX_TEXT_LENGTH = 20_000  # longest plan text accepted, in characters

PLAN_GRAMMAR = """\
plan       = [ statement ] { separator [ statement ] } ;
separator  = ";" | newline ;
statement  = name "(" [ arg { "," arg } ] ")" ;  (* a primitive name, or Diagnose *)
arg        = [ param "=" ] value ;   (* positional arguments before keyword ones *)
value      = integer | identifier | "'" value "'" | '"' value '"' ;
integer    = [ "+" | "-" ] digit { digit } ;
identifier = ( letter | digit | "_" ) { letter | digit | "_" | "." | "@" | ":" | "-" } ;
comment    = "#" { any character but newline } ;  (* ignored, like blanks and tabs *)
(* Diagnose(fault_type, node) may only be the first statement, at most once. *)"""

_WORD_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_WORD_CHARS = _WORD_START | frozenset(".@:-")


@dataclass(frozen=True)
class Call:
    """One call of a recovery primitive; validated on construction.

    Attributes:
        name: the primitive's name, a key of :data:`~pase_gym.sim.primitives.PRIMITIVES`.
        args: positional values in the spec's parameter order (``int`` for INT parameters).
    """

    name: str
    args: tuple[Value, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or self.name not in PRIMITIVES:
            hint = suggest(self.name, list(PRIMITIVES))
            raise plan_error(
                "unknown primitive" + hint, None, "a primitive name", show_value(self.name)
            )
        validate_args(self.name, self.args)

    def spec(self) -> PrimitiveSpec:
        """The primitive's spec."""
        return PRIMITIVES[self.name]

    def kwargs(self) -> dict[str, Value]:
        """The arguments by parameter name."""
        return dict(zip(self.spec().param_names(), self.args, strict=True))

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True)
class Diagnosis:
    """The agent's claim of which fault struck which node; validated on construction.

    Attributes:
        fault_type: a registered fault type (:func:`~pase_gym.sim.faults.fault_names`).
        node: the node blamed.
    """

    fault_type: str
    node: str

    def __post_init__(self) -> None:
        validate_args(DIAGNOSE, (self.fault_type, self.node))

    def __str__(self) -> str:
        return f"{DIAGNOSE}({self.fault_type}, {self.node})"


@dataclass(frozen=True)
class Plan:
    """A recovery plan: an optional diagnosis and at most :data:`MAX_STEPS` calls.

    ``len(plan)`` counts the calls only, so a plan with a diagnosis and no calls is falsy.

    Attributes:
        steps: the primitive calls, in execution order (a list is turned into a tuple).
        diagnosis: the fault claimed, or ``None``.
    """

    steps: tuple[Call, ...]
    diagnosis: Diagnosis | None = None

    def __post_init__(self) -> None:
        steps: object = self.steps
        if isinstance(steps, list):
            object.__setattr__(self, "steps", steps := tuple(steps))
        if not isinstance(steps, tuple) or not all(isinstance(s, Call) for s in steps):
            raise plan_error("bad steps", None, "a tuple of Call", show_value(steps))
        if len(steps) > MAX_STEPS:
            raise plan_error("plan too long", None, f"at most {MAX_STEPS} steps", f"{len(steps)}")
        if self.diagnosis is not None and not isinstance(self.diagnosis, Diagnosis):
            raise plan_error(
                "bad diagnosis", None, "a Diagnosis or None", show_value(self.diagnosis)
            )

    @classmethod
    def empty(cls) -> Plan:
        """A plan with no diagnosis and no steps."""
        return cls(())

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        head = [] if self.diagnosis is None else [str(self.diagnosis)]
        return "; ".join(head + [str(step) for step in self.steps])

    def to_structured(self) -> dict[str, Any]:
        """The JSON-able form: ``{"diagnosis": {...} | None, "steps": [{"primitive", "args"}]}``."""
        d = self.diagnosis
        return {
            "diagnosis": None if d is None else {"fault_type": d.fault_type, "node": d.node},
            "steps": [{"primitive": s.name, "args": s.kwargs()} for s in self.steps],
        }

    @classmethod
    def from_structured(cls, obj: object) -> Plan:
        """Build and fully validate a plan from :meth:`to_structured`'s form.

        ``diagnosis`` may be omitted, ``None``, a mapping or a :class:`Diagnosis`; ``steps``
        items may be mappings or :class:`Call` instances.

        Raises:
            PlanError: with ``position`` the index of the offending step (``None`` for
                problems with the whole plan or with its diagnosis).
        """
        top = checked_mapping(obj, "plan", ("steps",), ("diagnosis",), None)
        diagnosis = top.get("diagnosis")
        if diagnosis is not None and not isinstance(diagnosis, Diagnosis):
            diag = checked_mapping(diagnosis, "diagnosis", ("fault_type", "node"), (), None)
            diagnosis = Diagnosis(*bind(DIAGNOSE, "diagnosis", diag, None))
        raw = top["steps"]
        if not isinstance(raw, (list, tuple)):
            raise plan_error("'steps' must be a list", None, "a list", show_value(raw))
        if len(raw) > MAX_STEPS:
            raise plan_error(
                "plan too long", MAX_STEPS, f"at most {MAX_STEPS} steps", f"{len(raw)}"
            )
        steps: list[Call] = []
        for i, item in enumerate(raw):
            if isinstance(item, Call):
                steps.append(item)
                continue
            step = checked_mapping(item, f"steps[{i}]", ("primitive", "args"), (), i)
            name = step["primitive"]
            if not isinstance(name, str) or name not in PRIMITIVES:
                hint = suggest(name, list(PRIMITIVES))
                if name == DIAGNOSE:
                    hint = "; put the diagnosis under the 'diagnosis' key"
                raise plan_error(
                    f"steps[{i}]: unknown primitive{hint}", i, "a primitive name", show_value(name)
                )
            where = f"steps[{i}] ({name})"
            names = [p.name for p in params_of(name)]
            args = checked_mapping(step["args"], f"{where} args", (), names, i)
            steps.append(Call(name, bind(name, where, args, i)))
        return cls(tuple(steps), diagnosis)


@dataclass(frozen=True)
class _Tok:
    """A token; ``kind`` is a punctuation character, ``word``, ``signed``, ``quoted``, ``open``
    (an unterminated quote), ``bad`` (a stray character) or ``end``, and ``text`` its source
    text (quotes included)."""

    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    """Split plan text into tokens, dropping blanks and comments; never raises."""
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c, j = text[i], i + 1
        if c in " \t\r\f\v":
            pass
        elif c == "#":
            j = n if (k := text.find("\n", i)) < 0 else k
        elif c in "();,=\n":
            toks.append(_Tok(c, c, i))
        elif c in _WORD_START or c in "+-":
            while j < n and text[j] in _WORD_CHARS:
                j += 1
            toks.append(_Tok("signed" if c in "+-" else "word", text[i:j], i))
        elif c in "'\"":
            while j < n and text[j] not in (c, "\n"):
                j += 1
            closed = j < n and text[j] == c
            j += closed
            toks.append(_Tok("quoted" if closed else "open", text[i:j], i))
        else:
            toks.append(_Tok("bad", c, i))
        i = j
    toks.append(_Tok("end", "", n))
    return toks


def _found(tok: _Tok) -> str:
    return {"end": "end of input", "\n": "end of line"}.get(tok.kind) or show_value(tok.text)


class _Parser:
    """A hand-written parser over :func:`_tokenize`'s tokens; loops only, no recursion."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> str:
        return self.toks[self.i].kind

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += tok.kind != "end"
        return tok

    def unexpected(self, tok: _Tok, expected: str) -> PlanError:
        """The error for meeting ``tok`` where ``expected`` should be."""
        if tok.kind == "open":
            at_end = tok.pos + len(tok.text) >= len(self.text)
            found = "end of input" if at_end else "end of line"
            return plan_error("unterminated quote", tok.pos, f"a closing {tok.text[0]!r}", found)
        empty = expected == "an argument" and tok.kind in (",", ")")
        return plan_error(
            "empty argument" if empty else "syntax error", tok.pos, expected, _found(tok)
        )

    def plan(self) -> Plan:
        steps: list[Call] = []
        diagnosis: Diagnosis | None = None
        while self.peek() != "end":
            if self.peek() in (";", "\n"):
                self.take()
                continue
            tok = self.take()
            if tok.kind != "word":
                raise self.unexpected(tok, "a primitive name")
            name = tok.text
            if name == DIAGNOSE:
                if diagnosis is not None or steps:
                    again = "only one Diagnose allowed"
                    message = again if not steps else "Diagnose must be the first statement"
                    raise plan_error(message, tok.pos, "a primitive name", show_value(name))
                diagnosis = Diagnosis(*map(str, self.args(name, diag_params())))
            elif name in PRIMITIVES:
                if len(steps) >= MAX_STEPS:
                    found = f"step {MAX_STEPS + 1}"
                    raise plan_error("plan too long", tok.pos, f"at most {MAX_STEPS} steps", found)
                steps.append(Call(name, self.args(name, PRIMITIVES[name].params)))
            else:
                hint = suggest(name, [*PRIMITIVES, DIAGNOSE])
                raise plan_error(
                    "unknown primitive" + hint, tok.pos, "a primitive name", show_value(name)
                )
            if self.peek() not in (";", "\n", "end"):
                raise self.unexpected(self.take(), "';' or a new line")
        return Plan(tuple(steps), diagnosis)

    def args(self, name: str, params: tuple[Param, ...]) -> tuple[Value, ...]:
        """Parse ``( arg, ... )`` after the statement's ``name`` and bind it to ``params``."""
        tok = close = self.take()
        if tok.kind != "(":
            raise self.unexpected(tok, "'('")
        values: dict[str, Value] = {}
        names = ", ".join(p.name for p in params)
        keywords, closed = False, self.peek() == ")"
        if closed:
            close = self.take()
        while not closed:
            tok = self.take()
            param: Param | None = None
            if tok.kind == "word" and self.peek() == "=":
                self.take()
                param = next((p for p in params if p.name == tok.text), None)
                if param is None or param.name in values:
                    what = "unknown keyword" if param is None else "argument given twice"
                    raise plan_error(
                        f"{name}: {what}", tok.pos, f"one of {names}", show_value(tok.text)
                    )
                keywords, tok = True, self.take()
            if tok.kind not in ("word", "signed", "quoted"):
                raise self.unexpected(tok, "an argument")
            if param is None:
                if keywords:
                    message = f"{name}: positional argument after keyword argument"
                    raise plan_error(message, tok.pos, "param=value", _found(tok))
                if len(values) >= len(params):
                    message = f"{name}: too many arguments"
                    raise plan_error(
                        message, tok.pos, f"at most {len(params)} ({names})", _found(tok)
                    )
                param = params[len(values)]
            values[param.name] = self.value(name, param, tok)
            sep = self.take()
            if sep.kind == ")":
                close, closed = sep, True
            elif sep.kind != ",":
                raise self.unexpected(sep, "')' or ','")
        for param in params:
            if param.name not in values:
                message = f"{name}: missing argument {param.name!r}"
                raise plan_error(message, close.pos, expected_text(param), "')'")
        return tuple(values[p.name] for p in params)

    def value(self, name: str, param: Param, tok: _Tok) -> Value:
        """Convert and check the value token ``tok`` for ``param``."""
        text = tok.text[1:-1] if tok.kind == "quoted" else tok.text
        is_int = is_int_literal(text)
        if not is_int and IDENT_RE.fullmatch(text) is None:
            message = "empty argument" if not text else f"{name}: invalid value"
            raise plan_error(message, tok.pos, "an integer or identifier", _found(tok))
        if is_int and param.type is not ParamType.INT:
            message = f"{name}: argument {param.name!r} must be a name, not an integer"
            raise plan_error(message, tok.pos, expected_text(param), f"integer {text}")
        value: Value = text
        if is_int:  # more than 18 digits: certainly out of range (and int() might refuse it)
            big = len(text.lstrip("+-").lstrip("0")) > 18
            value = int(text) if not big else (-1 if text[0] == "-" else 1) * 10**18
        check_arg(name, param, value, tok.pos, _found(tok))
        return value


def parse_plan(text: str) -> Plan:
    """Parse plan text (see :data:`PLAN_GRAMMAR`) into a validated :class:`Plan`.

    Args:
        text: e.g. ``"Diagnose(memory_leak, nova-compute-3); Restart(nova-compute-3)"``.

    Returns:
        The plan; ``parse_plan(str(plan)) == plan`` for every valid plan.

    Raises:
        PlanError: for any problem (including a non-str ``text``), with ``position`` the 0-based
            character offset of the offending token and ``expected`` / ``found`` filled in.
    """
    if not isinstance(text, str):
        raise plan_error("plan text must be a str", None, "a str", show_value(text))
    if len(text) > MAX_TEXT_LENGTH:
        expected = f"at most {MAX_TEXT_LENGTH} characters"
        raise plan_error("plan text too long", MAX_TEXT_LENGTH, expected, f"{len(text)} characters")
    return _Parser(text).plan()


def format_plan(plan: Plan) -> str:
    """The canonical text of ``plan``, the same as ``str(plan)``."""
    return str(plan)


def as_plan(action: object) -> Plan:
    """``action`` as a :class:`Plan`: a plan as is, a call as a one-call plan, text parsed.

    Raises:
        PlanError: text that does not parse, or a value of another type.
    """
    if isinstance(action, Plan):
        return action
    if isinstance(action, Call):
        return Plan((action,))
    if isinstance(action, str):
        return parse_plan(action)
    raise PlanError("expected a Plan, a Call or plan text", found=type(action).__name__)
