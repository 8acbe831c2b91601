"""Train PASE's meta-prompt optimiser: the loop's three phases on the train split.

    python agents/pase_full/train.py [--phase all|warmup|joint] [--warmup-episodes 48]
        [--joint-episodes 24] [--seed 0] [--out agents/pase_full/mpo.zip]
        [--checkpoint artifacts/pase_full/checkpoint.zip] [--fresh] [--device cpu]

1. **World-model pre-training** is its own command, ``pase-worldmodel all --ship`` (the
   shipped NSWM, ``pase_gym/worldmodel/nswm.pt``); this command uses it frozen.
2. **MPO warm-up** (``--warmup-episodes``): the description encoder's PCA is fitted on the
   train split's first-alarm descriptions (17 scenarios x seeds 0-3); then episodes of the
   train split (seeds from 100, a seeded order) run the loop with the base prompt template
   fixed and no gate: each round the engine writes the candidates under a prompt drawn from
   the SAC policy, the world model picks the best, and it runs; after each episode the
   executed plans are SAC transitions with eq. 7's reward (``learn``). Every scored candidate
   is also dry-run on the training env (training side only) and, at the end of the phase, the
   threshold ``tau`` is the ``F`` that best separates candidates that would recover safely
   from those that would not (the largest balanced accuracy).
3. **Joint fine-tuning** (``--joint-episodes``): the whole loop with that ``tau`` (gate,
   refinement, fallback), the MPO still learning. The world model stays frozen in this
   version.

A checkpoint (the SAC state with its replay buffer, the encoder, the log) is written after
every episode, atomically: a killed run started again goes on from the last finished episode
and ends with the same file (``--fresh`` starts over). Seeded throughout; see this folder's
README for the time it takes and whether a rerun reproduces the shipped ``mpo.zip``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "mpo.zip"
DEFAULT_CHECKPOINT = Path("artifacts/pase_full/checkpoint.zip")
FIT_SEEDS = range(4)
FIRST_SEED = 100


def _sibling(name: str) -> Any:
    from pase_gym.harness.agent import sibling

    return sibling(HERE, name)


def episodes_plan(seed: int, warmup: int, joint: int) -> list[tuple[str, str, int]]:
    """``(phase, scenario, seed)`` of every training episode, in order: the train split's
    scenarios in a seeded order, cycled, each pass with fresh env seeds."""
    from pase_gym.scenarios import list_scenarios

    names = list_scenarios("train")
    rng = np.random.default_rng(seed)
    out: list[tuple[str, str, int]] = []
    n = warmup + joint
    passes = 0
    while len(out) < n:
        order = rng.permutation(len(names))
        for i in order:
            if len(out) == n:
                break
            phase = "warmup" if len(out) < warmup else "joint"
            out.append((phase, names[int(i)], FIRST_SEED + passes))
        passes += 1
    return out


def choose_tau(samples: Sequence[tuple[float, bool]]) -> tuple[float, dict[str, float]]:
    """The threshold on ``F`` with the largest balanced accuracy over ``(F, good)`` samples
    (midpoints between distinct scores; ties: the lower threshold)."""
    if not samples:
        raise ValueError("no scored candidates to choose tau from")
    f = np.array([s[0] for s in samples], dtype=np.float64)
    good = np.array([s[1] for s in samples], dtype=bool)
    if good.all() or not good.any():
        return float(f.min() - 1e-6), {"balanced_accuracy": 0.5, "candidates": float(len(f))}
    levels = np.unique(f)
    cuts = np.concatenate([[levels[0] - 1e-6], (levels[:-1] + levels[1:]) / 2])
    best, best_acc = float(cuts[0]), -1.0
    for c in cuts:
        tpr = float(np.mean(f[good] > c))
        tnr = float(np.mean(f[~good] <= c))
        acc = (tpr + tnr) / 2
        if acc > best_acc + 1e-12:
            best, best_acc = float(c), acc
    return best, {
        "balanced_accuracy": round(best_acc, 4),
        "candidates": float(len(f)),
        "good": float(good.sum()),
    }


def _run_episode(agent: Any, scenario: str, seed: int, calibrate: list[Any]) -> dict[str, Any]:
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids)
    from pase_gym.env.core import episode_of
    from pase_gym.harness.runner import plan_is_good

    env = gym.make("PASE-OpenStack-v4", scenario=scenario)
    base = env.unwrapped
    try:
        obs, info = env.reset(seed=seed)
        agent.reset(seed)
        agent.observer = lambda cands, scores: calibrate.extend(
            (float(s), plan_is_good(base, c)) for c, s in zip(cands, scores, strict=True)
        )
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, info = env.step(agent.act(obs, info))
            total += float(r)
            done = terminated or truncated
        report = episode_of(env).report()
    finally:
        agent.observer = None
        env.close()
    return {"recovered": bool(report.recovered), "mttr": report.mttr, "return": total}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python agents/pase_full/train.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--phase", choices=("all", "warmup", "joint"), default="all")
    parser.add_argument("--warmup-episodes", type=int, default=48)
    parser.add_argument("--joint-episodes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.warmup_episodes < 1 or args.joint_episodes < 0:
        parser.error("--warmup-episodes must be >= 1 and --joint-episodes >= 0")

    import torch
    from tqdm import tqdm

    mpo_mod = _sibling("mpo")
    agent_mod = _sibling("agent")
    torch.set_num_threads(2)
    plan = episodes_plan(args.seed, args.warmup_episodes, args.joint_episodes)
    settings = {
        "seed": args.seed,
        "warmup_episodes": args.warmup_episodes,
        "joint_episodes": args.joint_episodes,
    }
    reader = mpo_mod.load_reader(args.device)
    state: dict[str, Any]
    if args.checkpoint.is_file() and not args.fresh:
        mpo, encoder, header = mpo_mod.load(args.checkpoint)
        state = header["training"]
        if state["settings"] != settings:
            parser.error(
                f"{args.checkpoint} was written with {state['settings']}, not {settings}; "
                "pass --fresh to start over"
            )
        encoder.reader = reader
        print(f"resuming from {args.checkpoint}: {len(state['episodes'])} episodes done")
    else:
        from pase_gym.llm.demonstrations import collect_demonstrations

        demos = collect_demonstrations("train", seeds=FIT_SEEDS)
        encoder = mpo_mod.Encoder(reader)
        encoder.fit(encoder.embed([d.description for d in demos]))
        mpo = mpo_mod.MetaPromptOptimiser(seed=args.seed)
        state = {
            "settings": settings,
            "episodes": [],
            "calibration": [],
            "tau": None,
            "seconds": 0.0,
        }
    agent = agent_mod.Agent(device=args.device)
    agent.use(mpo, encoder, {"tau": state["tau"]} if state["tau"] is not None else {})
    agent.online = True
    todo = plan[len(state["episodes"]) :]
    if args.phase == "warmup":
        todo = [e for e in todo if e[0] == "warmup"]
    elif args.phase == "joint":
        todo = [e for e in todo if e[0] == "joint"]
    bar = tqdm(todo, desc="MPO training", unit="episode", disable=args.quiet)
    for phase, scenario, seed in bar:
        if phase == "joint" and state["tau"] is None:
            tau, stats = choose_tau(state["calibration"])
            state["tau"], state["tau_stats"] = tau, stats
            agent.header = {"tau": tau}
        agent.gate = phase == "joint"
        start = time.perf_counter()
        calibrate: list[tuple[float, bool]] = []
        fallbacks = len(agent.fallbacks)
        out = _run_episode(agent, scenario, seed, calibrate)
        agent.learn({"recovered": out["recovered"], "mttr": out["mttr"]})
        if phase == "warmup":
            state["calibration"].extend(calibrate)
        state["seconds"] += time.perf_counter() - start
        state["episodes"].append(
            {
                "phase": phase,
                "scenario": scenario,
                "seed": seed,
                **out,
                "fallbacks": len(agent.fallbacks) - fallbacks,
            }
        )
        done = state["episodes"]
        bar.set_postfix(recovered=f"{np.mean([e['recovered'] for e in done[-10:]]):.2f}")
        mpo_mod.save(args.checkpoint, mpo, encoder, {"training": state}, with_buffer=True)
    finished = len(state["episodes"]) == len(plan)
    if finished and state["tau"] is None:
        tau, stats = choose_tau(state["calibration"])
        state["tau"], state["tau_stats"] = tau, stats
        mpo_mod.save(args.checkpoint, mpo, encoder, {"training": state}, with_buffer=True)
    if not finished:
        print(f"checkpoint at {args.checkpoint}: {len(state['episodes'])}/{len(plan)} episodes")
        return 0
    meta = {
        "tau": state["tau"],
        "tau_stats": state.get("tau_stats"),
        "command": "python agents/pase_full/train.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": settings,
        "episodes": [
            {k: e[k] for k in ("phase", "scenario", "seed", "recovered", "mttr", "fallbacks")}
            for e in state["episodes"]
        ],
        "train_seconds": round(state["seconds"], 1),
    }
    mpo_mod.save(args.out, mpo, encoder, meta)
    rec = [e["recovered"] for e in state["episodes"]]
    print(
        f"wrote {args.out}: tau {state['tau']:.3f}, recovered {np.mean(rec):.2f} over "
        f"{len(rec)} training episodes, {state['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
