"""Fault-detection macro-F1 of any agent on real rows (``pase-bench replay``).

Every selected row of Failure-Dataset-OpenStack is one episode of the replay env
(:class:`~pase_gym.env.replay.ReplayEnv`): the agent, loaded the way the harness loads
agents (:func:`~pase_gym.harness.agent.load_agent`), acts on the replayed observation until
it diagnoses or its step budget runs out; the predicted class is compared with the row's
label. Per agent and campaign the report gives the macro-F1 of the harness
(:func:`pase_gym.harness.metrics.macro_f1`, over the classes that occur in the labels or the
predictions) with a 95% bootstrap interval over the rows, the per-class F1, the confusion
counts and the share of rows the agent diagnosed at all, beside the floor a plan without any
diagnosis scores (every row called ``no_failure``).

Agents that read the simulator's ground truth (``uses_ground_truth``, the oracle) are left out:
a real row has no simulator state behind it. Only aggregates are written (no per-row labels:
the data set is GPL-3.0 and stays outside the repository).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.clitools import run_cli
from pase_gym.datasets import CLASS_NAMES
from pase_gym.devices import DEVICE_HELP, device_option
from pase_gym.env.replay import DEFAULT_MAX_STEPS, ROW_SETS, SPLITS, ReplayEnv
from pase_gym.env.replay_classes import NO_FAILURE, best_answer
from pase_gym.errors import DatasetError
from pase_gym.harness.agent import Agent, AgentError, agent_name, load_agent
from pase_gym.harness.metrics import macro_f1
from pase_gym.stats import bootstrap_macro_f1, confusion_matrix, f1_per_class

logger = logging.getLogger(__name__)

DEFAULT_AGENTS = "random,rule_based,gcn_fr"
BOOTSTRAP = 1000
DIGITS = 4
REPORT_JSON = "replay.json"
REPORT_MD = "replay.md"
GROUND_TRUTH_NOTE = (
    "reads the simulator's ground truth (uses_ground_truth); a replayed real row has no "
    "simulator state behind it, so it cannot be scored here"
)


def run_agent(
    agent: Agent, env: ReplayEnv, *, label: str = "", progress: bool = True
) -> list[dict[str, Any]]:
    """One episode per selected row, in row order; one record per row (kept in memory).

    A decision that raises costs the agent that step (it becomes a malformed, no-op plan).
    """
    from pase_gym.harness.runner import progress_bar

    bar = progress_bar(int(env.rows.size), label or "replay") if progress else None
    records: list[dict[str, Any]] = []
    for k in range(int(env.rows.size)):
        obs, info = env.reset(seed=0) if k == 0 else env.reset()
        agent.reset(k)
        done, decisions, compute_s, errors = False, 0, 0.0, 0
        while not done:
            start = time.perf_counter()
            try:
                action = agent.act(obs, info)
            except Exception as exc:  # a broken agent costs it the step, not the run
                errors += 1
                action = f"<agent error: {type(exc).__name__}: {exc}>"
            compute_s += time.perf_counter() - start
            decisions += 1
            obs, _reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        records.append(
            {
                "campaign": info["campaign"],
                "true": info["true_class"],
                "predicted": info["predicted_class"],
                "diagnosed": info["diagnosis"] is not None,
                "decisions": decisions,
                "compute_s": compute_s,
                "agent_errors": errors,
            }
        )
        if bar:
            bar.set_postfix_str(str(info["campaign"]), refresh=False)
            bar.update()
    if bar:
        bar.close()
    return records


def score(records: Sequence[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Macro-F1 (with a bootstrap interval), per-class F1 and confusion counts of records."""
    truth = np.array([r["true"] for r in records])
    pred = np.array([r["predicted"] for r in records])
    labels = [c for c in CLASS_NAMES if c in set(truth.tolist()) | set(pred.tolist())]
    lo, hi = bootstrap_macro_f1(truth, pred, n=BOOTSTRAP, seed=seed)
    decisions = sum(r["decisions"] for r in records)
    return {
        "rows": len(records),
        "macro_f1": round(macro_f1(truth.tolist(), pred.tolist()), DIGITS),
        "ci95": [round(lo, DIGITS), round(hi, DIGITS)],
        "no_failure_floor": round(macro_f1(truth.tolist(), [NO_FAILURE] * truth.size), DIGITS),
        "ceiling": round(
            macro_f1(truth.tolist(), [best_answer(r["campaign"], r["true"]) for r in records]),
            DIGITS,
        ),
        "diagnosed_share": round(float(np.mean([r["diagnosed"] for r in records])), DIGITS),
        "f1_per_class": {k: round(v, DIGITS) for k, v in f1_per_class(truth, pred, labels).items()},
        "confusion": {
            "labels": labels,
            "counts": confusion_matrix(truth, pred, labels).tolist(),
        },
        "agent_errors": int(sum(r["agent_errors"] for r in records)),
        "compute_ms_per_decision": round(
            1000.0 * sum(r["compute_s"] for r in records) / max(decisions, 1), 3
        ),
    }


