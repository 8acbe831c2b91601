"""Results records: one JSON line per episode, their provenance and the file that keeps them.

:class:`Record` is the one definition of what an episode record holds (the runner writes it,
the metrics and the report read it); :class:`RunStore` is the append-only JSON-lines file a
run writes and resumes from. Every record read from a file is checked before anything uses
it (:func:`check_record`): its schema (every field, its type, no other field, finite
numbers), the record against itself (its key, MTTR only when recovered and within the
episode, safe calls within the executed ones, ...) and the file against itself (no record
twice). A problem is a :class:`~pase_gym.errors.ResultsError` naming ``FILE:LINE`` and the
field.

What this does not catch: a record forged consistently. ``pase-bench verify`` runs the
episodes of a results file again and compares (:mod:`pase_gym.harness.verify`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict

from pase_gym import __version__
from pase_gym.errors import ResultsError
from pase_gym.scenarios.schema import ScenarioSpec
from pase_gym.sim.faults import FAULTS

logger = logging.getLogger(__name__)

SPLITS = ("train", "test", "unseen")
ISOLATIONS = ("in-process", "process")


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
        "scenario_sha256": str,  # the scenario as it ran (scenario_digest)
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
        # the plan each env step received, in the plan language's canonical text; null for an
        # answer that was not a plan (malformed, or the agent raised): what verify replays
        "trace": list[str | None],
        "plan_steps": int,  # primitive calls of the recovery
        "executed_calls": int,
        "safe_calls": int,
        "harmed": int,  # healthy nodes the agent's calls interrupted
        "violations": int,  # calls whose preconditions failed
        "cost": float,
        "return": float,  # the episode's summed reward
        "agent_errors": int,  # act() or reset() raised
        "compute_s": float,  # the agent's wall-clock compute time (varies from run to run)
        "isolation": str,  # "process": the sandbox; "in-process": the evaluator's own process
        "agent_failure": str | None,  # why the sandbox stopped the agent, ending the episode
        "versions": dict[str, str],
        "git_commit": str,
        # only for an agent that verifies its plans (it sets ``last_feasibility`` in act()):
        # the feasibility F it gave each step's plan (null where it gave none), and whether
        # that plan was good by the simulator's dry run at that step (recovered, no harm, no
        # violation; null where no F was given)
        "feasibility": NotRequired[list[float | None]],
        "plan_good": NotRequired[list[bool | None]],
    },
)


# strict: an int field takes no bool, float or string; no other field; finite floats only
with_config(ConfigDict(strict=True, extra="forbid", allow_inf_nan=False))(Record)
_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)
MAX_LINE_BYTES = 8_000_000  # a real record is 1-5 kB, most of it its plan trace


def record_key(agent: str, suite: str, scenario: str, seed: int) -> str:
    """The identity of an episode within a results file."""
    return f"{agent}|{suite}|{scenario}|{seed}"


def scenario_digest(spec: ScenarioSpec) -> str:
    """sha256 of a scenario's canonical JSON: the same for the same scenario wherever and
    however its file is written, different when anything that shapes an episode changes."""
    return hashlib.sha256(spec.model_dump_json().encode("utf-8")).hexdigest()


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


def contradictions(record: Record) -> list[str]:
    """What a schema-valid record says against itself (empty when nothing)."""
    r = record
    out: list[str] = []
    key = record_key(r["agent_spec"], r["suite"], r["scenario"], r["seed"])
    if r["key"] != key:
        out.append(f"field 'key': {r['key']!r} is not agent_spec|suite|scenario|seed ({key!r})")
    counts = ("seed", "ticks", "decisions", "plan_steps", "executed_calls", "safe_calls")
    for name in (*counts, "harmed", "violations", "agent_errors"):
        if r[name] < 0:  # type: ignore[literal-required]
            out.append(f"field {name!r}: expected a count >= 0, found {r[name]}")  # type: ignore[literal-required]
    for name in ("cost", "compute_s"):
        if r[name] < 0:  # type: ignore[literal-required]
            out.append(f"field {name!r}: expected a value >= 0, found {r[name]}")  # type: ignore[literal-required]
    if r["isolation"] not in ISOLATIONS:
        out.append(
            f"field 'isolation': expected one of {', '.join(ISOLATIONS)}, found {r['isolation']!r}"
        )
    if r["agent_failure"] is not None and (r["recovered"] or not r["agent_failure"]):
        out.append("field 'agent_failure': a stopped agent's episode is failed, with a reason")
    if r["split"] not in SPLITS:
        out.append(f"field 'split': expected one of {', '.join(SPLITS)}, found {r['split']!r}")
    if r["recovered"] and r["mttr"] is None:
        out.append("field 'mttr': a recovered episode needs its MTTR, found null")
    if not r["recovered"] and r["mttr"] is not None:
        out.append(f"field 'mttr': an unrecovered episode has no MTTR, found {r['mttr']}")
    if r["mttr"] is not None and not 0 <= r["mttr"] <= r["ticks"]:
        out.append(f"field 'mttr': expected 0 <= mttr <= ticks ({r['ticks']}), found {r['mttr']}")
    if r["safe_calls"] > r["executed_calls"]:
        out.append("field 'safe_calls': more safe calls than executed calls")
    if r["plan_steps"] > r["executed_calls"]:
        out.append("field 'plan_steps': more recovery calls than executed calls")
    if (r["harmed"] or r["violations"]) and r["safe_calls"] >= r["executed_calls"]:
        out.append("field 'safe_calls': every call counted safe, yet calls harmed or violated")
    if r["agent_errors"] > r["decisions"] + 1:  # each act() and the one reset()
        out.append("field 'agent_errors': more errors than the agent's calls")
    steps = len(r["trace"])  # an agent the sandbox stopped in act() gave its last no plan
    if steps > r["decisions"] or steps < r["decisions"] - (r["agent_failure"] is not None):
        out.append(
            f"field 'trace': expected a plan for each of the {r['decisions']} decisions, "
            f"found {steps}"
        )
    if ("feasibility" in r) != ("plan_good" in r):
        out.append("field 'plan_good': expected beside 'feasibility' (both or neither)")
    elif "feasibility" in r:
        scores, good = r["feasibility"], r["plan_good"]
        if not len(scores) == len(good) == steps:
            out.append(
                f"field 'feasibility': expected one entry per plan of the trace ({steps}), "
                f"found {len(scores)} scores and {len(good)} outcomes"
            )
        elif any((f is None) != (g is None) for f, g in zip(scores, good, strict=True)):
            out.append("field 'plan_good': expected an outcome exactly where a score was given")
    if len(r["scenario_sha256"]) != 64 or r["scenario_sha256"].strip("0123456789abcdef"):
        out.append("field 'scenario_sha256': expected 64 lowercase hexadecimal digits")
    if (r["diagnosis"] is None) != (r["diagnosed_node"] is None):
        out.append("field 'diagnosed_node': a diagnosis names a fault type and a node, or neither")
    if not r["fault_types"] or not len(r["fault_types"]) == len(r["fault_nodes"]) == len(
        r["families"]
    ):
        out.append("field 'fault_types': expected one fault type, node and family per fault")
    for fault_type, family in zip(r["fault_types"], r["families"], strict=False):
        known = FAULTS.get(fault_type)
        if known is not None and known.family != family:
            out.append(
                f"field 'families': {fault_type} is of family {known.family!r}, found {family!r}"
            )
    return out


def check_record(record: object, where: str) -> Record:
    """``record`` as a :class:`Record` if it is one and does not contradict itself.

    Raises:
        ResultsError: ``"{where}: field 'mttr': ..."``, naming the first problem.
    """
    try:
        valid = _ADAPTER.validate_python(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        what = f"field {field!r}: " if field else ""
        raise ResultsError(f"{where}: {what}{first['msg']}") from None
    problems = contradictions(valid)
    if problems:
        raise ResultsError(f"{where}: {problems[0]}")
    return valid


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a record may hold")


def parse_line(line: str, where: str) -> Record:
    """One line of a results file as a checked :class:`Record`.

    Raises:
        ResultsError: not JSON, not a record, or a record that contradicts itself.
    """
    if len(line) > MAX_LINE_BYTES:
        raise ResultsError(f"{where}: a line of {len(line)} characters is not a results record")
    try:
        data = json.loads(line, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ResultsError(f"{where}: not a JSON record ({exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: expected a JSON object, found {type(data).__name__}")
    return check_record(data, where)


class RunStore:
    """A JSON-lines results file that survives being killed mid-write and checks what it reads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Record]:
        """Records by key, each checked (:func:`parse_line`); a torn last line (a kill
        mid-write) is cut off the file.

        Raises:
            ResultsError: ``FILE:LINE`` of the first bad record, of an exact duplicate line or
                of a second record for a key.
        """
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
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = data[: exc.start].count(b"\n") + 1
            raise ResultsError(f"{self.path}:{bad}: not UTF-8 text") from None
        records: dict[str, Record] = {}
        first_line: dict[str, int] = {}
        lines: dict[str, str] = {}
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            where = f"{self.path}:{number}"
            rec = parse_line(line, where)
            key = rec["key"]
            if key in records:
                same = "an exact duplicate of" if lines[key] == line else "a second record for"
                raise ResultsError(
                    f"{where}: {same} the episode of line {first_line[key]} ({key}); a results "
                    "file holds each episode once"
                )
            records[key] = rec
            first_line[key] = number
            lines[key] = line
        return records

    def append(self, record: Record) -> None:
        """Check one record, append it and force it to disk.

        Raises:
            ResultsError: the record is not a valid :class:`Record` (nothing is written).
        """
        check_record(record, f"{self.path} (record to append)")
        line = json.dumps(record, sort_keys=True, allow_nan=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
