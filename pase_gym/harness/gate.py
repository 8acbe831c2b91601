"""Score gates: does a run score worse than a stored baseline, beyond seed noise?

A baseline (``pase-bench gate --write-baseline FILE --results RUN.jsonl``) stores, per agent
and deterministic metric, the per-seed values of a run, with the suite, its scenarios and
seeds, and the package version. ``pase-bench gate --baseline FILE --results RUN.jsonl``
compares a new run with it, metric by metric, in each metric's own direction:

* with at least two seeds on both sides and some spread: a one-sided **Welch t-test** of
  "the run is worse" (scipy), at significance ``alpha`` (0.05), *and* a worsening of the mean
  of at least ``min_effect`` (absolute for shares in [0, 1], relative to the baseline's mean for
  the other metrics: 0.05 = 5 percentage points or 5%);
* otherwise (one seed, or no spread: the episodes are seeded, so a deterministic agent gives
  the same numbers every time): any worsening of at least ``min_effect`` is a regression.

Exit status of the command: 0 nothing regressed, 1 something did (with a table: agent, metric,
baseline ± interval, now ± interval, p-value, verdict), 2 bad input (another suite or version,
a run that misses episodes of the baseline, a malformed file).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pase_gym import __version__
from pase_gym.errors import ResultsError
from pase_gym.harness.metrics import DETERMINISTIC, METRICS, OPTIONAL
from pase_gym.harness.records import Record

FORMAT = 1
ALPHA = 0.05
MIN_EFFECT = 0.05


def per_seed(records: Sequence[Record]) -> dict[str, dict[str, list[float | None]]]:
    """agent -> metric -> the metric per seed (seeds in order); an optional metric the agent
    has on no seed (the feasibility AUC of an agent that verifies nothing) is left out."""
    by_agent: dict[str, dict[int, list[Record]]] = {}
    for r in records:
        by_agent.setdefault(r["agent"], {}).setdefault(int(r["seed"]), []).append(r)
    out: dict[str, dict[str, list[float | None]]] = {}
    for agent, seeds in sorted(by_agent.items()):
        values = {
            name: [METRICS[name].compute(seeds[s]) for s in sorted(seeds)] for name in DETERMINISTIC
        }
        out[agent] = {
            name: v
            for name, v in values.items()
            if name not in OPTIONAL or any(x is not None for x in v)
        }
    return out


def _episode(record: Record) -> str:
    return f"{record['agent']}|{record['scenario']}|{record['seed']}"


def _episodes(records: Sequence[Record]) -> list[str]:
    return sorted(_episode(r) for r in records)


def make_baseline(records: Sequence[Record], command: str = "") -> dict[str, Any]:
    """A baseline of ``records`` (one suite)."""
    suites = sorted({r["suite"] for r in records})
    if len(suites) != 1:
        raise ResultsError(f"a baseline is of one suite, found {', '.join(suites) or 'none'}")
    return {
        "format": FORMAT,
        "suite": suites[0],
        "pase_gym": __version__,
        "command": command,
        "episodes": _episodes(records),
        "values": per_seed(records),
    }


def load_baseline(path: Path) -> dict[str, Any]:
    """A stored baseline.

    Raises:
        ResultsError: unreadable, not a baseline, or of another format.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable baseline ({exc})") from None
    keys = {"format", "suite", "pase_gym", "episodes", "values"}
    if not isinstance(data, dict) or not keys <= set(data):
        raise ResultsError(f"{path}: not a baseline (expected the keys {', '.join(sorted(keys))})")
    if data["format"] != FORMAT:
        raise ResultsError(f"{path}: baseline format {data['format']!r}, expected {FORMAT}")
    return data


