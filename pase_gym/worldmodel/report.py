"""Fig. 6 of the paper, measured here: the world-model architectures side by side.

For each verifier and each evaluation split (``test``, ``unseen``):

* **feasibility AUC**: the area under the ROC curve of ``F`` against the plan being *good*
  (recovered with no harm and no violation in the dry run), over every collected plan;
* **ΔH MSE**: the mean squared error of the predicted ΔH per call, each of its 16 numbers
  (the eight indicators' change at the call's target and their mean change over the cloud)
  standardised by the training calls' mean and standard deviation, so that predicting the
  training mean scores about 1. The symbolic verifier predicts no dynamics: its row is that
  mean predictor's error; the exact dry run's is 0 by construction (it is the truth);
* **inference time** per plan at batch 1 and batched (256 plans of up to five calls), read
  from a pytest-benchmark run of ``benchmarks/test_bench_worldmodel.py`` (``--speed``), and
* **model memory**: the bytes of the model's parameters and buffers.

The exact dry run is the upper bound: its ``F`` is computed from the very dry run that labels
the plan, so its AUC is 1 by construction; what it costs is its time per plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.errors import WorldModelError
from pase_gym.stats import ranking_auc

from .train import Arrays, dh_mse

ROWS = ("symbolic", "mlp", "nswm", "lstm", "transformer", "ensemble", "exact")
LABELS = {
    "symbolic": "Symbolic only",
    "mlp": "MLP only",
    "nswm": "NSWM (ours)",
    "lstm": "LSTM",
    "transformer": "Transformer",
    "ensemble": "Ensemble (3 NSWM)",
    "exact": "Exact simulate()",
}
PAPER = {
    "symbolic": (0.76, 0.145, 18, 12),
    "mlp": (0.81, 0.032, None, None),
    "nswm": (0.92, 0.014, 42, 128),
    "lstm": (0.88, None, 58, 210),
    "transformer": (0.90, None, 112, 385),
    "ensemble": (0.91, None, 156, 432),
}
"""The paper's figures (AUC, MSE, ms, MB) where its text states them (section 4.4)."""


PLAUSIBLE = ("oracle", "mutant")
"""The sources of the harder subset: the runbook and its one-change mutants, where a wrong
plan looks most like a right one."""

FIXED_SET = {
    "split": "unseen",
    "scenarios": ("certificate-expiry-unseen", "cpu-memory-deadlock-unseen"),
    "episodes": 4,
    "seed": 7,
}
"""The plan set the shipped NSWM's published AUC is recomputed on (``tests/worldmodel``)."""


def fixed_set_auc(verifier: Any) -> dict[str, Any]:
    """``verifier``'s feasibility AUC on :data:`FIXED_SET`'s plans, collected afresh."""
    from .collect import collect, to_frame
    from .train import arrays_of

    rows = collect(
        str(FIXED_SET["split"]),
        int(FIXED_SET["episodes"]),  # type: ignore[call-overload]
        int(FIXED_SET["seed"]),  # type: ignore[call-overload]
        scenarios=list(FIXED_SET["scenarios"]),  # type: ignore[call-overload]
        progress=False,
    )
    data = arrays_of(to_frame(rows))
    scores = verifier.predict(data.batch)["F"]
    return {
        **FIXED_SET,
        "plans": len(data),
        "good": int(data.good.sum()),
        "auc": ranking_auc(data.good, scores),
        "mean_score": float(np.mean(scores)),
    }


def exact_scores(frame: Any) -> np.ndarray:
    """The exact dry run's ``F`` for each collected plan (what :class:`~.verifier.ExactVerifier`
    computes, read from the recorded outcome)."""
    from .verifier import exact_feasibility

    risky = (frame["harm"].to_numpy() > 0) | (frame["violations"].to_numpy() > 0)
    recovered = frame["recovered"].to_numpy().astype(bool)
    return exact_feasibility(risky, recovered, frame["residual"].to_numpy().astype(float))


