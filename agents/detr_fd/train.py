"""Train Deformable DETR-FD on the train split: a set of (fault type, root node) predictions
from the metric time series, matched to the injected faults with the Hungarian algorithm.

    python agents/detr_fd/train.py [--episodes-per-scenario K] [--seed 0] [--epochs E]
                                   [--device auto|cpu|cuda] [--out agents/detr_fd/weights.pt]

Examples are collected by running the env (``start="incident"``) on every scenario of the
train split, at the scenario's own cloud size and, for the all-in-one (tiny) train scenarios,
also on a ~200-node cloud of the same layout seed (the env's ``nodes=`` argument), for episode
seeds ``0..K-1``. Each episode gives up to ``--snapshots`` observations a few seconds apart as
the symptoms evolve (only those with at least one alarm: the agent only decides then). The
labels, every active injected fault's type and slot, come from
``env.unwrapped.ground_truth()``: the evaluation side, used for training labels only. Episode
seeds with ``seed % 5 == 4`` are held out for validation.

Writes the checkpoint (``--out``) and ``<out>.json`` beside it: fault types, feature
normalisation, the command, the data counts, the training time and the accuracies.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pase_gym.devices import DEVICE_HELP, device_option, resolve_device
from pase_gym.harness.agent import sibling

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "weights.pt"
VALIDATION_EVERY = 5  # episode seeds with seed % 5 == 4 are the validation set
AUGMENT_SIZE = "small"  # tiny train clouds are also run at this size (test clouds are small)


def _sibling(name: str) -> Any:
    """Import a module of this folder under a private name (agents are not a package)."""
    return sibling(HERE, name)


M = _sibling("model")


def collect(
    scenarios: Sequence[str],
    episodes: int,
    snapshots: int,
    seed: int,
    augment: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Labelled examples: ``{"series", "faults": [(type, slot), ...], "seed", "scenario",
    "size"}``; ``faults`` lists every active injected fault on a provisioned slot."""
    from pase_gym.harness.one_action import snapshots as labelled

    examples: list[dict[str, Any]] = []
    for s in labelled(
        scenarios, episodes, snapshots, seed, AUGMENT_SIZE if augment else None, progress, "DETR-FD"
    ):
        faults = sorted({(t, slot) for t, slot in s.faults if slot is not None})
        if not faults:
            continue
        examples.append(
            {
                "series": M.Series.from_obs(s.obs),
                "faults": faults,
                "seed": s.seed,
                "scenario": s.scenario,
                "size": s.size,
            }
        )
    return examples


