"""Reports: a Markdown table in the paper's layout, figures, and a tidy DataFrame.

pandas and matplotlib are optional (``pip install -e ".[bench]"``) and imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pase_gym.errors import ResultsError
from pase_gym.harness.metrics import METRICS, OPTIONAL, Aggregate, is_safe_success, summarise
from pase_gym.harness.records import Record, RunStore

BASELINE = "rule_based"


def _fmt(a: Aggregate, digits: int = 2) -> str:
    if a.mean is None:
        return "n/a"
    if a.std is None or a.n < 2:
        return f"{a.mean:.{digits}f}"
    return f"{a.mean:.{digits}f} ± {a.std:.{digits}f}"


def _order(agents: Sequence[str]) -> list[str]:
    """Paper order: PASE-like agents first, then the baselines, unknown agents before the
    floor, the ceiling last."""
    preferred = [
        "pase_full",
        "pase",
        "ifshm",
        "detr_fd",
        "gcn_fr",
        "rule_based",
        "random",
        "oracle",
    ]

    def rank(a: str) -> tuple[float, str]:
        return (preferred.index(a) if a in preferred else 3.5, a)

    return sorted(agents, key=rank)


def markdown_table(records: Sequence[Record], title: str = "") -> str:
    """The paper's Table 2 layout plus the rest of the metrics, one row per agent."""
    summary = summarise(records)
    agents = _order(list(summary))
    truth_agents = {r["agent"] for r in records if r.get("uses_ground_truth")}
    base = summary.get(BASELINE, {}).get("mttr")
    seeds = sorted({int(r["seed"]) for r in records})
    scenarios = sorted({r["scenario"] for r in records})
    per_agent = {a: len({int(r["seed"]) for r in records if r["agent"] == a}) for a in agents}
    fewer = {a: n for a, n in per_agent.items() if n < len(seeds)}
    lines = []
    if title:
        lines += [f"### {title}", ""]
    note = " (fewer for " + ", ".join(f"{a}: {n}" for a, n in fewer.items()) + ")" if fewer else ""
    lines += [
        f"{len(scenarios)} scenarios x {len(seeds)} seeds per agent{note}; mean ± std over "
        "seeds (each seed's metric computed over all its episodes).",
        "",
        "| Model | Fault Detection (F1) | Average Recovery Time (s) | MTTR vs rule-based | "
        "Safe success | Recovered | Unrecovered | Safety score | Plan steps | Cost | "
        "Localization | Compute (ms/decision) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for agent in agents:
        m = summary[agent]
        mttr = m["mttr"]
        change = "—"
        if base and base.mean and mttr.mean is not None and agent != BASELINE:
            change = f"{100.0 * (mttr.mean - base.mean) / base.mean:+.0f}%"
        label = f"{agent} (ground truth)" if agent in truth_agents else agent
        lines.append(
            f"| {label} | {_fmt(m['detection_f1'])} | {_fmt(mttr, 1)} | {change} | "
            f"{_fmt(m['safe_success'])} | {_fmt(m['success_rate'])} | "
            f"{_fmt(m['unrecovered'], 1)} | "
            f"{_fmt(m['safety_score'])} | {_fmt(m['plan_steps'], 1)} | {_fmt(m['cost'], 1)} | "
            f"{_fmt(m['localization'])} | {_fmt(m['compute_ms'], 3)} |"
        )
    verifying = [a for a in agents if summary[a]["feasibility_auc"].mean is not None]
    if verifying:
        lines += [
            "",
            "Feasibility AUC of the agents that verify their plans (their score of each plan "
            "against its dry-run outcome): "
            + ", ".join(f"{a} {_fmt(summary[a]['feasibility_auc'])}" for a in verifying)
            + ".",
        ]
    shown = [
        name
        for name in METRICS
        if name != "compute_ms"
        and (name not in OPTIONAL or any(summary[a][name].mean is not None for a in agents))
    ]
    lines += [
        "",
        "95% intervals (percentile bootstrap of the mean over seeds; inside each metric's range):",
        "",
        "| Model | " + " | ".join(shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for agent in agents:
        cells = []
        for name in shown:
            a = summary[agent][name]
            cells.append("n/a" if a.low is None else f"[{a.low:.2f}, {a.high:.2f}]")
        label = f"{agent} (ground truth)" if agent in truth_agents else agent
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_results(path: str | Path) -> Any:
    """The results file as a tidy pandas DataFrame (one row per episode)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("load_results needs pandas: pip install -e '.[bench]'") from exc
    if not Path(path).is_file():
        raise ResultsError(f"{path}: no such results file")
    rows = []
    for rec in RunStore(Path(path)).load().values():
        row = {k: v for k, v in rec.items() if k not in ("versions",)}
        row["fault_type"] = rec["fault_types"][0] if rec["fault_types"] else None
        row["family"] = rec["families"][0] if rec["families"] else None
        row["pase_gym_version"] = rec["versions"]["pase_gym"]
        rows.append(row)
    if not rows:
        return pd.DataFrame(
            columns=[
                "key",
                "agent",
                "suite",
                "scenario",
                "seed",
                "fault_type",
                "family",
                "recovered",
                "mttr",
            ]
        )
    return pd.DataFrame(rows).sort_values(["agent", "scenario", "seed"]).reset_index(drop=True)


def _slant(labels: Sequence[str]) -> dict[str, Any]:
    """Tick label placement that keeps neighbours apart: upright for long names."""
    if max((len(x) for x in labels), default=0) > 10:
        return {"rotation": 90, "ha": "center"}
    return {"rotation": 30, "ha": "right"}


def _gap(upper: float | None, lower: float | None) -> float:
    return 0.0 if upper is None or lower is None else max(upper - lower, 0.0)


def build_figures(records: Sequence[Record]) -> list[tuple[str, Any]]:
    """The report's figures as ``(file name, matplotlib Figure)``: MTTR and detection F1 per
    agent with their bootstrap intervals (inside each metric's range), and safe success per
    fault family. Tick labels are slanted, the legend sits outside the bars."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("figures need matplotlib: pip install -e '.[bench]'") from exc
    summary = summarise(records)
    agents = _order(list(summary))
    out: list[tuple[str, Any]] = []
    width = max(6.0, 0.9 * len(agents) + 2.0)
    for metric, ylabel, fname in (
        ("mttr", "MTTR (s), recovered episodes", "mttr.png"),
        ("detection_f1", "fault detection macro-F1", "detection_f1.png"),
    ):
        fig, ax = plt.subplots(figsize=(width, 4.0))
        aggs = [summary[a][metric] for a in agents]
        means = [g.mean or 0.0 for g in aggs]
        # asymmetric bars from the bootstrap interval, which stays inside the metric's range
        below = [_gap(g.mean, g.low) for g in aggs]
        above = [_gap(g.high, g.mean) for g in aggs]
        ax.bar(range(len(agents)), means, yerr=[below, above], capsize=4, color="#4c72b0")
        for i, g in enumerate(aggs):
            if g.mean is None:  # e.g. no recovered episode: no MTTR
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=9)
        ax.set_xticks(range(len(agents)))
        ax.set_xticklabels(agents, **_slant(agents))
        ax.set_ylim(bottom=METRICS[metric].low)
        top = METRICS[metric].high
        if top is not None:
            ax.set_ylim(top=top * 1.05)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel}\n(mean; 95% bootstrap interval over seeds)", fontsize=10)
        fig.tight_layout()
        out.append((fname, fig))
    families = sorted({f for r in records for f in r["families"][:1]})
    fig, ax = plt.subplots(figsize=(max(7.0, len(families) * 1.1 + 2.5), 4.0))
    bar = 0.8 / max(len(agents), 1)
    for k, agent in enumerate(agents):
        rates = []
        for fam in families:
            eps = [r for r in records if r["agent"] == agent and r["families"][:1] == [fam]]
            rates.append(sum(map(is_safe_success, eps)) / len(eps) if eps else 0.0)
        ax.bar([i + k * bar for i in range(len(families))], rates, bar, label=agent)
    ax.set_xticks([i + bar * (len(agents) - 1) / 2 for i in range(len(families))])
    ax.set_xticklabels(families, **_slant(families))
    ax.set_ylabel("safe success")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title("safe success by fault family")
    fig.tight_layout()
    out.append(("success_by_family.png", fig))
    return out


def write_figures(records: Sequence[Record], out: Path) -> list[Path]:
    """The figures of :func:`build_figures` as PNG files in ``out``."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, fig in build_figures(records):
        path = out / fname
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(records: Sequence[Record], out: Path, title: str, figures: bool = True) -> Path:
    """``report.md`` (+ figures + ``summary.json``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    text = markdown_table(records, title)
    if figures:
        pics = write_figures(records, out)
        text += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in pics) + "\n"
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    summary = {a: {k: v.as_dict() for k, v in m.items()} for a, m in summarise(records).items()}
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path
