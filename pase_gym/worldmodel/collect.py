"""The world model's data set: observed scenes, candidate plans, and what each plan really did.

At each decision point of an episode (the incident's first observation, and the one after a
probe of an alarmed node) the collector takes the agent's view (:class:`~.view.Seen`) and a set
of candidate plans from several sources, so that good and bad plans are both common:

* ``oracle``: the runbook plan of the active faults (:func:`pase_gym.sim.oracle.oracle_plan`);
* ``mutant``: the oracle's plan changed once: a call dropped, a node swapped for a replica or a
  random node, a call replaced, a disruptive call on a healthy-looking node added, the order
  reversed, only the first call kept, a probe or a wait slipped in, or a call repeated;
* ``targeted``: one to three random acting calls aimed at the alarmed nodes, their hosts and
  groups (plausible-looking guesses);
* ``random``: one to four random calls on any node of the inventory.

Each plan runs as a dry run (:meth:`pase_gym.episode.Episode.simulate`, the one transition
function on a copy of the state and the random stream), which records per call the change of
the eight health indicators of every node over the call's duration (ΔH: kept for the call's
target node, as the mean over the provisioned nodes, and sparsely per node where any indicator
moved by at least :data:`SPARSE_DELTA`), the nodes it harmed and whether it violated a
precondition; and per plan the real outcome: recovered, harm, violations, cost, simulated
seconds and the residual share of nodes breaking their SLO. A plan is **good** when it
recovered with no harm and no violation: the label the feasibility AUC ranks against.

Scenes come from the named split only (the NSWM trains on ``train``; ``test`` and ``unseen`` are
the evaluation sets). The tiny train clouds are also run on a ``small`` cloud of the same
layout seed (the test clouds' size), as GCN-FR's training does. Seeded: the same arguments give
the same rows. Written as Parquet through pandas (the ``bench`` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pase_gym.errors import WorldModelError
from pase_gym.scenarios import list_scenarios, load_scenario
from pase_gym.sim.dynamics import ensure_indicators
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Call, Plan, as_plan
from pase_gym.sim.primitives import INERT, PRIMITIVES, ParamType, PrimitiveSpec
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.state import SimState
from pase_gym.sim.transition import CallOutcome

from .features import CALL_DIM, N_IND, encode
from .plans import MAX_CALLS, unknown_names
from .symbolic import INTERRUPTS, coverage
from .view import GROUPS, Seen

logger = logging.getLogger(__name__)

SOURCES = ("oracle", "mutant", "targeted", "random")
SPARSE_DELTA = 0.01
AUGMENT_SIZE = "small"
DATA_VERSION = 1
ACTING = tuple(name for name in PRIMITIVES if name not in INERT)
DISRUPTIVE = tuple(name for name in INTERRUPTS if PRIMITIVES[name].params[0].type is ParamType.NODE)


@dataclass(frozen=True)
class Budget:
    """How many plans of each source a decision point gets (``oracle``: whether the runbook
    itself is one; its mutants need it)."""

    mutants: int = 4
    targeted: int = 3
    random: int = 2
    oracle: bool = True
    agent_mutants: int = 1


def _arg(
    spec_param: Any, seen: Seen, rows: np.ndarray, rng: np.random.Generator
) -> int | str | None:
    """A value for one parameter: nodes from ``rows``, groups near them, small numbers."""
    p = spec_param
    if p.type is ParamType.NODE:
        return seen.names[int(rows[int(rng.integers(rows.size))])] if rows.size else None
    if p.type is ParamType.GROUP:
        near = [g for g in GROUPS if g in {_role_name(seen, int(r)) for r in rows}]
        pool = near if near and rng.random() < 0.7 else list(GROUPS)
        return pool[int(rng.integers(len(pool)))]
    if p.type is ParamType.RESOURCE:
        return p.choices[int(rng.integers(len(p.choices)))]
    if p.presets:
        return int(p.presets[int(rng.integers(len(p.presets)))])
    return int(rng.integers(p.lo, min(p.hi, p.lo + 3) + 1))


def _role_name(seen: Seen, row: int) -> str:
    return ROLE_NAMES[int(seen.role[row])]


def _random_call(
    seen: Seen, rows: np.ndarray, rng: np.random.Generator, names: Sequence[str]
) -> Call | None:
    spec: PrimitiveSpec = PRIMITIVES[names[int(rng.integers(len(names)))]]
    args = []
    for param in spec.params:
        value = _arg(param, seen, rows, rng)
        if value is None:
            return None
        args.append(value)
    return Call(spec.name, tuple(args))


def _alarmed_rows(seen: Seen) -> np.ndarray:
    alarmed = np.flatnonzero((seen.alarms.sum(axis=1) > 0) & seen.active)
    if alarmed.size == 0:
        return np.flatnonzero(seen.active)
    near = [alarmed, seen.host_of[alarmed]]
    near += [seen.neighbours[int(r)] for r in alarmed[:8]]
    rows = np.unique(np.concatenate(near))
    return rows[seen.active[rows]]


def _calls(seen: Seen, rows: np.ndarray, rng: np.random.Generator, k: int) -> list[Call]:
    calls: list[Call] = []
    for _ in range(20 * k):
        if len(calls) == k:
            break
        call = _random_call(seen, rows, rng, ACTING)
        if call is not None and call not in calls:
            calls.append(call)
    return calls


def mutate(plan: Plan, seen: Seen, rng: np.random.Generator) -> Plan:
    """The plan changed once (see the module docstring); never the plan itself unless no
    change applies."""
    steps = list(plan.steps)
    active = np.flatnonzero(seen.active)
    for _ in range(10):
        op = int(rng.integers(8))
        out = list(steps)
        if op == 0 and len(out) > 1:
            del out[int(rng.integers(len(out)))]
        elif op == 1:
            i = int(rng.integers(len(out)))
            call = out[i]
            nodes = [j for j, p in enumerate(call.spec().params) if p.type is ParamType.NODE]
            if not nodes:
                continue
            j = nodes[int(rng.integers(len(nodes)))]
            row = seen.index.get(str(call.args[j]))
            same = (
                np.flatnonzero((seen.role == seen.role[row]) & seen.active)
                if row is not None
                else active
            )
            pool = same if same.size > 1 and rng.random() < 0.7 else active
            args = list(call.args)
            args[j] = seen.names[int(pool[int(rng.integers(pool.size))])]
            out[i] = Call(call.name, tuple(args))
        elif op == 2:
            i = int(rng.integers(len(out)))
            new = _calls(seen, _alarmed_rows(seen), rng, 1)
            if not new:
                continue
            out[i] = new[0]
        elif op == 3:
            healthy = np.flatnonzero(seen.looks_healthy)
            if healthy.size == 0:
                continue
            node = seen.names[int(healthy[int(rng.integers(healthy.size))])]
            name = DISRUPTIVE[int(rng.integers(len(DISRUPTIVE)))]
            extra = _random_call(seen, np.array([seen.index[node]]), rng, (name,))
            if extra is None:
                continue
            out.insert(int(rng.integers(len(out) + 1)), extra)
        elif op == 4 and len(out) > 1:
            out.reverse()
        elif op == 5 and len(out) > 1:
            out = out[:1]
        elif op == 6:  # a probe or a short wait slipped in: usually harmless
            probe = _random_call(seen, _alarmed_rows(seen), rng, ("Inspect", "QueryLogs", "Wait"))
            if probe is None:
                continue
            out.insert(int(rng.integers(len(out) + 1)), probe)
        elif op == 7:  # a call repeated
            i = int(rng.integers(len(out)))
            out.insert(i + 1, out[i])
        if out != steps:
            return Plan(tuple(out))
    return Plan(tuple(steps))


def candidate_plans(
    state: SimState, seen: Seen, rng: np.random.Generator, budget: Budget
) -> list[tuple[str, Plan]]:
    """``(source, plan)`` candidates for one decision point (the oracle's reads ``state``)."""
    out: list[tuple[str, Plan]] = []
    oracle = oracle_plan(state) if budget.oracle else Plan.empty()
    if oracle.steps:
        oracle = Plan(oracle.steps)  # the diagnosis changes nothing in a dry run
        out.append(("oracle", oracle))
        for _ in range(budget.mutants):
            out.append(("mutant", mutate(oracle, seen, rng)))
    rows = _alarmed_rows(seen)
    for _ in range(budget.targeted):
        calls = _calls(seen, rows, rng, int(rng.integers(1, 4)))
        if calls:
            out.append(("targeted", Plan(tuple(calls))))
    everyone = np.flatnonzero(seen.active)
    for _ in range(budget.random):
        calls = _calls(seen, everyone, rng, int(rng.integers(1, 5)))
        if calls:
            out.append(("random", Plan(tuple(calls))))
    return out


def _reset_agents(agents: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The agents whose ``reset(seed)`` went through (the others sit the episode out)."""
    playing = {}
    for name, agent in agents.items():
        try:
            agent.reset(seed)
        except Exception as exc:  # an agent's failure costs its plans, not the data set
            logger.warning("plan source %s: reset failed: %s", name, exc)
            continue
        playing[name] = agent
    return playing


def agent_plans(
    agents: Mapping[str, Any],
    obs: Any,
    info: Any,
    seen: Seen,
    rng: np.random.Generator,
    budget: Budget,
) -> list[tuple[str, Plan]]:
    """Each agent's plan for this decision point, and mutants of it."""
    out: list[tuple[str, Plan]] = []
    for name, agent in agents.items():
        try:
            plan = Plan(as_plan(agent.act(obs, info)).steps)
        except Exception as exc:  # an answer that is no plan adds nothing
            logger.info("plan source %s: no plan (%s)", name, exc)
            continue
        if not 0 < len(plan.steps) <= MAX_CALLS or any(unknown_names(seen, c) for c in plan.steps):
            continue
        if all(c.name in INERT for c in plan.steps):
            continue  # the agent waits or probes: no recovery proposed here
        out.append((f"agent:{name}", plan))
        for _ in range(budget.agent_mutants):
            out.append((f"agent-mutant:{name}", mutate(plan, seen, rng)))
    return out


def _health(state: SimState) -> np.ndarray:
    ensure_indicators(state)
    return np.asarray(state.health, dtype=np.float64).copy()


def dry_run(episode: Any, seen: Seen, plan: Plan) -> dict[str, Any]:
    """Run ``plan`` as a dry run of ``episode`` and record what it did (one data set row,
    without the features)."""
    live = episode.state
    # an observation was just made, so the indicators are usually current; only when they
    # are not does a copy compute them (doing it on the live state would add a history row)
    current = live.health_at == live.evaluated_at
    before = [live.health.copy() if current else _health(live.copy(logs=False))]
    active0 = live.active.copy()
    per_call: list[dict[str, Any]] = []

    def watch(state: SimState, outcome: CallOutcome) -> None:
        after = _health(state)
        delta = after - before[-1]
        before.append(after)
        target = np.zeros(N_IND)
        for param, value in zip(outcome.call.spec().params, outcome.call.args, strict=True):
            if param.type is ParamType.NODE and str(value) in seen.index:
                target = delta[seen.index[str(value)]]
                break
        moved = np.flatnonzero(np.abs(delta).max(axis=1) >= SPARSE_DELTA)
        per_call.append(
            {
                "dh_target": target,
                "dh_mean": delta[active0].mean(axis=0),
                "dh_nodes": moved.astype(np.int32),
                "dh_sparse": delta[moved].astype(np.float32).ravel(),
                "harmed": len(outcome.harmed),
                "violated": bool(outcome.violations),
                "ticks": outcome.end - outcome.start,
            }
        )

    prediction = episode.simulate(plan, watch=watch)
    return {
        "recovered": bool(prediction.recovered),
        "harm": len(prediction.harmed),
        "violations": len(prediction.violations),
        "cost": float(prediction.cost),
        "ticks": int(prediction.ticks),
        "residual": float(prediction.residual),
        "good": bool(prediction.recovered and not prediction.harmed and not prediction.violations),
        "per_call": per_call,
    }


def _runs(split: str, augment: bool) -> list[tuple[str, str | None]]:
    runs: list[tuple[str, str | None]] = []
    for name in list_scenarios(split):
        runs.append((name, None))
        spec = load_scenario(name)
        if augment and spec.topology.nodes != AUGMENT_SIZE:
            runs.append((name, AUGMENT_SIZE))
    return runs


def collect(
    split: str,
    episodes: int,
    seed: int = 0,
    *,
    budget: Budget | None = None,
    augment: bool | None = None,
    scenarios: Sequence[str] | None = None,
    agents: Mapping[str, Any] | None = None,
    agent_episodes: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Rows of the data set for ``split`` (see the module docstring).

    Args:
        split: ``train``, ``test`` or ``unseen``: the scenes come from this split only.
        episodes: episode seeds per scenario (and per size).
        seed: seeds the plan sources; episode ``e`` of a run uses env seed
            ``seed * 100_003 + e``.
        budget: plans per source and decision point.
        augment: also run tiny clouds at the small size (default: for ``train`` only).
        scenarios: a subset of the split's scenarios (default: all).
        agents: more plan sources, name -> agent (``reset(seed)``, ``act(observation,
            info)``): at each decision point the agent's plan (source ``agent:<name>``) and
            ``budget.agent_mutants`` one-change mutants of it (``agent-mutant:<name>``),
            drawn from a generator of their own, so that the other sources' rows are the
            same with or without agents. An agent that raises, answers with no plan or only
            waits or probes adds nothing there.
        agent_episodes: the agents act in the first this many episodes of each run only
            (default: all; a language model's plans cost about a second each).
        progress: show a progress bar.

    Raises:
        WorldModelError: an unknown split, or a scenario outside it.
    """
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids)
    from pase_gym.env.core import episode_of

    if split not in ("train", "test", "unseen"):
        raise WorldModelError(f"split: expected train, test or unseen, found {split!r}")
    if episodes < 1:
        raise WorldModelError(f"episodes: expected at least 1, found {episodes}")
    budget = budget or Budget()
    runs = _runs(split, split == "train" if augment is None else augment)
    if scenarios is not None:
        unknown = sorted(set(scenarios) - {name for name, _ in runs})
        if unknown:
            raise WorldModelError(
                f"scenarios: {', '.join(unknown)} not in the {split} split "
                f"({', '.join(list_scenarios(split))})"
            )
        runs = [r for r in runs if r[0] in scenarios]
    rng = np.random.default_rng([seed, 0x3D])
    agent_rng = np.random.default_rng([seed, 0xA6])
    agents = dict(agents or {})
    rows: list[dict[str, Any]] = []
    bar = tqdm(runs, desc=f"collect {split}", unit="run", disable=not progress)
    for name, size in bar:
        env = gym.make("PASE-OpenStack-v4", scenario=name, nodes=size, start="incident")
        for ep in range(episodes):
            env_seed = seed * 100_003 + ep
            obs, info = env.reset(seed=env_seed)
            acting = agent_episodes is None or ep < agent_episodes
            playing = _reset_agents(agents, env_seed) if acting else {}
            for decision in range(2):
                if decision:
                    alarmed = np.flatnonzero(obs["alarms"].sum(axis=1) > 0)
                    names = info["slot_names"]
                    if alarmed.size == 0:
                        break
                    probe = names[int(alarmed[int(rng.integers(alarmed.size))])]
                    obs, _, terminated, truncated, info = env.step(f"Inspect({probe})")
                    if terminated or truncated:
                        break
                seen = Seen.of(obs, info)
                episode = episode_of(env)
                candidates = candidate_plans(episode.state, seen, rng, budget)
                candidates += agent_plans(playing, obs, info, seen, agent_rng, budget)
                for source, plan in candidates:
                    batch = encode([seen], [plan])
                    n_calls = len(plan.steps)
                    row = {
                        "split": split,
                        "scenario": name,
                        "size": size or "native",
                        "seed": env_seed,
                        "decision": decision,
                        "source": source,
                        "plan": str(plan),
                        "n_calls": n_calls,
                        "scene": batch.scene[0],
                        "calls": batch.calls[0, :n_calls].ravel(),
                        "symbolic": batch.symbolic[0, :n_calls].ravel(),
                        "coverage": coverage(seen, plan),
                    }
                    row.update(dry_run(episode, seen, plan))
                    rows.append(row)
        env.close()
        good = sum(r["good"] for r in rows)
        bar.set_postfix_str(f"{len(rows)} plans, {good} good")
    return rows


def to_frame(rows: Sequence[dict[str, Any]]) -> Any:
    """The rows as a pandas DataFrame (per-call fields as list columns)."""
    import pandas as pd

    flat = []
    for row in rows:
        out = {k: v for k, v in row.items() if k != "per_call"}
        calls = row["per_call"]
        out["dh_target"] = np.concatenate([c["dh_target"] for c in calls]) if calls else []
        out["dh_mean"] = np.concatenate([c["dh_mean"] for c in calls]) if calls else []
        out["dh_nodes"] = [c["dh_nodes"] for c in calls]
        out["dh_sparse"] = [c["dh_sparse"] for c in calls]
        out["call_harmed"] = [c["harmed"] for c in calls]
        out["call_violated"] = [c["violated"] for c in calls]
        out["call_ticks"] = [c["ticks"] for c in calls]
        flat.append(out)
    frame = pd.DataFrame(flat)
    frame.attrs["version"] = DATA_VERSION
    return frame


def write(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write the rows as Parquet; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = to_frame(rows)
    frame.to_parquet(out, index=False)
    return out


REQUIRED_COLUMNS = (
    "scene",
    "calls",
    "symbolic",
    "n_calls",
    "good",
    "recovered",
    "harm",
    "violations",
    "residual",
    "dh_target",
    "dh_mean",
    "call_harmed",
    "scenario",
    "seed",
    "split",
    "coverage",
)


def read(path: str | Path) -> Any:
    """A data set written by :func:`write` (pandas DataFrame).

    Raises:
        WorldModelError: the file is missing, not Parquet, or lacks a column.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise WorldModelError(
            f"{p}: no such data set (write it with: pase-gym worldmodel collect --split ...)"
        )
    try:
        frame = pd.read_parquet(p)
    except Exception as exc:
        raise WorldModelError(f"{p}: not a readable Parquet file ({exc})") from None
    version = frame.attrs.get("version")
    if version != DATA_VERSION:
        raise WorldModelError(
            f"{p}: a data set of version {DATA_VERSION} expected, found {version!r} "
            "(collect it again with this version)"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise WorldModelError(f"{p}: expected the columns {', '.join(missing)} (missing)")
    for i, (n, calls) in enumerate(zip(frame["n_calls"], frame["calls"], strict=True)):
        if len(calls) != int(n) * CALL_DIM:
            raise WorldModelError(
                f"{p}: row {i}: expected {int(n)} calls of {CALL_DIM} features, found "
                f"{len(calls)} numbers (written by another version?)"
            )
    return frame