def model_bytes(verifier: Any) -> int:
    """Bytes of a learned verifier's parameters and buffers (0 for the others)."""
    total = 0
    for model in getattr(verifier, "models", []):
        total += sum(p.numel() * p.element_size() for p in model.parameters())
        total += sum(b.numel() * b.element_size() for b in model.buffers())
    return total


def speed_rows(path: str | Path | None) -> dict[str, dict[str, float]]:
    """``{verifier: {"batch1_ms": .., "batched_ms": ..}}`` from a pytest-benchmark JSON."""
    if path is None:
        return {}
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        benches = data["benchmarks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WorldModelError(
            f"{p}: expected a pytest-benchmark JSON of test_bench_worldmodel.py ({exc})"
        ) from None
    out: dict[str, dict[str, float]] = {}
    for bench in benches:
        extra = bench.get("extra_info", {})
        name, plans = extra.get("verifier"), extra.get("plans")
        if name is None or not plans:
            continue
        per_plan = float(bench["stats"]["median"]) / float(plans) * 1e3
        key = "batch1_ms" if int(plans) == 1 else "batched_ms"
        out.setdefault(str(name), {})[key] = per_plan
    return out


def table(results: dict[str, Any]) -> str:
    """The Markdown table of a report's results."""
    head = (
        "| verifier | AUC test | AUC unseen | ΔH MSE test | ΔH MSE unseen | ms/plan batch 1 "
        "| ms/plan batched (256) | model memory | paper: AUC, MSE, ms, MB |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )

    def cell(value: Any, fmt: str) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "–"
        return format(value, fmt)

    lines = []
    for key in ROWS:
        row = results["rows"].get(key)
        if row is None:
            continue
        paper = PAPER.get(key)
        paper_cell = (
            ", ".join("–" if v is None else str(v) for v in paper) if paper else "upper bound"
        )
        memory = row.get("memory_bytes")
        lines.append(
            f"| {LABELS[key]} | {cell(row['test']['auc'], '.3f')} | "
            f"{cell(row['unseen']['auc'], '.3f')} | {cell(row['test']['mse'], '.3f')} | "
            f"{cell(row['unseen']['mse'], '.3f')} | {cell(row.get('batch1_ms'), '.3f')} | "
            f"{cell(row.get('batched_ms'), '.4f')} | "
            f"{'–' if memory is None else f'{memory / 1024:.0f} KiB'} | {paper_cell} |"
        )
    agents = [
        (key, results["rows"][key]["agents"])
        for key in ROWS
        if key in results["rows"] and "agents" in results["rows"][key]
    ]
    agent_lines: list[str] = []
    if agents:
        first = agents[0][1]
        agent_lines = [
            "",
            "On the reference agents' own plans and one-change mutants of them "
            f"({first['plans']} plans, {first['good']} good; {first['sources']}):",
            "",
            "| verifier | AUC | AUC, the agents' own plans |",
            "|---|---|---|",
        ]
        for key, row in agents:
            agent_lines.append(
                f"| {LABELS[key]} | {cell(row['auc'], '.3f')} | {cell(row['auc_own'], '.3f')} |"
            )
    hard = [
        "",
        "Among the plausible plans only (the runbook and its one-change mutants):",
        "",
        "| verifier | AUC test | AUC unseen |",
        "|---|---|---|",
    ]
    for key in ROWS:
        row = results["rows"].get(key)
        if row is not None:
            hard.append(
                f"| {LABELS[key]} | {cell(row['test'].get('auc_plausible'), '.3f')} | "
                f"{cell(row['unseen'].get('auc_plausible'), '.3f')} |"
            )
    return head + "\n".join(lines) + "\n" + "\n".join(hard + agent_lines) + "\n"


def evaluate(
    verifiers: dict[str, Any],
    sets: dict[str, tuple[Any, Arrays]],
    dh_mean: np.ndarray,
    dh_std: np.ndarray,
) -> dict[str, Any]:
    """AUC and ΔH MSE of each verifier on each ``(frame, arrays)`` evaluation set (a set
    named ``agents`` holds agents' plans: AUC only, overall and on the agents' own plans)."""
    rows: dict[str, Any] = {}
    for key in ROWS:
        row: dict[str, Any] = {}
        for split, (frame, data) in sets.items():
            if key == "exact":
                scores, mse = exact_scores(frame), 0.0
            elif key == "symbolic":
                scores = _symbolic_scores(frame, data)
                zero = np.zeros((len(data), data.dh.shape[1], data.dh.shape[2]), np.float32)
                mse = dh_mse(zero, data, dh_mean, dh_std)
            elif key in verifiers:
                out = verifiers[key].predict(data.batch)
                scores, mse = out["F"], dh_mse(out["dh"], data, dh_mean, dh_std)
            else:
                continue
            if split == "agents":
                own = frame["source"].str.startswith("agent:").to_numpy()
                row[split] = {
                    "auc": ranking_auc(data.good, scores),
                    "auc_own": ranking_auc(data.good[own], scores[own]),
                    "plans": len(data),
                    "good": int(data.good.sum()),
                    "sources": ", ".join(
                        f"{k}: {v}" for k, v in sorted(frame["source"].value_counts().items())
                    ),
                }
                continue
            plausible = frame["source"].isin(PLAUSIBLE).to_numpy()
            row[split] = {
                "auc": ranking_auc(data.good, scores),
                "auc_plausible": ranking_auc(data.good[plausible], scores[plausible]),
                "mse": mse,
                "plans": len(data),
                "good": int(data.good.sum()),
            }
        if row:
            if key in verifiers:
                row["memory_bytes"] = model_bytes(verifiers[key])
            rows[key] = row
    return {"rows": rows}


def _symbolic_scores(frame: Any, data: Arrays) -> np.ndarray:
    """:class:`~.verifier.SymbolicVerifier`'s ``F`` from the stored flags and coverage."""
    from .symbolic import symbolic_feasibility

    counts = (data.batch.symbolic * data.batch.mask[..., None]).sum(axis=1)
    return symbolic_feasibility(counts, frame["coverage"].to_numpy().astype(float))


def figure(results: dict[str, Any], path: str | Path) -> Path:
    """Fig. 6's panels (AUC, ΔH MSE, time per plan, memory) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ROWS if k in results["rows"]]
    labels = [LABELS[k].replace(" (", "\n(") for k in keys]
    rows = [results["rows"][k] for k in keys]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    x = np.arange(len(keys))
    width = 0.38
    for ax, metric, title in (
        (axes[0, 0], "auc", "Plan feasibility AUC (higher is better)"),
        (axes[0, 1], "mse", "ΔH MSE, standardised (lower is better)"),
    ):
        for j, split in enumerate(("test", "unseen")):
            values = [r.get(split, {}).get(metric, np.nan) for r in rows]
            ax.bar(x + (j - 0.5) * width, values, width, label=split)
        ax.set_title(title)
        ax.set_xticks(x, labels, fontsize=8)
        ax.legend()
    axes[0, 0].set_ylim(0.5, 1.01)  # 0.5 is chance
    ax = axes[1, 0]
    for j, (metric, name) in enumerate((("batch1_ms", "batch 1"), ("batched_ms", "batched"))):
        values = [r.get(metric, np.nan) for r in rows]
        ax.bar(x + (j - 0.5) * width, values, width, label=name)
    ax.set_yscale("log")
    ax.set_title("Inference time per plan (ms, log scale)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.legend()
    ax = axes[1, 1]
    ax.bar(x, [r.get("memory_bytes", 0) / 1024 for r in rows], width * 1.5)
    ax.set_title("Model memory (KiB of parameters)")
    ax.set_xticks(x, labels, fontsize=8)
    fig.suptitle("World-model architectures (pase-gym's Fig. 6)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
