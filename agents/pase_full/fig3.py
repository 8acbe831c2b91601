"""Fig. 3: meta-prompt strategies on the adaptation stream.

    python agents/pase_full/fig3.py [--stream deadlock] [--strategies sac,ppo,...]
        [--out benchmarks/results/fig3] [--runs OUT/runs]

Each strategy (``strategies.py``) drives the same loop (``agent.py``: engine, world model,
gate, refinement, fallback) on the same stream (``pase-bench adapt``'s: known faults, then the
unseen one), learning after every episode from eq. 7's reward. Per strategy, its rows go to
``RUNS/<strategy>.jsonl`` and what the loop saw to ``RUNS/<strategy>.json`` (a strategy whose
two files are there is not run again: delete them to rerun it). The runs sit beside the table
by default, so that a table can be published a few strategies at a time (``--strategies``):
the table and figure cover every strategy with a run in ``RUNS`` for this stream, and say
"not run" for the others:

- **final reward**: eq. 7's mean reward over the stream's last 5 episodes;
- **convergence episodes**: the adaptation episodes of Fig. 4 (safe success, rolling 5,
  threshold 0.8, from the first unseen episode; ``never``);
- **generalisation gap**: ``(R_known - R_unseen) / R_known``, the mean reward on the
  known-fault episodes before the switch against the last 5 unseen ones;
- **compute**: seconds spent learning over the stream, and wall seconds per episode.

SAC starts from the shipped optimiser (its warm-up and joint phases); the other strategies
start from the zero prompt (close to the engine's fixed prompt) with no training phase.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
WINDOW = 5


def _sibling(name: str) -> Any:
    from pase_gym.harness.agent import sibling

    return sibling(HERE, name)


def run_strategy(strategy: str, stream: Any, runs: Path, device: str, quiet: bool) -> dict:
    """Play the stream with the loop under ``strategy``; its rows and its summary."""
    from pase_gym.harness.adaptation import run_stream
    from pase_gym.harness.records import git_commit
    from pase_gym.harness.runner import _agent, progress_bar

    agent_mod = _sibling("agent")
    cls = agent_mod.STRATEGY_AGENTS[strategy]
    spec = f"{HERE / 'agent.py'}:{cls.__name__}"
    rows_path, info_path = runs / f"{strategy}.jsonl", runs / f"{strategy}.json"
    if rows_path.is_file() and info_path.is_file():
        return json.loads(info_path.read_text())
    rows_path.unlink(missing_ok=True)
    bar = progress_bar(stream.episodes, f"fig3 {strategy}")
    bar.disable = quiet
    start = time.perf_counter()
    rows = run_stream(spec, stream, rows_path, device, on_episode=lambda _: bar.update(1))
    bar.close()
    agent = _agent(spec, device, "in-process")
    info = {
        "strategy": strategy,
        "agent": agent.name,
        "rows": rows,
        "rewards": list(agent.rewards),
        "learn_seconds": float(getattr(agent.mpo, "seconds", 0.0)),
        "wall_seconds": time.perf_counter() - start,
        "fallbacks": len(agent.fallbacks),
        "stream": stream.name,
        "switch": stream.switch,
        "episodes": stream.episodes,
        "seed": stream.seed,
        "device": device,
        "git_commit": git_commit(),
    }
    _write(info_path, json.dumps(info, indent=1) + "\n")
    return info


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a reader never sees half a file)."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


class RunFileError(ValueError):
    """A strategy's run file that is not one (unreadable, or missing what the table needs)."""


RUN_KEYS = ("strategy", "rows", "rewards", "learn_seconds", "wall_seconds", "fallbacks")


def read_runs(runs: Path, names: Sequence[str], stream: Any) -> dict[str, dict]:
    """The finished runs in ``runs`` of the strategies ``names`` on ``stream`` (by name).

    Raises:
        RunFileError: a run file that is not valid JSON, lacks a field, or is another
            stream's (its name, switch or length differ).
    """
    infos: dict[str, dict] = {}
    for name in names:
        path = runs / f"{name}.json"
        if not path.is_file():
            continue
        try:
            info = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFileError(f"{path}: not a Fig. 3 run file ({exc})") from None
        if not isinstance(info, dict):
            raise RunFileError(f"{path}: expected a JSON object, found {type(info).__name__}")
        missing = [k for k in RUN_KEYS if k not in info]
        if missing:
            raise RunFileError(f"{path}: missing {', '.join(missing)}")
        if info["strategy"] != name:
            raise RunFileError(f"{path}: a run of {info['strategy']!r}, not of {name!r}")
        want = {
            "stream": stream.name,
            "switch": stream.switch,
            "episodes": stream.episodes,
            "seed": stream.seed,
        }
        found = {k: info.get(k) for k in want}
        if found != want:
            raise RunFileError(
                f"{path}: a run of another stream ({found}; this table is {want}): "
                "delete it to rerun the strategy, or give another --runs"
            )
        if len(info["rewards"]) != stream.episodes or len(info["rows"]) != stream.episodes:
            raise RunFileError(
                f"{path}: expected {stream.episodes} episodes, found "
                f"{len(info['rewards'])} rewards and {len(info['rows'])} rows"
            )
        try:
            metrics(info, stream.switch)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFileError(f"{path}: its rows or rewards are malformed ({exc!r})") from None
        infos[name] = info
    return infos


