"""Versioned prompt templates of PASE's Plan Synthesis Engine.

A prompt carries, in this order: the task, the primitive library (one compact signature per
primitive with its safety class), the plan grammar, the relevant slice of the topology (the
nodes the scene description D_t mentions and the hosts they run on), the fault types, and D_t
itself. Two templates: ``full`` (:data:`PROMPT_VERSION`, everything above, for an untuned model)
and ``compact`` (:data:`COMPACT_VERSION`, the grammar line and a condensed D_t, for a model
fine-tuned on plans: a fraction of the tokens). Bump a version whenever its text
changes: fine-tuned weights and cached results are only comparable under the same version.
:func:`split_prompt` cuts a prompt into its incident-independent prefix (whose key/value cache
can be reused across incidents) and the rest. Pure Python, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.primitives import list_primitives

PROMPT_VERSION = "pse-v1"
COMPACT_VERSION = "pse-c1"
TEMPLATES = ("full", "compact")
_MARK = "\u0000INCIDENT\u0000"

SYSTEM = (
    "You are PASE, a self-healing agent for an OpenStack cloud. Read the incident, name the "
    "fault and the faulty node, and write a short recovery plan."
)

GRAMMAR_SUMMARY = (
    "Write exactly one line: Diagnose(fault_type, node) then up to 4 primitive calls, "
    "separated by '; '. Use only node names from the incident. Form (names are placeholders): "
    "Diagnose(process_hang, <node>); KillProcess(<node>); Restart(<node>)"
)

_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@:-]*")
_HOST_RE = re.compile(
    r"([A-Za-z0-9_][A-Za-z0-9_.@:-]*) \(([A-Za-z0-9_.@:-]+) on ([A-Za-z0-9_.@:-]+)"
)


def render_primitives() -> str:
    """One line per primitive: ``Name(param: type, ...) [safety] summary``."""
    lines = []
    for p in list_primitives():
        lines.append(f"- {p['signature']} [{p['safety']}] {p['summary']}")
    return "\n".join(lines)


def topology_slice(description: str, node_names: Iterable[str]) -> list[str]:
    """Nodes of ``node_names`` that ``description`` mentions, then the hosts they run on.

    Each entry is ``name`` or ``name (role on host)`` where D_t says so; order of first mention.
    """
    known = set(node_names)
    placed = {m.group(1): (m.group(2), m.group(3)) for m in _HOST_RE.finditer(description)}
    seen: dict[str, None] = {}
    for word in _WORD_RE.findall(description):
        word = word.rstrip(".:")
        if word in known:
            seen[word] = None
    for role_host in placed.values():
        if role_host[1] in known:
            seen.setdefault(role_host[1], None)
    out = []
    for name in seen:
        if name in placed:
            role, host = placed[name]
            out.append(f"{name} ({role} on {host})")
        else:
            out.append(name)
    return out


def _render_static(template: str) -> list[str]:
    """The incident-independent head of the user message."""
    if template == "full":
        return [
            f"[prompt {PROMPT_VERSION}]",
            "Recovery primitives:",
            render_primitives(),
            "Plan grammar:",
            GRAMMAR_SUMMARY,
            "Fault types: " + ", ".join(FAULT_NAMES),
        ]
    if template == "compact":
        return [f"[prompt {COMPACT_VERSION}]", GRAMMAR_SUMMARY]
    raise ValueError(f"unknown prompt template {template!r}; expected one of {TEMPLATES}")


_AFFECTED_RE = re.compile(r"Affected components: .*?\)\.(?: |$)")


def condense_description(description: str) -> str:
    """D_t without its "Affected components" sentence (the roles, hosts and dependencies of
    the alarmed nodes): what the compact template shows, about half the tokens."""
    return _AFFECTED_RE.sub("", description.strip()).strip()


def _render_dynamic(
    description: str,
    node_names: Sequence[str],
    groups: Sequence[str] | None,
    template: str = "full",
) -> list[str]:
    if template == "compact":
        return ["Incident:", condense_description(description), "Plan:"]
    nodes = topology_slice(description, node_names)
    parts = ["Relevant nodes: " + (", ".join(nodes) if nodes else "(none named)")]
    if groups:
        parts.append("Groups: " + ", ".join(groups))
    return [*parts, "Incident:", description.strip(), "Plan:"]


def render_user(
    description: str,
    node_names: Sequence[str],
    groups: Sequence[str] | None = None,
    template: str = "full",
) -> str:
    """The user message: (library, grammar, fault types,) topology slice and D_t."""
    static = _render_static(template)
    return "\n".join(static + _render_dynamic(description, node_names, groups, template))


def split_prompt(
    tokenizer: Any,
    description: str,
    node_names: Sequence[str],
    groups: Sequence[str] | None = None,
    template: str = "full",
) -> tuple[str, str]:
    """The prompt as ``(prefix, suffix)``: ``prefix`` is the same for every incident under one
    tokenizer and template (so its key/value cache can be computed once and reused) and
    ``prefix + suffix == build_prompt(...)``."""
    user = "\n".join(_render_static(template)) + "\n" + _MARK
    text = _wrap(tokenizer, user)
    head, _, tail = text.partition(_MARK)
    dynamic = "\n".join(_render_dynamic(description, node_names, groups, template))
    return head, dynamic + tail


def _wrap(tokenizer: Any, user: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    return f"{SYSTEM}\n\n{user}\n"


def build_prompt(
    tokenizer: Any,
    description: str,
    node_names: Sequence[str],
    groups: Sequence[str] | None = None,
    template: str = "full",
) -> str:
    """The full prompt text; uses the tokenizer's chat template when it has one.

    ``template`` is ``"full"`` (:data:`PROMPT_VERSION`: the primitive library, the fault
    types and the topology slice in context, for an untuned model) or ``"compact"``
    (:data:`COMPACT_VERSION`: the grammar line and D_t without its "Affected components"
    sentence, for a model fine-tuned on plans; the constraint still supplies the vocabulary).
    """
    head, tail = split_prompt(tokenizer, description, node_names, groups, template)
    return head + tail
