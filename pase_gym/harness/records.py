"""Results records: one JSON line per episode, their provenance and the file that keeps them.

:class:`Record` is the one definition of what an episode record holds (the runner writes it,
the metrics and the report read it); :class:`RunStore` is the append-only JSON-lines file a
run writes and resumes from.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import TypedDict

import numpy as np

from pase_gym import __version__
from pase_gym.errors import ResultsError

logger = logging.getLogger(__name__)


# One finished episode, as the harness writes it (sort_keys JSON, one line each). The
# functional form because one field is named "return" (the episode's RL return).
Record = TypedDict(
    "Record",
    {
        "key": str,  # agent|suite|scenario|seed: the record's identity in its file
        "agent": str,  # the agent's display name
        "agent_spec": str,  # how the run named the agent (registry name, module:Class, path)
        "uses_ground_truth": bool,  # the agent read the simulator's ground truth (the oracle)
        "suite": str,
        "scenario": str,
        "split": str,
        "seed": int,
        "fault_types": list[str],  # injected (ground truth)
        "fault_nodes": list[str],
        "families": list[str],
        "diagnosis": str | None,  # the agent's first Diagnose, if any
        "diagnosed_node": str | None,
        "recovered": bool,
        "mttr": int | None,  # simulated seconds from onset to recovery; None when not recovered
        "ticks": int,  # simulated seconds the episode ran
        "decisions": int,  # calls to act()
        "plan_steps": int,  # primitive calls of the recovery
        "executed_calls": int,
        "safe_calls": int,
        "harmed": int,  # healthy nodes the agent's calls interrupted
        "violations": int,  # calls whose preconditions failed
        "cost": float,
        "return": float,  # the episode's summed reward
        "agent_errors": int,  # act() or reset() raised
        "compute_s": float,  # the agent's wall-clock compute time (varies from run to run)
        "versions": dict[str, str],
        "git_commit": str,
    },
)


def record_key(agent: str, suite: str, scenario: str, seed: int) -> str:
    """The identity of an episode within a results file."""
    return f"{agent}|{suite}|{scenario}|{seed}"


def git_commit() -> str:
    """The commit of the source checkout, or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def versions() -> dict[str, str]:
    """Versions that can change results."""
    import gymnasium

    return {
        "pase_gym": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
    }


class RunStore:
    """A JSON-lines results file that survives being killed mid-write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Record]:
        """Records by key; a torn last line (a kill mid-write) is cut off the file."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        good_end = data.rfind(b"\n") + 1
        if good_end < len(data):
            logger.warning(
                "%s: dropping a partial last record (%d bytes)", self.path, len(data) - good_end
            )
            with self.path.open("r+b") as f:
                f.truncate(good_end)
            data = data[:good_end]
        records: dict[str, Record] = {}
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                records[rec["key"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ResultsError(f"{self.path}:{number}: not a results record") from None
        return records

    def append(self, record: Record) -> None:
        """Append one record and force it to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
