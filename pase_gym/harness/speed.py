"""Speed gates: pytest-benchmark results against a stored baseline, machine speed factored out.

Every figure is divided by the median of ``test_reference_workload`` measured in the same run
(``benchmarks/test_bench_reference.py``: numpy and Python work with no pase-gym code), so a
slower or busier machine, which slows both, changes no ratio, while a slowdown of pase-gym's
own code does. ``pase-bench speed-gate --baseline FILE --results RUN.json`` fails (exit 1)
when a benchmark's ratio grew by more than ``threshold`` (1.5: 50% slower than the baseline,
relative to the reference); ``--write-baseline FILE`` stores a run's ratios.

Runs come from ``pytest benchmarks/ --benchmark-only --benchmark-json RUN.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pase_gym.errors import ResultsError

REFERENCE = "test_reference_workload"
THRESHOLD = 1.5
FORMAT = 1


def medians(path: Path) -> dict[str, float]:
    """Benchmark name -> median seconds, from a pytest-benchmark JSON file.

    Raises:
        ResultsError: unreadable or not a pytest-benchmark file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out = {str(b["name"]): float(b["stats"]["median"]) for b in data["benchmarks"]}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ResultsError(f"{path}: not a pytest-benchmark JSON file ({exc})") from None
    if not out:
        raise ResultsError(f"{path}: no benchmarks in it")
    return out


def ratios(times: dict[str, float], where: str) -> dict[str, float]:
    """Each benchmark's median over the reference workload's.

    Raises:
        ResultsError: the run has no reference workload.
    """
    reference = times.get(REFERENCE)
    if not reference or reference <= 0:
        raise ResultsError(
            f"{where}: no {REFERENCE} in the run (run benchmarks/test_bench_reference.py with "
            "the others): without it machine speed cannot be factored out"
        )
    return {name: t / reference for name, t in sorted(times.items()) if name != REFERENCE}


def make_baseline(path: Path, command: str = "") -> dict[str, Any]:
    """A speed baseline of the run in ``path``."""
    times = medians(path)
    return {
        "format": FORMAT,
        "command": command,
        "reference_s": times.get(REFERENCE),
        "ratios": ratios(times, str(path)),
    }


@dataclass(frozen=True)
class SpeedCheck:
    """One benchmark, baseline ratio against now."""

    name: str
    before: float
    now: float
    threshold: float

    @property
    def slowdown(self) -> float:
        """How much slower than the baseline, relative to the reference (1.0: the same)."""
        return self.now / self.before

    @property
    def regressed(self) -> bool:
        """Slower than the threshold allows."""
        return self.slowdown > self.threshold


def compare(baseline: dict[str, Any], path: Path, threshold: float = THRESHOLD) -> list[SpeedCheck]:
    """Check a run against a baseline (benchmarks new in the run are not gated yet).

    Raises:
        ResultsError: a malformed baseline, a run without the reference, or a run that lacks
            a benchmark of the baseline.
    """
    if not isinstance(baseline, dict) or baseline.get("format") != FORMAT:
        raise ResultsError("not a speed baseline of format 1")
    now = ratios(medians(path), str(path))
    missing = sorted(set(baseline["ratios"]) - set(now))
    if missing:  # a benchmark dropped or renamed would otherwise escape the gate
        raise ResultsError(
            f"{path}: {len(missing)} benchmark(s) of the baseline are not in the run, e.g. "
            f"{missing[0]}: run the baseline's benchmarks (its command) or rebuild the baseline"
        )
    common = sorted(set(now) & set(baseline["ratios"]))
    return [SpeedCheck(n, float(baseline["ratios"][n]), now[n], threshold) for n in common]


def table(checks: Sequence[SpeedCheck], only_regressions: bool = True) -> str:
    """The checks as a Markdown table."""
    lines = [
        "| benchmark | baseline (x reference) | now (x reference) | slowdown | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for c in checks:
        if c.regressed or not only_regressions:
            verdict = "**slower**" if c.regressed else "ok"
            lines.append(
                f"| {c.name} | {c.before:.3g} | {c.now:.3g} | {c.slowdown:.2f}x | {verdict} |"
            )
    return "\n".join(lines) + "\n"
