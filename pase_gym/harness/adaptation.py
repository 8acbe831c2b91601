"""Online adaptation: a stream of episodes into which an unseen fault family is injected
mid-stream, with each episode's outcome handed back to an agent that learns.

A stream (:class:`Stream`) plays ``switch`` episodes of known faults (the test split's
scenarios, in a seeded order), then ``episodes - switch`` episodes of one unseen scenario
(the CPU-memory deadlock or the certificate expiry), each with its own seed, all with the same
agent object. After every episode an agent that has ``learn(feedback)`` is handed
``{"recovered": bool, "reward": float, "safe": bool, "mttr": float | None}``: the episode's
outcome, return and time to recover (what an operator sees), never its fault's type or node
(:data:`FEEDBACK_KEYS`; a test keeps it so).

:func:`adaptation_episodes` is the paper's measure: episodes from the first unseen fault until
the rolling success rate (over ``window`` episodes) reaches ``threshold`` and holds there to
the end of the stream.

A stream is sequential by nature (each episode may change the agent), so it runs in one
process, in-process agents only (a sandboxed agent has no ``learn`` channel yet), and is not
resumable: a killed stream is started again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.harness.runner import Job, _agent, run_episode
from pase_gym.scenarios import list_scenarios

FEEDBACK_KEYS = ("recovered", "reward", "safe", "mttr")
WINDOW = 5
THRESHOLD = 0.8


@dataclass(frozen=True)
class Stream:
    """An adaptation stream: ``switch`` known-fault episodes, then the unseen ``after``."""

    name: str
    after: str
    episodes: int = 40
    switch: int = 10
    seed: int = 0
    before: tuple[str, ...] = ()

    def plan(self) -> list[tuple[str, int, str]]:
        """(scenario, episode seed, phase) for each position of the stream."""
        if not 0 < self.switch < self.episodes:
            raise ValueError(
                f"stream {self.name}: expected 0 < switch < episodes, found switch "
                f"{self.switch} of {self.episodes}"
            )
        before = list(self.before) or [s for s in list_scenarios("test") if s != "concurrent-test"]
        order = np.random.default_rng([self.seed, 0xADA]).permutation(len(before))
        out = []
        for i in range(self.episodes):
            seed = self.seed * 100_000 + i
            if i < self.switch:
                out.append((before[int(order[i % len(order)])], seed, "before"))
            else:
                out.append((self.after, seed, "after"))
        return out


STREAMS = {
    "deadlock": Stream("deadlock", "cpu-memory-deadlock-unseen"),
    "certificate": Stream("certificate", "certificate-expiry-unseen"),
}


def stream_of(
    name: str, episodes: int | None = None, switch: int | None = None, seed: int = 0
) -> Stream:
    """A built-in stream, optionally resized."""
    if name not in STREAMS:
        raise ValueError(f"unknown stream {name!r}: expected one of {', '.join(STREAMS)}")
    base = STREAMS[name]
    return Stream(
        base.name,
        base.after,
        episodes if episodes is not None else base.episodes,
        switch if switch is not None else base.switch,
        seed,
        base.before,
    )


def run_stream(
    agent_spec: str,
    stream: Stream,
    out: Path | None = None,
    device: str = "cpu",
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    stop: int | None = None,
) -> list[dict[str, Any]]:
    """Play ``stream`` with one in-process agent; one row per episode (appended to ``out`` as
    JSON lines when given). The agent learns after each episode if it has ``learn`` (and no
    ``learns`` attribute that is false: a variant with its learning switched off). With
    ``stop``, only the stream's first ``stop`` episodes are played (a replay of its start)."""
    rows: list[dict[str, Any]] = []
    agent = _agent(agent_spec, device, "in-process")
    learns = callable(getattr(agent, "learn", None)) and bool(getattr(agent, "learns", True))
    for position, (scenario, seed, phase) in enumerate(stream.plan()[:stop]):
        record = run_episode(
            Job(agent_spec, f"adapt-{stream.name}", scenario, seed, device, isolation="in-process")
        )
        safe = bool(record["recovered"] and not record["harmed"])
        row = {
            "agent": record["agent"],
            "stream": stream.name,
            "position": position,
            "phase": phase,
            "scenario": scenario,
            "seed": seed,
            "recovered": bool(record["recovered"]),
            "safe": safe,
            "return": float(record["return"]),
            "mttr": record["mttr"],
            "learns": learns,
        }
        if learns:
            agent.learn(
                {
                    "recovered": row["recovered"],
                    "reward": row["return"],
                    "safe": safe,
                    "mttr": row["mttr"],
                }
            )
        rows.append(row)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        if on_episode is not None:
            on_episode(row)
    return rows


def rolling(success: Sequence[bool], window: int = WINDOW) -> np.ndarray:
    """The rolling success rate: at each position, the mean over the last ``window``
    episodes (fewer at the start)."""
    s = np.asarray(success, dtype=np.float64)
    out = np.empty(len(s))
    for i in range(len(s)):
        out[i] = s[max(0, i - window + 1) : i + 1].mean()
    return out


def adaptation_episodes(
    success: Sequence[bool], switch: int, threshold: float = THRESHOLD, window: int = WINDOW
) -> int | None:
    """Episodes from the first unseen fault (position ``switch``) until the rolling success
    rate over the unseen episodes (the last ``window`` of them, fewer at first) reaches
    ``threshold`` and holds there to the end of the stream; the count includes the episode
    where it first holds (1: right from the first unseen episode). ``None`` if it never does.
    """
    after = list(success)[switch:]
    rate = rolling(after, window)
    for i in range(len(after)):
        if (rate[i:] >= threshold).all():
            return i + 1
    return None


