"""Train IFSHM on the train split: stage one's semantic head, then stage two's policy.

    python agents/ifshm/train.py [--episodes-per-scenario 10] [--ppo-steps 512] [--seed 0]
                                 [--device auto|cpu|cuda] [--out agents/ifshm/weights.pt]

1. **Teacher episodes.** Every train-split scenario, at its own cloud size and, for the
   all-in-one (tiny) ones, also on a ~200-node cloud of the same layout (the test clouds' size),
   for episode seeds ``0..K-1``, from normal operation (as the harness runs them). A teacher
   that reads the ground truth (training only) plays the catalogue's runbook one call per
   decision, then waits. At each decision (a step with alarms) the frozen language model
   reads D_t: the embeddings, the fault labels and the teacher's (type, node) actions are kept.
2. **Stage one.** The semantic head (standardisation, PCA, a linear fault classifier) is fitted
   on the training episodes' embeddings; episode seeds with ``seed % 5 == 4`` are validation.
3. **Stage two, warm start.** The two-level policy is cloned from the teacher's actions
   (masked cross-entropy): from scratch, PPO never sees a recovery in the budget (a random
   allowed call rarely recovers and often harms).
4. **Stage two, PPO.** MaskablePPO (sb3-contrib) continues from the clone for ``--ppo-steps``
   decisions on random train episodes, with the env's own reward; every decision reads D_t
   through the language model (that is what the budget is spent on).
5. **Validation.** The greedy policy on the validation episodes, after the clone and after
   PPO: recovered and safely recovered shares (the record keeps both; the shipped weights are
   the final ones whatever they say).

Writes the checkpoint (``--out``) and ``<out>.json``: the command, the settings, data counts,
accuracies, validation outcomes and the time of each stage. Seeded (numpy, torch, PPO), torch
on ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from pase_gym.devices import DEVICE_HELP, device_option, resolve_device
from pase_gym.harness.agent import sibling

HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)
DEFAULT_OUT = HERE / "weights.pt"
VALIDATION_EVERY = 5
WEIGHT_DECAYS = (1e-3, 1e-2, 1e-1, 1.0)  # tried for stage one's classifier
AUGMENT_SIZE = "small"
MAX_IDLE = 40  # monitoring steps before an incident (or after a recovery) at most


def _agent_module() -> Any:
    return sibling(HERE, "agent")


A = _agent_module()
MAX_DECISIONS = A.Agent.MAX_DECISIONS  # per episode (each reads D_t through the model)
P = A.sibling("policy")
S = A.sibling("semantic")


def train_runs(scenarios: Sequence[str] | None = None, augment: bool = True) -> list[tuple]:
    """(scenario, cloud size or None) pairs of the train split."""
    from pase_gym.scenarios import list_scenarios, load_scenario

    names = list(scenarios) if scenarios else list_scenarios()
    runs: list[tuple] = []
    for name in names:
        spec = load_scenario(name)
        if spec.split != "train":
            if scenarios:
                raise ValueError(f"{name} is a {spec.split}-split scenario: IFSHM trains on train")
            continue
        runs.append((name, None))
        if augment and spec.topology.nodes != AUGMENT_SIZE:
            runs.append((name, AUGMENT_SIZE))
    return runs


class IncidentEnv(gym.Env):
    """The agent's training env: one decision per step while alarms are raised.

    Wraps ``PASE-OpenStack-v4`` (from normal operation): monitoring steps without alarms are
    taken here (``Wait(10)``, their reward added), so each step of this env is one IFSHM
    decision. An episode ends with the inner one, or after ``max_decisions`` decisions (with
    ``finish``, the rest of the inner episode is then monitored, as the agent does). With a
    ``core`` it returns the policy's observations; without one (collection) it returns
    ``None`` and keeps the raw parts in :attr:`raw`.
    """

    metadata: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        core: Any,
        runs: Sequence[tuple],
        seeds: Sequence[int],
        seed: int = 0,
        max_decisions: int = MAX_DECISIONS,
        reader: Any = None,
        finish: bool = False,
    ) -> None:
        self.core = core
        self.finish = finish
        self.reader = reader if reader is not None else core
        self.runs = list(runs)
        self.seeds = list(seeds)
        self.rng = np.random.default_rng(seed)
        self.max_decisions = max_decisions
        self._envs: dict[tuple, Any] = {}
        state_dim = core.head.state_dim if core is not None else 1
        self.observation_space = P.observation_space(state_dim)
        self.action_space = P.ACTION_SPACE
        self.raw: dict[str, Any] = {}
        self._valid = np.zeros(P.K * P.MAX_SLOTS, dtype=bool)

    def _inner(self, run: tuple) -> Any:
        if run not in self._envs:
            name, size = run
            self._envs[run] = gym.make("PASE-OpenStack-v4", scenario=name, nodes=size)
        return self._envs[run]

    def _step_inner(self, plan: Any) -> float:
        obs, reward, terminated, truncated, info = self.env.step(plan)
        self.obs, self.info = obs, info
        self.done = bool(terminated or truncated)
        self.memory.see(obs, int(info.get("tick", 0)))
        return float(reward)

    def _idle(self) -> float:
        total, n = 0.0, 0
        while not self.done and n < MAX_IDLE and float(self.obs["alarms"].sum()) == 0:
            total += self._step_inner(A.WAIT_PLAN)
            n += 1
        if not self.done and float(self.obs["alarms"].sum()) == 0:
            self.done = True  # nothing more to decide on within the budget
        return total

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # type: ignore[override]
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        for _ in range(20):
            if options and "run" in options:
                run, ep = tuple(options["run"]), int(options["seed"])
            else:
                run = self.runs[int(self.rng.integers(len(self.runs)))]
                ep = int(self.seeds[int(self.rng.integers(len(self.seeds)))])
            self.run, self.episode_seed = run, ep
            self.env = self._inner(run)
            self.obs, self.info = self.env.reset(seed=ep)
            self.done = False
            self.memory = P.Memory()
            self.memory.see(self.obs, int(self.info.get("tick", 0)))
            self.handled: set[int] = set()
            self.queue: list[Any] = []
            self.decisions = 0
            self._idle()
            if not self.done or options:
                break
        return self._observe(), {}

    def _observe(self) -> Any:
        if self.done:
            return self._last
        embedding = self.reader.read([str(self.info.get("description", ""))])[0]
        raw = P.raw_input(self.obs, self.info, self.memory)
        self.raw = {"embedding": embedding, "raw": raw, "truth": self._truth()}
        self._valid = raw["valid"] > 0.5
        if self.core is None:
            self._last = None
            return None
        state = self.core.head.state(embedding[None])[0]
        self._last = P.finish(raw, state, self.core.mean, self.core.std)
        return self._last

    def action_masks(self) -> np.ndarray:
        return self._valid

    def _truth(self) -> str | None:
        truth = self.env.unwrapped.ground_truth()  # training labels only
        active = [t for t in truth if t["phase"] != "resolved"]
        return active[0]["fault_type"] if active else None

    def teacher(self) -> int:
        """The teacher's next action: the oracle's runbook, one call per decision (training
        only: it reads the simulator's state)."""
        from pase_gym.env.core import episode_of
        from pase_gym.sim.oracle import oracle_plan

        if not self.queue:
            state = episode_of(self.env).state
            plan = oracle_plan(state, skip=self.handled)
            if plan.steps:
                self.handled.update(id(f) for f in state.faults if f.active)
                self.queue = list(plan.steps)
        while self.queue:
            call = self.queue.pop(0)
            a = P.action_of(call, self.obs, self.info)
            if a is not None and self._valid[a]:
                return a
        return P.WAIT * P.MAX_SLOTS

    def step(self, action: int):  # type: ignore[override]
        k, slot = divmod(int(action), P.MAX_SLOTS)
        self.memory.sent(k, slot)
        self.decisions += 1
        call = P.call_of(k, slot, self.obs, self.info)
        from pase_gym.sim.plan import Plan

        reward = self._step_inner(Plan((call,)))
        info = dict(self.info)
        if not self.done:
            reward += self._idle()
        truncated = not self.done and self.decisions >= self.max_decisions
        if truncated and self.finish:  # as the agent does: monitor to the end of the episode
            while not self.done:
                reward += self._step_inner(A.WAIT_PLAN)
        recovered = bool(self.env.unwrapped.episode.recovered)
        terminated = self.done
        if terminated or truncated:
            info["recovered"] = recovered
            self.done = True
        obs = self._observe() if not (terminated or truncated) else self._last
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        for env in self._envs.values():
            env.close()


class _ReaderOnly:
    """Collection's stand-in for a core: the language model alone."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def read(self, descriptions: list[str]) -> np.ndarray:
        return np.asarray(self.reader.embed(descriptions))


def collect(
    reader: Any, runs: Sequence[tuple], episodes: int, progress: bool = True
) -> list[dict[str, Any]]:
    """The teacher's decisions: raw parts, label, action, run and episode seed."""
    env = IncidentEnv(None, runs, range(episodes), reader=_ReaderOnly(reader))
    rows: list[dict[str, Any]] = []
    jobs = [(run, ep) for run in runs for ep in range(episodes)]
    bar = tqdm(jobs, desc="teacher episodes", unit="ep", disable=not progress)
    for run, ep in bar:
        env.reset(options={"run": run, "seed": ep})
        while not env.done:
            a = env.teacher()
            row = {**env.raw, "action": a, "run": run, "seed": ep}
            rows.append(row)
            env.step(a)
        bar.set_postfix_str(f"{len(rows)} decisions")
    env.close()
    return rows


def stack(rows: Sequence[dict[str, Any]], head: Any, mean: np.ndarray, std: np.ndarray) -> dict:
    """Policy inputs of collected rows, batched (each built by :func:`policy.finish`)."""
    states = head.state(np.stack([r["embedding"] for r in rows]))
    inputs = [P.finish(r["raw"], st, mean, std) for r, st in zip(rows, states, strict=True)]
    return {k: np.stack([x[k] for x in inputs]) for k in inputs[0]}


def clone(policy: Any, batch: dict, actions: np.ndarray, epochs: int, seed: int) -> list[float]:
    """Behaviour cloning: masked cross-entropy on the teacher's actions (Adam, batches of 64)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    tensors = {k: torch.as_tensor(v) for k, v in batch.items()}
    y = torch.as_tensor(actions, dtype=torch.long)
    losses = []
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        total = 0.0
        for at in range(0, len(y), 64):
            idx = order[at : at + 64]
            obs = {k: v[idx] for k, v in tensors.items()}
            _, logp, _ = policy.evaluate_actions(obs, y[idx], action_masks=obs["valid"] > 0.5)
            loss = -logp.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(y))
    policy.set_training_mode(False)
    return losses


def evaluate(core: Any, runs: Sequence[tuple], seeds: Sequence[int], progress: bool) -> dict:
    """The greedy policy on ``runs`` x ``seeds`` (as the agent acts: at most
    ``MAX_DECISIONS`` decisions, then monitoring): recovered and safely recovered shares."""
    env = IncidentEnv(core, runs, seeds, finish=True)
    recovered = safe = n = 0
    for run in tqdm(runs, desc="validate", unit="run", disable=not progress):
        for ep in seeds:
            x, _ = env.reset(options={"run": run, "seed": ep})
            harmed = 0
            while not env.done:
                x, _, _, _, info = env.step(core.decide(x))
                harmed += len(info.get("harmed", []) or [])
            ok = bool(env.env.unwrapped.episode.recovered)
            recovered += ok
            safe += ok and harmed == 0
            n += 1
    env.close()
    return {"episodes": n, "recovered": recovered / max(n, 1), "safely_recovered": safe / max(n, 1)}


CACHE_FORMAT = "pase-gym-ifshm-decisions/2"


def _cached_collect(
    cache: Path | None, reader: Any, runs: Sequence[tuple], episodes: int, progress: bool
) -> list[dict[str, Any]]:
    """:func:`collect`, or its rows from ``cache`` when that file was written for the same
    runs, episodes and reader (a file of another kind is an error, not silently redone)."""
    import pickle

    key = {
        "format": CACHE_FORMAT,
        "runs": [list(r) for r in runs],
        "episodes": episodes,
        "reader": [reader.layers, reader.max_tokens, reader.prompt],
    }
    if cache is not None and cache.is_file():
        with cache.open("rb") as f:
            data = pickle.load(f)  # the user's own file, written below
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise ValueError(
                f"{cache}: not an IFSHM decisions cache of this version ({CACHE_FORMAT}); "
                "remove it to collect anew"
            )
        if data["key"] == key:
            _say(progress, f"teacher episodes: {len(data['rows'])} decisions from {cache}")
            return list(data["rows"])
        _say(progress, f"{cache} holds other runs or settings: collecting anew")
    rows = collect(reader, runs, episodes, progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as f:
            pickle.dump({"format": CACHE_FORMAT, "key": key, "rows": rows}, f)
    return rows


def _say(show: bool, text: str) -> None:
    if show:
        print(text, file=sys.stderr)


def _progress(total: int, show: bool) -> Any:
    """A MaskablePPO callback that advances a tqdm bar by one per decision."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Bar(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc="PPO", unit="decision", disable=not show)

        def _on_step(self) -> bool:
            self.bar.update(1)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return Bar()


def main(argv: Sequence[str] | None = None, reader: Any = None) -> int:
    """The command; ``reader`` replaces the language model (tests pass a tiny one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes-per-scenario", type=int, default=10)
    parser.add_argument("--ppo-steps", type=int, default=512)
    parser.add_argument("--clone-epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=device_option, default="auto", help=DEVICE_HELP)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--scenarios", default="", help="comma-separated train scenarios")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--no-validate", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="smollm2", help="'smollm2' or a local HF folder")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep the teacher episodes' decisions in this file and reuse them when it "
        "matches the runs and episodes asked for",
    )
    args = parser.parse_args(argv)
    import torch

    started = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = str(resolve_device(args.device))
    progress = not args.quiet
    runs = train_runs([s for s in args.scenarios.split(",") if s] or None, not args.no_augment)
    timings: dict[str, float] = {}

    t = time.time()
    settings = {
        "model": args.model,
        "layers": S.LAYERS,
        "max_tokens": S.MAX_TOKENS,
        "prompt": S.PROMPT,
    }
    if reader is None:
        reader = S.Reader.load(args.model, device=device)
    else:
        settings.update(layers=reader.layers, max_tokens=reader.max_tokens, prompt=reader.prompt)
    timings["load_model_s"] = time.time() - t
    t = time.time()
    rows = _cached_collect(args.cache, reader, runs, args.episodes_per_scenario, progress)
    timings["teacher_episodes_s"] = time.time() - t
    labelled = [r for r in rows if r["truth"] is not None]
    types = sorted({r["truth"] for r in labelled})
    val = [r["seed"] % VALIDATION_EVERY == VALIDATION_EVERY - 1 for r in rows]
    train_rows = [r for r, v in zip(rows, val, strict=True) if not v]
    val_rows = [r for r, v in zip(rows, val, strict=True) if v]

    # stage one
    t = time.time()
    fit = [r for r in train_rows if r["truth"] is not None]
    x_fit = np.stack([r["embedding"] for r in fit])
    y_fit = np.array([types.index(r["truth"]) for r in fit])

    def accuracy(head: Any, subset: Sequence[dict[str, Any]]) -> float | None:
        subset = [r for r in subset if r["truth"] is not None]
        if not subset:
            return None
        pred = head.predict(np.stack([r["embedding"] for r in subset]))
        return float(np.mean([types[p] == r["truth"] for p, r in zip(pred, subset, strict=True)]))

    # the classifier's weight decay: the one with the best validation accuracy (ties: the
    # strongest); the validation figure reported is then the selected one's, optimistic
    heads = {}
    for decay in WEIGHT_DECAYS:
        candidate = S.SemanticHead(reader.dim, len(types))
        candidate.fit(x_fit, y_fit, seed=args.seed, weight_decay=decay)
        candidate.eval()
        heads[decay] = (accuracy(candidate, val_rows) or 0.0, candidate)
    chosen = max(WEIGHT_DECAYS, key=lambda d: (heads[d][0], d))
    head = heads[chosen][1]
    stage_one = {
        "train": accuracy(head, train_rows),
        "validation": accuracy(head, val_rows),
        "weight_decay": chosen,
        "validation_by_weight_decay": {str(d): heads[d][0] for d in WEIGHT_DECAYS},
    }
    timings["stage_one_s"] = time.time() - t
    tables = np.concatenate([r["raw"]["table"][r["raw"]["mask"] > 0] for r in train_rows])
    mean = tables.mean(0).astype(np.float32)
    std = np.maximum(tables.std(0), 1e-3).astype(np.float32)
    memory_cols = slice(P.NODE_DIM - P.K, P.NODE_DIM)  # what was sent: kept as 0..1
    mean[memory_cols], std[memory_cols] = 0.0, 1.0

    # stage two: warm start
    t = time.time()
    policy = P.build_policy(head.state_dim)
    batch = stack(train_rows, head, mean, std)
    actions = np.array([r["action"] for r in train_rows])
    losses = clone(policy, batch, actions, args.clone_epochs, args.seed)
    timings["clone_s"] = time.time() - t
    core = A.Core(head, policy, mean, std, types, settings, reader=reader, device=device)

    def agreement(subset: Sequence[dict[str, Any]]) -> float | None:
        if not subset:
            return None
        b = stack(subset, head, mean, std)
        hits = [
            core.decide({k: v[i] for k, v in b.items()}) == r["action"]
            for i, r in enumerate(subset)
        ]
        return float(np.mean(hits))

    record: dict[str, Any] = {
        "command": "python agents/ifshm/train.py "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "reader": {k: v for k, v in settings.items()},
        "types": types,
        "data": {
            "runs": len(runs),
            "episodes": len(runs) * args.episodes_per_scenario,
            "decisions_train": len(train_rows),
            "decisions_validation": len(val_rows),
        },
        "stage_one_accuracy": stage_one,
        "clone": {
            "final_loss": losses[-1] if losses else None,
            "teacher_agreement_train": agreement(train_rows),
            "teacher_agreement_validation": agreement(val_rows),
        },
    }
    _say(progress, f"stage one accuracy {record['stage_one_accuracy']}; clone {record['clone']}")
    val_seeds = [s for s in range(args.episodes_per_scenario) if s % VALIDATION_EVERY == 4]
    if not args.no_validate and val_seeds:
        t = time.time()
        record["validation_after_clone"] = evaluate(core, runs, val_seeds, progress)
        _say(progress, f"validation after the clone: {record['validation_after_clone']}")
        timings["validate_clone_s"] = time.time() - t

    # stage two: PPO
    if args.ppo_steps > 0:
        from sb3_contrib import MaskablePPO

        t = time.time()
        train_seeds = [s for s in range(10_000) if s % VALIDATION_EVERY != 4]
        env = IncidentEnv(core, runs, train_seeds, seed=args.seed)
        model = MaskablePPO(
            P.TwoLevelPolicy,
            env,
            n_steps=min(256, args.ppo_steps),
            batch_size=64,
            n_epochs=4,
            learning_rate=1e-4,
            ent_coef=0.001,
            gamma=0.95,
            seed=args.seed,
            device="cpu",
            policy_kwargs={"hidden": policy.hidden},
            verbose=0,
        )
        model.policy.load_state_dict(policy.state_dict())
        model.learn(total_timesteps=args.ppo_steps, callback=_progress(args.ppo_steps, progress))
        policy = model.policy
        policy.set_training_mode(False)
        core.policy = policy
        env.close()
        timings["ppo_s"] = time.time() - t
        if not args.no_validate and val_seeds:
            t = time.time()
            record["validation_after_ppo"] = evaluate(core, runs, val_seeds, progress)
            _say(progress, f"validation after PPO: {record['validation_after_ppo']}")
            timings["validate_ppo_s"] = time.time() - t
    timings["total_s"] = time.time() - started
    record["time"] = {k: round(v, 1) for k, v in timings.items()}
    record["versions"] = {"torch": torch.__version__}
    core.save(args.out, record)
    print(f"wrote {args.out} in {timings['total_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