def evaluate(
    agents: Sequence[str],
    *,
    campaigns: str | Sequence[str] = "all",
    split: str = "test",
    rows: str = "unique",
    root: str | os.PathLike[str] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Score each agent's detection macro-F1 per campaign on real rows.

    Args:
        agents: agent specs, as ``pase-bench run`` takes them (registry name, ``module:Class``,
            ``path.py[:Class]``).
        campaigns, split, rows, root, max_steps: the replay env's arguments.
        device: passed to agents that use torch.
        progress: a progress bar on stderr.

    Returns:
        The report: ``meta``, ``results`` (agent -> campaign -> :func:`score`) and
        ``excluded`` (agent spec -> why it was left out).

    Raises:
        AgentError: a spec does not resolve, or every agent was left out.
        DatasetError: the data set is missing or malformed, or an option is unknown.
    """
    env = ReplayEnv(campaigns=campaigns, root=root, split=split, rows=rows, max_steps=max_steps)
    loaded: list[tuple[str, Agent]] = []
    excluded: dict[str, str] = {}
    for spec in agents:  # fail fast on a bad spec, before any episode runs
        agent = load_agent(spec, device=device)
        if getattr(agent, "uses_ground_truth", False):
            excluded[spec] = GROUND_TRUTH_NOTE
            logger.warning("%s is left out: it %s", spec, GROUND_TRUTH_NOTE)
            continue
        loaded.append((spec, agent))
    if not loaded:
        raise AgentError(f"no agent to score: {', '.join(excluded)} {GROUND_TRUTH_NOTE}")
    row_campaigns = env.dataset.campaign[env.rows]
    results: dict[str, dict[str, Any]] = {}
    start = time.monotonic()
    for spec, agent in loaded:
        records = run_agent(agent, env, label=spec, progress=progress)
        name = agent_name(agent, spec)
        results[name] = {
            c: score([r for r in records if r["campaign"] == c]) for c in env.campaigns
        }
        results[name]["mean"] = {
            "macro_f1": round(
                float(np.mean([results[name][c]["macro_f1"] for c in env.campaigns])), DIGITS
            )
        }
    from pase_gym.harness.records import git_commit, versions

    meta = {
        "split": split,
        "rows": rows,
        "max_steps": int(max_steps),
        "campaigns": list(env.campaigns),
        "rows_per_campaign": {c: int(np.sum(row_campaigns == c)) for c in env.campaigns},
        "bootstrap": BOOTSTRAP,
        "seconds": round(time.monotonic() - start, 1),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    return {"meta": meta, "results": results, "excluded": excluded}


def _cell(entry: dict[str, Any]) -> str:
    lo, hi = entry["ci95"]
    return f"{entry['macro_f1']:.3f} [{lo:.2f}, {hi:.2f}]"


def render_markdown(report: dict[str, Any], command: str = "") -> str:
    """The report as Markdown: the macro-F1 table, the floor, per-class F1, exclusions."""
    meta, results = report["meta"], report["results"]
    campaigns = meta["campaigns"]
    first = next(iter(results.values()))
    counts = ", ".join(f"{c} {meta['rows_per_campaign'][c]}" for c in campaigns)
    side = (
        "the whole data set (both sides of the split)"
        if meta["split"] == "all"
        else f"the {meta['split']} side of the calibration's duplicate-aware split"
    )
    kind = "one per distinct (counts, label) pair" if meta["rows"] == "unique" else "every row"
    lines = [
        "# Fault detection on real rows (replay of Failure-Dataset-OpenStack)",
        "",
        f"Rows: {side}, {kind} ({counts}); "
        f"up to {meta['max_steps']} plans per row; macro-F1 with a 95% bootstrap interval "
        f"({meta['bootstrap']} resamples of the rows).",
    ]
    if command:
        lines += ["", f"Command: `{command}`"]
    lines += [
        "",
        "| agent | " + " | ".join(campaigns) + " | mean | rows diagnosed |",
        "|---|" + "---:|" * (len(campaigns) + 2),
    ]
    for agent, per in results.items():
        share = np.mean([per[c]["diagnosed_share"] for c in campaigns])
        cells = " | ".join(_cell(per[c]) for c in campaigns)
        lines.append(f"| {agent} | {cells} | {per['mean']['macro_f1']:.3f} | {share:.0%} |")
    for key, title in (
        ("no_failure_floor", "floor: no diagnosis (every row `no_failure`)"),
        ("ceiling", "ceiling: knows every label (cleanup not expressible)"),
    ):
        cells = " | ".join(f"{first[c][key]:.3f}" for c in campaigns)
        mean = np.mean([first[c][key] for c in campaigns])
        lines.append(f"| {title} | {cells} | {mean:.3f} | |")
    lines += ["", "Per-class F1:", ""]
    lines += ["| agent | campaign | " + " | ".join(CLASS_NAMES) + " |"]
    lines += ["|---|---|" + "---:|" * len(CLASS_NAMES)]
    for agent, per in results.items():
        for c in campaigns:
            f1 = per[c]["f1_per_class"]
            cells = " | ".join(f"{f1[k]:.2f}" if k in f1 else "" for k in CLASS_NAMES)
            lines.append(f"| {agent} | {c} | {cells} |")
    for spec, why in report.get("excluded", {}).items():
        lines += ["", f"Left out: `{spec}`: it {why}."]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path, command: str = "") -> tuple[Path, Path]:
    """Write ``replay.json`` and ``replay.md`` into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / REPORT_JSON, out / REPORT_MD
    payload = {**report, "meta": {**report["meta"], "command": command}}
    json_path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report, command), encoding="utf-8")
    return json_path, md_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (shared by ``pase-bench replay`` and ``python -m``)."""
    parser.add_argument(
        "--agents",
        default=DEFAULT_AGENTS,
        help=f"comma-separated names, module:Class or paths (default {DEFAULT_AGENTS})",
    )
    parser.add_argument(
        "--campaigns", default="DEPL,NET,STO", help="comma-separated campaigns or 'all'"
    )
    parser.add_argument("--split", choices=SPLITS, default="test", help="default: test")
    parser.add_argument("--rows", choices=ROW_SETS, default="unique", help="default: unique")
    parser.add_argument("--data", help="the data set's folder (default: $PASE_GYM_OPENSTACK_DATA)")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    parser.add_argument(
        "--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs") / "replay", help="folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_command(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Run the command on parsed arguments; write the report; print the table."""
    agents = [a.strip() for a in str(args.agents).split(",") if a.strip()]
    if not agents or len(set(agents)) != len(agents):
        raise AgentError(
            f"expected a comma-separated list of distinct agents, found {args.agents!r}"
        )
    if args.max_steps < 1:
        raise DatasetError(f"expected --max-steps a positive integer, found {args.max_steps}")
    report = evaluate(
        agents,
        campaigns=args.campaigns,
        split=args.split,
        rows=args.rows,
        root=args.data,
        max_steps=args.max_steps,
        device=args.device,
        progress=not args.quiet,
    )
    command = "pase-bench replay " + " ".join(argv) if argv is not None else ""
    json_path, md_path = write_report(report, args.out, command.strip())
    sys.stdout.write(render_markdown(report, command.strip()))
    sys.stdout.write(f"\nreport: {md_path}, {json_path}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pase_gym.harness.replay``: the same as ``pase-bench replay``."""
    parser = argparse.ArgumentParser(
        prog="pase-bench replay",
        description="Score agents' fault-detection macro-F1 on real rows of "
        "Failure-Dataset-OpenStack, replayed by PASE-OpenStack-Replay-v4 (docs/fidelity.md).",
    )
    add_arguments(parser)
    arguments = list(sys.argv[1:] if argv is None else argv)
    return run_cli(parser, lambda args: run_command(args, arguments), arguments)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