def summary(rows: Sequence[dict[str, Any]], switch: int) -> dict[str, dict[str, Any]]:
    """Per agent: success before and after the switch, over the last ``WINDOW`` episodes,
    and the adaptation episodes."""
    out: dict[str, dict[str, Any]] = {}
    for agent in sorted({r["agent"] for r in rows}):
        mine = sorted((r for r in rows if r["agent"] == agent), key=lambda r: r["position"])
        success = [r["safe"] for r in mine]
        out[agent] = {
            "before": float(np.mean(success[:switch])) if switch else None,
            "after": float(np.mean(success[switch:])) if len(success) > switch else None,
            "final": float(np.mean(success[-WINDOW:])),
            "adaptation_episodes": adaptation_episodes(success, switch),
            "learns": bool(mine[0]["learns"]),
        }
    return out


ROW_KEYS = {
    "agent": str,
    "stream": str,
    "position": int,
    "phase": str,
    "scenario": str,
    "seed": int,
    "recovered": bool,
    "safe": bool,
    "learns": bool,
}


def load_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The rows of one or more stream files (as :func:`run_stream` writes them), checked: each
    line a JSON object with the row's fields, one stream, no agent's position twice, each
    agent's positions 0..n-1.

    Raises:
        ValueError: naming ``FILE:LINE`` and what was expected.
    """
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for path in paths:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the stream rows ({exc})") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{where}: expected a JSON object per line") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object per line")
            for key, kind in ROW_KEYS.items():
                value = row.get(key)
                if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                    raise ValueError(f"{where}: {key!r}: expected {kind.__name__}, found {value!r}")
            if (row["agent"], row["position"]) in seen:
                raise ValueError(f"{where}: {row['agent']} position {row['position']} twice")
            seen.add((row["agent"], row["position"]))
            rows.append(row)
    if not rows:
        raise ValueError("no stream rows in " + ", ".join(str(p) for p in paths))
    streams = {r["stream"] for r in rows}
    if len(streams) != 1:
        raise ValueError(f"rows of several streams ({', '.join(sorted(streams))}): one at a time")
    for agent in {r["agent"] for r in rows}:
        positions = sorted(r["position"] for r in rows if r["agent"] == agent)
        if positions != list(range(len(positions))):
            raise ValueError(f"{agent}: expected positions 0..{len(positions) - 1}, with gaps")
    return rows


def switch_of(rows: Sequence[dict[str, Any]]) -> int:
    """The position of the first unseen episode (the same for every agent of the rows)."""
    firsts = {
        min((r["position"] for r in rows if r["agent"] == a and r["phase"] == "after"), default=-1)
        for a in {r["agent"] for r in rows}
    }
    if len(firsts) != 1 or -1 in firsts:
        raise ValueError("the rows' agents did not meet the unseen fault at the same position")
    return firsts.pop()


def table(rows: Sequence[dict[str, Any]], switch: int) -> str:
    """The markdown table of :func:`summary`."""
    lines = [
        "| agent | learns | safe success before | after | last 5 | adaptation episodes |",
        "|---|---|---|---|---|---|",
    ]
    for agent, t in summary(rows, switch).items():
        adapted = t["adaptation_episodes"]
        lines.append(
            f"| {agent} | {'yes' if t['learns'] else 'no'} | {t['before']:.2f} | "
            f"{t['after']:.2f} | {t['final']:.2f} | {adapted if adapted is not None else 'never'} |"
        )
    return "\n".join(lines) + "\n"


def write_report(rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """``rows.jsonl``, ``summary.json``, ``summary.md`` and ``fig4.png`` in ``out``."""
    switch = switch_of(rows)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(rows, key=lambda r: (r["agent"], r["position"]))
    stream = ordered[0]["stream"]
    (out / "rows.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in ordered))
    (out / "summary.json").write_text(
        json.dumps(
            {
                "stream": stream,
                "switch": switch,
                "window": WINDOW,
                "threshold": THRESHOLD,
                "agents": summary(rows, switch),
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    after = len([r for r in ordered if r["agent"] == ordered[0]["agent"]]) - switch
    (out / "summary.md").write_text(
        f"Stream {stream}: {switch} known-fault episodes, then {after} of the unseen fault; "
        f"safe success; adaptation episodes: from the first unseen episode until the rolling "
        f"rate ({WINDOW} episodes) reaches {THRESHOLD} and holds.\n\n" + table(rows, switch)
    )
    return [
        out / "rows.jsonl",
        out / "summary.json",
        out / "summary.md",
        figure(rows, switch, out / "fig4.png"),
    ]


def figure(rows: Sequence[dict[str, Any]], switch: int, path: Path) -> Path:
    """Fig. 4's layout: each agent's rolling safe-success rate against the stream's
    episodes, the switch to the unseen fault marked (matplotlib, the ``bench`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("the figure needs matplotlib: pip install -e '.[bench]'") from exc
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for agent in sorted({r["agent"] for r in rows}):
        mine = sorted((r for r in rows if r["agent"] == agent), key=lambda r: r["position"])
        rate = rolling([r["safe"] for r in mine])
        ax.plot([r["position"] + 1 for r in mine], rate, marker=".", label=agent)
    ax.axvline(switch + 0.5, color="grey", linestyle="--", label="unseen fault injected")
    ax.axhline(THRESHOLD, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("interaction episode")
    ax.set_ylabel(f"safe success (rolling, {WINDOW} episodes)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