def batches(
    examples: Sequence[dict[str, Any]], batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Batches of examples of one slot count each (little padding), shuffled by ``rng`` (in
    order without it)."""
    groups: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(e["series"].x.shape[0], []).append(i)
    chunks = []
    for n in sorted(groups):
        idx = np.asarray(groups[n])
        if rng is not None:
            idx = idx[rng.permutation(len(idx))]
        chunks += [idx[lo : lo + batch_size] for lo in range(0, len(idx), batch_size)]
    order = rng.permutation(len(chunks)) if rng is not None else range(len(chunks))
    for c in order:
        yield [examples[i] for i in chunks[c]]


def targets_of(chunk: Sequence[dict[str, Any]], index: dict[str, int]) -> list[list[tuple]]:
    """The matcher's targets: (type index, slot) of each example's faults."""
    return [[(index[t], s) for t, s in e["faults"]] for e in chunk]


def evaluate(
    model: Any,
    examples: Sequence[dict[str, Any]],
    fault_types: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
    device: str,
    batch_size: int = 64,
) -> dict[str, float]:
    """Accuracies of the most confident query: its type, its node and both (plain argmax and
    type-consistent decoding). A prediction is right if it names one of the active faults."""
    import torch

    if not examples:
        return {}
    hits = np.zeros(6)
    model.eval()
    with torch.no_grad():
        for chunk in batches(examples, batch_size):
            out = model(M.collate([e["series"] for e in chunk], mean, std).to(device))
            logits, node_logp = out.type_logits.cpu().numpy(), out.node_logp.cpu().numpy()
            for j, e in enumerate(chunk):
                s = e["series"]
                truth = set(e["faults"])
                for k, joint in enumerate((False, True)):
                    t, r, _ = M.decode(
                        logits[j], node_logp[j], fault_types, s.nodes, s.mask, joint=joint
                    )
                    name = fault_types[t]
                    hits[3 * k] += any(name == f for f, _ in truth)
                    hits[3 * k + 1] += any(r == slot for _, slot in truth)
                    hits[3 * k + 2] += (name, r) in truth
    acc = hits / len(examples)
    return {
        "type": acc[0],
        "node": acc[1],
        "both": acc[2],
        "type_joint": acc[3],
        "node_joint": acc[4],
        "both_joint": acc[5],
        "n": float(len(examples)),
    }


def train(
    *,
    episodes: int = 20,
    seed: int = 0,
    epochs: int = 15,
    device: str = "auto",
    out: Path = DEFAULT_OUT,
    snapshots: int = 5,
    scenarios: Sequence[str] | None = None,
    augment: bool = True,
    dim: int = 64,
    queries: int = 8,
    lr: float = 1e-3,
    batch_size: int = 32,
    no_object_weight: float = 0.1,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Collect, train, evaluate, save; returns the metadata written beside the weights."""
    import torch

    from pase_gym.scenarios import list_scenarios
    from pase_gym.sim.faults import faults_for_split

    t_start = time.monotonic()
    torch.manual_seed(seed)
    np.random.seed(seed)
    dev = resolve_device(device)
    names = list(scenarios) if scenarios is not None else list_scenarios("train")
    examples = collect(names, episodes, snapshots, seed, augment=augment, progress=progress)
    if not examples:
        raise RuntimeError("no labelled examples collected (no alarms in any episode?)")
    t_collect = time.monotonic() - t_start
    fault_types = list(faults_for_split("train"))
    index = {t: i for i, t in enumerate(fault_types)}
    tr = [e for e in examples if e["seed"] % VALIDATION_EVERY != VALIDATION_EVERY - 1]
    va = [e for e in examples if e["seed"] % VALIDATION_EVERY == VALIDATION_EVERY - 1]
    if not tr:
        tr, va = examples, []
    mean, std = M.feature_stats([e["series"] for e in tr])

    model = M.DeformableDETRFD(len(fault_types), dim=dim, queries=queries).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    order_rng = np.random.default_rng(seed)
    bar = tqdm(range(1, epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        total, seen = 0.0, 0
        for chunk in batches(tr, batch_size, order_rng):
            b = M.collate([e["series"] for e in chunk], mean, std).to(dev)
            loss, _ = M.set_loss(model(b), targets_of(chunk, index), no_object_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(chunk)
            seen += len(chunk)
        sched.step()
        if progress:
            bar.set_postfix(loss=f"{total / max(seen, 1):.3f}")
            if va and (epoch % 10 == 0 or epoch == epochs):
                v = evaluate(model, va, fault_types, mean, std, dev)
                bar.write(
                    f"epoch {epoch}/{epochs}: loss {total / max(seen, 1):.3f}, validation "
                    f"type {v['type']:.3f} node {v['node_joint']:.3f} both {v['both_joint']:.3f}",
                    file=sys.stderr,
                )
    train_s = time.monotonic() - t_start
    acc_train = evaluate(model, tr, fault_types, mean, std, dev)
    acc_val = evaluate(model, va, fault_types, mean, std, dev)
    model.to("cpu")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    M.save_checkpoint(out, model, fault_types, mean, std)
    meta = {
        "command": command or "python agents/detr_fd/train.py",
        "fault_types": fault_types,
        "feature_mean": [round(float(v), 6) for v in mean],
        "feature_std": [round(float(v), 6) for v in std],
        "config": model.config,
        "parameters": sum(p.numel() for p in model.parameters()),
        "scenarios": names,
        "augment_size": AUGMENT_SIZE if augment else None,
        "episodes_per_scenario": episodes,
        "snapshots": snapshots,
        "seed": seed,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "no_object_weight": no_object_weight,
        "device": dev,
        "examples": {"train": len(tr), "validation": len(va)},
        "validation": f"episode seeds with seed % {VALIDATION_EVERY} == {VALIDATION_EVERY - 1}",
        "accuracy": {"train": _rounded(acc_train), "validation": _rounded(acc_val)},
        "time_s": {"collect": round(t_collect, 1), "total": round(train_s, 1)},
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    Path(str(out) + ".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    logger.info("saved %s (%.0f KiB) in %.1f s", out, out.stat().st_size / 1024, train_s)
    return meta


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in d.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--episodes-per-scenario", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--device", type=device_option, default="auto", help=DEVICE_HELP)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--snapshots",
        type=int,
        default=5,
        help="observations per episode, a few seconds apart (default 5)",
    )
    parser.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated train scenarios (default: the whole train split)",
    )
    parser.add_argument(
        "--no-augment",
        action="store_true",
        help="do not also run the tiny train scenarios on a ~200-node cloud",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    import torch

    torch.set_num_threads(max(1, args.threads))
    command = "python agents/detr_fd/train.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    meta = train(
        episodes=args.episodes_per_scenario,
        seed=args.seed,
        epochs=args.epochs,
        device=args.device,
        out=args.out,
        snapshots=args.snapshots,
        scenarios=args.scenarios.split(",") if args.scenarios else None,
        augment=not args.no_augment,
        command=command.strip(),
    )
    print(
        json.dumps(
            {"accuracy": meta["accuracy"], "time_s": meta["time_s"], "examples": meta["examples"]},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
