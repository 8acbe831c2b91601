"""Train MaskablePPO on the tiny cloud and compare it with always waiting, seed by seed.

    python agents/maskable_ppo/train.py [--steps 102400] [--demonstrations 300] [--seed 0]
                                        [--eval-episodes 100] [--out runs/maskable_ppo/policy.zip]

The policy is :class:`NodeSharedPolicy` (``policy.py``) on ``PASE-OpenStack-Tiny-v4`` (one of
14 train-family faults per episode, drawn by the env), through :class:`RecoveryMemory` and the
exact precondition masks of :class:`~pase_gym.wrappers.DiscretePlanAction`. Training has two
stages:

1. **Warm start** (``--demonstrations N``, 0 to skip): N episodes of a teacher that plays the
   oracle's runbooks one call per step (it reads the ground truth; ``demonstrations.py``), and
   the policy cloned from them (masked cross-entropy, ``--clone-epochs``). From scratch PPO
   never sees a recovery to learn from: see the README.
2. **MaskablePPO** for ``--steps`` env steps with the env's own reward.

Then the trained policy (greedy) and always-wait (``Wait(10)`` every step) play the same
evaluation seeds, which training never resets to (``--eval-start`` onwards), and the command
prints per policy the mean return and the shares of episodes recovered and safely recovered
(no healthy node harmed), and the paired difference of returns with its 95% percentile-
bootstrap interval over seeds. Writes ``<out>`` (the SB3 model) and ``<out>.json`` (the
command, settings, timings and the evaluation).

CPU only, torch on one thread; the teacher's episodes, the cloning's batches, PPO and the
evaluation are all seeded, so the same command gives the same numbers on the same machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.harness.agent import sibling

ENV_ID = "PASE-OpenStack-Tiny-v4"
HYPERPARAMETERS: dict[str, Any] = {
    "n_steps": 1024,
    "batch_size": 256,
    "n_epochs": 10,
    "learning_rate": 1e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "ent_coef": 0.001,
    "clip_range": 0.2,
}
"""Generic PPO settings; nothing in them is about a fault type or a node. A low learning rate
and entropy bonus: PPO refines a cloned policy rather than exploring from scratch."""
STEPS = 102_400  # PPO env steps after the warm start: 100 rollouts of 1,024
DEMONSTRATIONS = 300  # teacher episodes for the warm start (train seeds 0..299)
CLONE_EPOCHS = 30
CLONE_LEARNING_RATE = 1e-3
CLONE_BATCH = 256
EVAL_START = 100_000  # evaluation seeds: EVAL_START, EVAL_START + 1, ...
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = Path("runs/maskable_ppo/policy.zip")  # 3 MB with PPO's optimiser state: not shipped

Policy = Callable[[Any, dict[str, np.ndarray]], int]


def _sibling(name: str) -> Any:
    """``<name>.py`` of this folder, imported once under a private name (agents are loaded by
    path, not as a package); a saved model names its classes by that name."""
    return sibling(HERE, name)


def policy_module() -> Any:
    """``policy.py``: the wrapper and the policy."""
    return _sibling("policy")


def demonstrations_module() -> Any:
    """``demonstrations.py``: the teacher and the cloning."""
    return _sibling("demonstrations")


def make_env() -> Any:
    """The tiny cloud as the policy sees it: ``RecoveryMemory(make_sb3_env(ENV_ID))``."""
    from pase_gym.wrappers import make_sb3_env

    return policy_module().RecoveryMemory(make_sb3_env(ENV_ID))


@dataclass
class Training:
    """What :func:`train` did, for the summary."""

    demonstration_samples: int = 0
    teacher_recovered: float = 0.0
    clone_loss: float | None = None
    clone_seconds: float = 0.0
    ppo_seconds: float = 0.0


def train(
    steps: int,
    seed: int,
    *,
    demonstrations: int = DEMONSTRATIONS,
    clone_epochs: int = CLONE_EPOCHS,
    hyperparameters: dict[str, Any] | None = None,
    log: Training | None = None,
) -> Any:
    """A MaskablePPO model: warm-started on ``demonstrations`` teacher episodes (seeds
    ``0..demonstrations-1``; none with 0), then trained for ``steps`` env steps with the env's
    reward. Seeded; torch on one thread."""
    import torch
    from sb3_contrib import MaskablePPO

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    log = log if log is not None else Training()
    env = make_env()
    env.reset(seed=seed)  # the policy's layout needs the cloud
    hp = {**HYPERPARAMETERS, **(hyperparameters or {})}
    model = MaskablePPO(
        policy_module().NodeSharedPolicy,
        env,
        seed=seed,
        device="cpu",
        policy_kwargs={"layout": env.layout()},
        **hp,
    )
    if demonstrations > 0:
        started = time.perf_counter()
        demo = demonstrations_module()
        samples, log.teacher_recovered = demo.collect(make_env, range(demonstrations))
        log.demonstration_samples = len(samples)
        groups = model.policy.optimizer.param_groups
        for group in groups:
            group["lr"] = CLONE_LEARNING_RATE
        log.clone_loss = demo.clone(model, samples, clone_epochs, CLONE_BATCH, seed)
        for group in groups:
            group["lr"] = hp["learning_rate"]
        log.clone_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if steps > 0:
        model.learn(steps)
    log.ppo_seconds = time.perf_counter() - started
    return model


def greedy(model: Any) -> Policy:
    """The trained policy's most likely allowed action."""
    from sb3_contrib.common.maskable.utils import get_action_masks

    def act(env: Any, obs: dict[str, np.ndarray]) -> int:
        action, _ = model.predict(obs, deterministic=True, action_masks=get_action_masks(env))
        return int(action)

    return act


