"""Reference results of the built-in scenarios: the oracle's plan and the MTTR it achieves.

Every built-in scenario file documents, in its header comment and in its ``reference`` block,
what the oracle planner does on it for one seed. The test suite re-runs the oracle and checks
both; ``pase-gym scenarios --refresh`` rewrites them after an intended change of dynamics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pase_gym.episode import Episode, run_oracle
from pase_gym.scenarios import ScenarioSpec, builtin_dir, load_scenario

HEADER_RE = re.compile(r"^# Oracle plan \(seed (\d+)\): (.*)\n# Oracle MTTR: (\d+) s\n", re.M)


@dataclass(frozen=True)
class Reference:
    """The oracle's outcome on one scenario and seed."""

    seed: int
    plan: str
    mttr: int | None


def oracle_reference(spec: ScenarioSpec, seed: int = 0) -> Reference:
    """Run the oracle on ``spec`` with ``seed`` until recovery (or the budget)."""
    episode = Episode(spec, seed)
    episode.reset()
    plans = run_oracle(episode)
    return Reference(seed, " | ".join(str(p) for p in plans), episode.mttr)


def documented(path: Path) -> tuple[Reference | None, Reference | None]:
    """(header comment, reference block) of a scenario file, ``None`` where missing."""
    text = path.read_text(encoding="utf-8")
    match = HEADER_RE.search(text)
    header = Reference(int(match[1]), match[2], int(match[3])) if match else None
    spec = load_scenario(path)
    block = (
        Reference(spec.reference.seed, spec.reference.plan, spec.reference.mttr)
        if spec.reference
        else None
    )
    return header, block


def refresh(path: Path, seed: int = 0) -> Reference:
    """Recompute and rewrite the header and reference block of one scenario file."""
    spec = load_scenario(path)
    ref = oracle_reference(spec, seed)
    if ref.mttr is None:
        raise RuntimeError(f"{path}: the oracle does not recover this scenario with seed {seed}")
    text = path.read_text(encoding="utf-8")
    text = HEADER_RE.sub("", text)
    text = re.sub(r"\nreference:\n(  .*\n)*", "\n", text).rstrip("\n") + "\n"
    header = f"# Oracle plan (seed {seed}): {ref.plan}\n# Oracle MTTR: {ref.mttr} s\n"
    lines = text.splitlines(keepends=True)
    # the header goes after the leading comment block
    at = 0
    while at < len(lines) and lines[at].startswith("#"):
        at += 1
    lines.insert(at, header)
    body = "".join(lines)
    body += f'reference:\n  seed: {seed}\n  plan: "{ref.plan}"\n  mttr: {ref.mttr}\n'
    path.write_text(body, encoding="utf-8")
    return ref


def refresh_all(seed: int = 0) -> dict[str, Reference]:
    """Refresh every built-in scenario file (a maintainer's command)."""
    return {p.stem: refresh(p, seed) for p in sorted(builtin_dir().glob("*.yaml"))}