@dataclass(frozen=True)
class Comparison:
    """One agent x metric, baseline against now."""

    agent: str
    metric: str
    before: list[float]
    now: list[float]
    p_value: float | None
    worse_by: float  # how much worse the mean is, in the metric's direction (absolute or relative)
    regressed: bool

    @staticmethod
    def _cell(xs: list[float]) -> str:
        if not xs:
            return "n/a"
        mean = sum(xs) / len(xs)
        if len(xs) < 2:
            return f"{mean:.3f}"
        spread = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        return f"{mean:.3f} ± {spread:.3f}"

    def row(self) -> str:
        """A Markdown table row."""
        p = "—" if self.p_value is None else f"{self.p_value:.3g}"
        verdict = "**regressed**" if self.regressed else "ok"
        return (
            f"| {self.agent} | {self.metric} | {self._cell(self.before)} | "
            f"{self._cell(self.now)} | {p} | {verdict} |"
        )


def _worse_by(metric: str, before: list[float], now: list[float]) -> float:
    b, n = sum(before) / len(before), sum(now) / len(now)
    sign = -1.0 if METRICS[metric].higher_is_better else 1.0
    change = sign * (n - b)
    if METRICS[metric].high == 1.0:  # a share: in percentage points
        return change
    return change / abs(b) if b else (math.inf if change > 0 else 0.0)


def compare(
    baseline: dict[str, Any],
    records: Sequence[Record],
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> list[Comparison]:
    """Compare a run with a baseline (see the module docstring).

    Raises:
        ResultsError: a run of another suite or version, or one that misses episodes of the
            baseline.
    """
    suites = sorted({r["suite"] for r in records})
    if suites != [baseline["suite"]]:
        raise ResultsError(
            f"the baseline is of suite {baseline['suite']!r}, the run of {', '.join(suites)}"
        )
    versions = sorted({r["versions"]["pase_gym"] for r in records})
    if versions != [baseline["pase_gym"]]:
        raise ResultsError(
            f"the baseline was made with pase-gym {baseline['pase_gym']}, the run with "
            f"{', '.join(versions)}: rebuild the baseline for this version"
        )
    missing = sorted(set(baseline["episodes"]) - set(_episodes(records)))
    if missing:
        raise ResultsError(
            f"the run misses {len(missing)} episode(s) of the baseline (a truncated run?), "
            f"e.g. {missing[0]}"
        )
    from scipy import stats as scipy_stats

    wanted = set(baseline["episodes"])
    now_values = per_seed([r for r in records if _episode(r) in wanted])
    out: list[Comparison] = []
    for agent, metrics in sorted(baseline["values"].items()):
        for metric, raw in sorted(metrics.items()):
            if metric not in METRICS:
                continue
            before = [float(v) for v in raw if v is not None]
            now = [float(v) for v in now_values.get(agent, {}).get(metric, []) if v is not None]
            if not before:
                continue  # undefined in the baseline: nothing to fall from
            if not now:  # defined before, undefined now (no recovered episode for an MTTR)
                out.append(Comparison(agent, metric, before, now, None, math.inf, True))
                continue
            worse = _worse_by(metric, before, now)
            p: float | None = None
            spread = len(set(before)) > 1 or len(set(now)) > 1
            if len(before) >= 2 and len(now) >= 2 and spread:
                worse_side = "less" if METRICS[metric].higher_is_better else "greater"
                test = scipy_stats.ttest_ind(now, before, equal_var=False, alternative=worse_side)
                p = float(test.pvalue)
                regressed = worse >= min_effect and p < alpha
            else:
                regressed = worse >= min_effect
            out.append(Comparison(agent, metric, before, now, p, worse, regressed))
    return out


def table(comparisons: Sequence[Comparison], only_regressions: bool = True) -> str:
    """The comparisons as a Markdown table (the regressions only, by default)."""
    rows = [c for c in comparisons if c.regressed or not only_regressions]
    lines = [
        "| agent | metric | baseline (mean ± std over seeds) | now | p (Welch, one-sided) "
        "| verdict |",
        "|---|---|---|---|---|---|",
        *(c.row() for c in rows),
    ]
    return "\n".join(lines) + "\n"
