"""Table 1: PASE's ablation study, from the harness's records and adaptation streams.

The rows are the whole loop and its six variants (``agents/pase_full/agent.py``); the columns
are the paper's (fault detection F1, MTTR, safety score, adaptation steps) plus safe success,
each mean ± std over seeds of the ``paper`` suite, and the adaptation episodes of each
variant's stream (``pase-bench adapt``; one stream seed, so one number). The paper's own
figures are printed beside ours: they are not targets.

    pase-bench table1 --results runs/table1.jsonl [--adapt runs/adapt-table1.jsonl] --out DIR
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pase_gym.harness.adaptation import adaptation_episodes, switch_of
from pase_gym.harness.metrics import Aggregate, summarise
from pase_gym.harness.records import Record

#: agent name -> the paper's row label, in the paper's order
VARIANTS: dict[str, str] = {
    "pase_full": "PASE (Full)",
    "pase_no_engine": "w/o Plan Synthesis Engine",
    "pase_no_world_model": "w/o Neural-Symbolic World Model",
    "pase_no_mpo": "w/o Meta-Prompt Optimizer",
    "pase_description_only": "Semantic Description Only",
    "pase_no_verify": "Direct Execution (No Verify)",
    "pase_fixed_template": "Fixed Prompt Template",
}
#: the paper's Table 1 (F1, MTTR s, safety score, adaptation steps; mean, std), for reference
PAPER: dict[str, tuple[tuple[float, float], ...]] = {
    "pase_full": ((0.942, 0.021), (72.3, 8.1), (0.89, 0.05), (15, 3)),
    "pase_no_engine": ((0.918, 0.032), (85.1, 10.2), (0.78, 0.09), (42, 7)),
    "pase_no_world_model": ((0.938, 0.022), (97.8, 12.4), (0.65, 0.12), (18, 4)),
    "pase_no_mpo": ((0.926, 0.024), (89.4, 10.7), (0.82, 0.07), (38, 6)),
    "pase_description_only": ((0.911, 0.029), (102.5, 11.8), (0.71, 0.10), (27, 5)),
    "pase_no_verify": ((0.940, 0.022), (76.5, 8.9), (0.58, 0.14), (16, 3)),
    "pase_fixed_template": ((0.928, 0.027), (94.7, 11.2), (0.79, 0.09), (65, 12)),
}
METRICS = ("detection_f1", "mttr", "safety_score", "safe_success")


def _cell(a: Aggregate, digits: int) -> str:
    if a.mean is None:
        return "n/a"
    if a.std is None or a.n < 2:
        return f"{a.mean:.{digits}f}"
    return f"{a.mean:.{digits}f} ± {a.std:.{digits}f}"


def _paper(pair: tuple[float, float], digits: int) -> str:
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def build(
    records: Sequence[Record], adapt_rows: Sequence[dict[str, Any]] = ()
) -> dict[str, dict[str, Any]]:
    """Per variant present in ``records``: its metrics (as :class:`Aggregate` dicts), its
    seeds and episodes, and its adaptation episodes (``None``: never; absent: no stream)."""
    mine = [r for r in records if r["agent"] in VARIANTS]
    if not mine:
        raise ValueError(f"no records of Table 1's agents ({', '.join(VARIANTS)})")
    sums = summarise(mine)
    switch = switch_of(adapt_rows) if adapt_rows else None
    out: dict[str, dict[str, Any]] = {}
    for agent in (a for a in VARIANTS if a in sums):
        row: dict[str, Any] = {m: sums[agent][m].as_dict() for m in METRICS}
        row["episodes"] = sum(1 for r in mine if r["agent"] == agent)
        row["seeds"] = sorted({int(r["seed"]) for r in mine if r["agent"] == agent})
        stream = sorted((r for r in adapt_rows if r["agent"] == agent), key=lambda r: r["position"])
        if stream and switch is not None:
            row["adaptation_episodes"] = adaptation_episodes([r["safe"] for r in stream], switch)
        out[agent] = row
    return out


def _position(row: dict[str, Any]) -> int:
    return int(row["position"])


def markdown(records: Sequence[Record], adapt_rows: Sequence[dict[str, Any]] = ()) -> str:
    """Table 1 in the paper's layout, ours above the paper's for each row."""
    table = build(records, adapt_rows)
    sums = summarise([r for r in records if r["agent"] in table])
    lines = [
        "| Variant | | Fault Detection F1 | MTTR (s) | Safety Score | Adaptation Steps "
        "| Safe success |",
        "|---|---|---|---|---|---|---|",
    ]
    for agent in VARIANTS:
        if agent not in table:  # every row of the paper's table, ours where it was run
            stream = sorted((r for r in adapt_rows if r["agent"] == agent), key=_position)
            adapted = "not run"
            if stream:
                a = adaptation_episodes([r["safe"] for r in stream], switch_of(adapt_rows))
                adapted = "never" if a is None else str(a)
            lines.append(
                f"| {VARIANTS[agent]} (`{agent}`) | ours | not run | not run | not run | "
                f"{adapted} | not run |"
            )
        else:
            s, row = sums[agent], table[agent]
            if "adaptation_episodes" in row:
                a = row["adaptation_episodes"]
                adapted = "never" if a is None else str(a)
            else:
                adapted = "not run"
            lines.append(
                f"| {VARIANTS[agent]} (`{agent}`) | ours | {_cell(s['detection_f1'], 2)} | "
                f"{_cell(s['mttr'], 1)} | {_cell(s['safety_score'], 2)} | {adapted} | "
                f"{_cell(s['safe_success'], 2)} |"
            )
        f1, mttr, safety, steps = PAPER[agent]
        lines.append(
            f"| | paper | {_paper(f1, 3)} | {_paper(mttr, 1)} | {_paper(safety, 2)} | "
            f"{steps[0]:.0f} ± {steps[1]:.0f} | — |"
        )
    return "\n".join(lines) + "\n"


def write(records: Sequence[Record], adapt_rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``table1.md`` and ``table1.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    table = build(records, adapt_rows)
    seeds = sorted({s for row in table.values() for s in row["seeds"]})
    head = (
        f"`paper` suite, seeds {seeds}; mean ± std over seeds. Adaptation steps: episodes "
        "from the first unseen fault until the rolling safe-success rate holds at 0.8 "
        "(`pase-bench adapt`). The paper's row under each of ours is its Table 1, for "
        "reference.\n\n"
    )
    (out / "table1.md").write_text(head + markdown(records, adapt_rows))
    (out / "table1.json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return [out / "table1.md", out / "table1.json"]


__all__ = ["METRICS", "PAPER", "VARIANTS", "build", "markdown", "write"]