def always_wait(env: Any, obs: dict[str, np.ndarray]) -> int:
    """``Wait(10)``: as long as the env monitors after each plan."""
    from pase_gym.sim.plan import Call

    return int(env.plans.encode(Call("Wait", (10,))))


@dataclass(frozen=True)
class Episodes:
    """One policy's evaluation episodes, in seed order."""

    returns: list[float]
    recovered: list[bool]
    safe: list[bool]  # recovered with no healthy node harmed


def play(policy: Policy, seeds: Sequence[int]) -> Episodes:
    """Play ``policy`` on one episode per seed."""
    from pase_gym.env.core import episode_of

    env = make_env()
    returns, recovered, safe = [], [], []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(env, obs))
            total += float(reward)
            done = terminated or truncated
        report = episode_of(env).report()
        returns.append(round(total, 6))
        recovered.append(bool(report.recovered))
        safe.append(bool(report.recovered and not report.harmed))
    return Episodes(returns, recovered, safe)


def compare(trained: Episodes, waiting: Episodes) -> dict[str, Any]:
    """Means, shares and the paired return difference with its 95% bootstrap interval."""
    from pase_gym.stats import bootstrap_mean_interval

    diff = np.asarray(trained.returns) - np.asarray(waiting.returns)
    interval = bootstrap_mean_interval(diff)
    return {
        "episodes": len(diff),
        "ppo_return": float(np.mean(trained.returns)),
        "wait_return": float(np.mean(waiting.returns)),
        "ppo_recovered": float(np.mean(trained.recovered)),
        "ppo_safe_recovered": float(np.mean(trained.safe)),
        "wait_recovered": float(np.mean(waiting.recovered)),
        "difference": float(diff.mean()),
        "difference_95": list(interval) if interval else None,
    }


def table(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table."""
    lo, hi = result["difference_95"] or (float("nan"), float("nan"))
    return (
        f"| policy ({result['episodes']} evaluation episodes) | mean return | recovered | "
        "safely recovered |\n|---|---:|---:|---:|\n"
        f"| MaskablePPO | {result['ppo_return']:.2f} | {result['ppo_recovered']:.2f} | "
        f"{result['ppo_safe_recovered']:.2f} |\n"
        f"| always wait | {result['wait_return']:.2f} | {result['wait_recovered']:.2f} | "
        f"{result['wait_recovered']:.2f} |\n\n"
        f"MaskablePPO minus always-wait, paired by seed: {result['difference']:+.2f} "
        f"(95% interval [{lo:+.2f}, {hi:+.2f}])\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS, help=f"PPO env steps ({STEPS})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--demonstrations",
        type=int,
        default=DEMONSTRATIONS,
        help=f"teacher episodes for the warm start, 0 for none ({DEMONSTRATIONS})",
    )
    parser.add_argument("--clone-epochs", type=int, default=CLONE_EPOCHS)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--eval-start", type=int, default=EVAL_START)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.steps < 0 or args.demonstrations < 0 or args.clone_epochs < 1:
        parser.error("--steps and --demonstrations must be >= 0, --clone-epochs >= 1")
    if args.eval_episodes < 2:
        parser.error("--eval-episodes must be >= 2")
    if args.eval_start < args.demonstrations:
        parser.error("--eval-start must be past the demonstration seeds")
    log = Training()
    model = train(
        args.steps,
        args.seed,
        demonstrations=args.demonstrations,
        clone_epochs=args.clone_epochs,
        log=log,
    )
    seeds = list(range(args.eval_start, args.eval_start + args.eval_episodes))
    result = compare(play(greedy(model), seeds), play(always_wait, seeds))
    sys.stdout.write(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    given = list(sys.argv[1:] if argv is None else argv)
    summary = {
        "command": shlex.join(["python", "agents/maskable_ppo/train.py", *given]),
        "env_id": ENV_ID,
        "steps": args.steps,
        "seed": args.seed,
        "demonstrations": args.demonstrations,
        "clone_epochs": args.clone_epochs,
        "hyperparameters": HYPERPARAMETERS,
        "training": asdict(log),
        "eval_seeds": [seeds[0], seeds[-1]],
        "evaluation": result,
    }
    Path(f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    total = log.clone_seconds + log.ppo_seconds
    sys.stdout.write(f"wrote {args.out} and {args.out}.json ({total:.0f} s of training)\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
