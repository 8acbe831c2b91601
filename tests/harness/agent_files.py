"""Agents written to a file from a test, the way a submission arrives (by path)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_agent(
    path: Path,
    act: str,
    *,
    name: str = "hostile",
    reset: str = "pass",
    header: str = "",
    attributes: str = "",
) -> str:
    """Write ``class Agent`` to ``path`` and return the path as a spec.

    ``act`` and ``reset`` are the bodies of those methods (dedented here), ``header`` the
    module's code before the class, ``attributes`` more class-level lines.
    """
    body = [
        textwrap.dedent(header).strip("\n"),
        "class Agent:",
        f"    name = {name!r}",
        textwrap.indent(textwrap.dedent(attributes).strip("\n"), "    "),
        "    def reset(self, seed):",
        textwrap.indent(textwrap.dedent(reset).strip("\n"), "        "),
        "    def act(self, observation, info):",
        textwrap.indent(textwrap.dedent(act).strip("\n"), "        "),
    ]
    path.write_text("\n".join(line for line in body if line.strip()) + "\n", encoding="utf-8")
    return str(path)