def metrics(info: dict, switch: int) -> dict[str, Any]:
    """The four Fig. 3 measures of one strategy's stream."""
    from pase_gym.harness.adaptation import adaptation_episodes

    rewards = np.asarray(info["rewards"], dtype=np.float64)
    if rewards.ndim != 1 or not np.isfinite(rewards).all():
        raise ValueError("rewards: expected a list of finite numbers")
    safe = [r["safe"] for r in sorted(info["rows"], key=lambda r: r["position"])]
    if not all(isinstance(v, bool) for v in safe):
        raise ValueError("rows: each row's safe must be true or false")
    for key in ("learn_seconds", "wall_seconds"):
        if not isinstance(info[key], int | float) or not math.isfinite(info[key]):
            raise ValueError(f"{key}: expected a finite number")
    known = float(rewards[:switch].mean())
    final = float(rewards[-WINDOW:].mean())
    return {
        "final_reward": round(final, 4),
        "convergence_episodes": adaptation_episodes(safe, switch),
        "generalisation_gap": round((known - final) / abs(known), 4) if known else None,
        "known_reward": round(known, 4),
        "learn_seconds": round(info["learn_seconds"], 2),
        "seconds_per_episode": round(info["wall_seconds"] / len(safe), 2),
        "safe_success_after": round(float(np.mean(safe[switch:])), 4),
        "fallbacks": info["fallbacks"],
    }


def figure(infos: Sequence[dict], switch: int, path: Path) -> Path:
    """Eq. 7's reward (rolling mean) against the stream's episodes, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pase_gym.harness.adaptation import rolling

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for info in infos:
        r = rolling(info["rewards"], WINDOW)
        ax.plot(np.arange(1, len(r) + 1), r, marker=".", label=info["strategy"])
    ax.axvline(switch + 0.5, color="grey", linestyle="--", label="unseen fault injected")
    ax.set_xlabel("interaction episode")
    ax.set_ylabel(f"eq. 7 reward (rolling, {WINDOW})")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def publish(infos: dict[str, dict], names: Sequence[str], stream: Any, out: Path) -> str:
    """Write ``fig3.md``, ``fig3.json`` and ``fig3.png`` under ``out`` for the strategies
    ``names`` (those without a run in ``infos`` say "not run"); returns the table's text."""
    table = {name: metrics(infos[name], stream.switch) for name in names if name in infos}
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"Stream {stream.name} (seed {stream.seed}): {stream.switch} known-fault episodes, then "
        f"{stream.episodes - stream.switch} of the unseen fault.\n",
        "| strategy | final reward | convergence episodes | generalisation gap | "
        "learning s | s/episode | safe success after switch | fallbacks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        m = table.get(name)
        if m is None:
            lines.append(f"| {name} | not run | | | | | | |")
            continue
        conv = m["convergence_episodes"]
        gap = m["generalisation_gap"]
        lines.append(
            f"| {name} | {m['final_reward']:.3f} | {'never' if conv is None else conv} | "
            f"{'n/a' if gap is None else f'{100 * gap:.1f}%'} | {m['learn_seconds']:.1f} | "
            f"{m['seconds_per_episode']:.1f} | {m['safe_success_after']:.2f} | "
            f"{m['fallbacks']} |"
        )
    text = "\n".join(lines) + "\n"
    _write(out / "fig3.md", text)
    payload = {
        "stream": stream.name,
        "switch": stream.switch,
        "strategies": {name: table.get(name) for name in names},
    }
    _write(out / "fig3.json", json.dumps(payload, indent=1, sort_keys=True) + "\n")
    if infos:
        figure([infos[n] for n in names if n in infos], stream.switch, out / "fig3.png")
    else:  # no run: no figure of an older one
        (out / "fig3.png").unlink(missing_ok=True)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    strategies = _sibling("strategies")
    parser = argparse.ArgumentParser(
        prog="python agents/pase_full/fig3.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stream", default="deadlock", help="the adaptation stream")
    parser.add_argument(
        "--strategies",
        default=",".join(strategies.STRATEGIES),
        help="comma-separated strategies to run (default: all; finished ones are not rerun)",
    )
    parser.add_argument("--episodes", type=int, help="the stream's length (default: its own)")
    parser.add_argument("--switch", type=int, help="episodes before the unseen fault")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/fig3"), help="table and figure"
    )
    parser.add_argument(
        "--runs", type=Path, default=None, help="per-strategy runs (default: OUT/runs)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    chosen = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in chosen if s not in strategies.STRATEGIES]
    if unknown or not chosen:
        parser.error(f"--strategies: expected some of {', '.join(strategies.STRATEGIES)}")
    from pase_gym.harness.adaptation import stream_of

    try:
        stream = stream_of(args.stream, args.episodes, args.switch)
        stream.plan()
    except ValueError as exc:
        parser.error(str(exc))
    runs = args.runs if args.runs is not None else args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    try:
        read_runs(runs, strategies.STRATEGIES, stream)  # a bad file stops us before any run
        for name in chosen:
            run_strategy(name, stream, runs, args.device, args.quiet)
        infos = read_runs(runs, strategies.STRATEGIES, stream)
    except RunFileError as exc:
        sys.stderr.write(f"fig3: {exc}\n")
        return 2
    text = publish(infos, strategies.STRATEGIES, stream, args.out)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
