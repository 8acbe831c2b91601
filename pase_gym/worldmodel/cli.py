"""``pase-worldmodel``: collect the data set, train the world models, write Fig. 6.

    pase-worldmodel all                       # everything below with the defaults
    pase-worldmodel collect --split train --episodes 30 --out artifacts/worldmodel/train.parquet
    pase-worldmodel train --data artifacts/worldmodel/train.parquet \\
        --out-dir artifacts/worldmodel/models
    pase-worldmodel report --models artifacts/worldmodel/models --data-dir artifacts/worldmodel \\
        --speed speed.json --out benchmarks/results/worldmodel

Seeded throughout: the same arguments write the same data set; training on CPU reproduces the
same weights on the same machine and torch version.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pase_gym.clitools import EXIT_OK, at_least, run_cli
from pase_gym.devices import DEVICE_HELP, check_device, resolve_device
from pase_gym.errors import WorldModelError

WORK = Path("artifacts/worldmodel")
RESULTS = Path("benchmarks/results/worldmodel")
EPISODES = {"train": 30, "test": 8, "unseen": 30}
SEEDS = {"train": 0, "test": 1, "unseen": 1}


def _command(argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["pase-worldmodel", *args])


def cmd_collect(args: argparse.Namespace) -> int:
    """Write one split's data set."""
    from .collect import Budget, collect, write

    episodes = args.episodes or EPISODES[args.split]
    seed = SEEDS[args.split] if args.seed is None else args.seed
    agents = _load_agents(args.agent_plans or [], args.device)
    if args.only_agents and not agents:
        raise WorldModelError("--only-agents: name the agents with --agent-plans")
    budget = Budget(0, 0, 0, oracle=False) if args.only_agents else Budget()
    rows = collect(
        args.split,
        episodes,
        seed,
        budget=budget,
        agents=agents,
        agent_episodes=args.agent_episodes,
        progress=not args.quiet,
    )
    default = WORK / f"{args.split}{'-agents' if args.only_agents else ''}.parquet"
    out = write(rows, args.out or default)
    good = sum(r["good"] for r in rows)
    print(f"{out}: {len(rows)} plans ({good} good) from the {args.split} split")
    return EXIT_OK


def _load_agents(specs: Sequence[str], device: str) -> dict[str, Any]:
    """The agents ``--agent-plans`` names (registry names, ``module:Class`` or paths), loaded
    in this process: they must be trusted code (the reference agents are)."""
    from pase_gym.harness.agent import agent_name, load_agent

    agents = {}
    for spec in specs:
        agent = load_agent(spec, device=resolve_device(check_device(device)))
        agents[agent_name(agent, spec)] = agent
    return agents


def train_variants(
    data_path: Path,
    out_dir: Path,
    variants: Sequence[str],
    *,
    epochs: int,
    seed: int,
    device: str,
    command: str,
    progress: bool = True,
) -> dict[str, Path]:
    """Train each variant on the data set; returns the weights written per variant."""
    import numpy as np

    from .collect import read
    from .train import VARIANT_SPEC, arrays_of, fit
    from .verifier import save

    data = arrays_of(read(data_path))
    written: dict[str, Path] = {}
    for variant in variants:
        architecture, symbolic, members = VARIANT_SPEC[variant]
        models, records = [], []
        start = time.perf_counter()
        for member in range(members):
            model, record = fit(
                data,
                architecture,
                symbolic,
                seed=seed + member,
                epochs=epochs,
                device=device,
                progress=progress,
                label=f"{variant}{f' {member + 1}/{members}' if members > 1 else ''}",
            )
            models.append(model.cpu())
            records.append(record)
        meta = {
            "name": variant,
            "architecture": architecture,
            "symbolic": symbolic,
            "fusion": symbolic,
            "hidden": 64,
            "command": command,
            "data": str(data_path),
            "seed": seed,
            "device": device,
            "train_seconds": round(time.perf_counter() - start, 1),
            "harm_penalty": float(np.mean([r["harm_penalty"] for r in records])),
            "dh_mean": records[0]["dh_mean"],
            "dh_std": records[0]["dh_std"],
            "members_training": [
                {k: v for k, v in r.items() if k not in ("dh_mean", "dh_std")} for r in records
            ],
        }
        written[variant] = save(models, out_dir / f"{variant}.pt", meta)
        print(f"{written[variant]}: {variant} trained in {meta['train_seconds']} s")
    return written


def cmd_train(args: argparse.Namespace) -> int:
    """Train the comparison's world models."""
    from .train import VARIANTS

    variants = VARIANTS if args.variants == "all" else tuple(args.variants.split(","))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise WorldModelError(
            f"--variants: expected 'all' or a comma list of {', '.join(VARIANTS)}, "
            f"found {', '.join(unknown)}"
        )
    device = resolve_device(check_device(args.device))
    written = train_variants(
        Path(args.data),
        Path(args.out_dir),
        variants,
        epochs=args.epochs,
        seed=args.seed,
        device=device,
        command=_command(args.argv),
        progress=not args.quiet,
    )
    if args.ship:
        ship(written)
    return EXIT_OK


def ship(written: dict[str, Path]) -> None:
    """Copy the trained NSWM beside the package (the shipped verifier)."""
    from .verifier import SHIPPED

    if "nswm" not in written:
        raise WorldModelError("--ship: the nswm variant was not trained")
    source = written["nswm"]
    shutil.copyfile(source, SHIPPED)
    shutil.copyfile(
        source.with_name(source.name + ".json"), SHIPPED.with_name(SHIPPED.name + ".json")
    )
    print(f"{SHIPPED}: shipped")


def cmd_report(args: argparse.Namespace) -> int:
    """Evaluate the verifiers on the test and unseen sets; write the table and the figure."""
    write_report(
        Path(args.models), Path(args.data_dir), Path(args.out), args.speed, _command(args.argv)
    )
    return EXIT_OK


def write_report(
    models: Path, data_dir: Path, out: Path, speed: str | None, command: str
) -> dict[str, Any]:
    """Fig. 6's results: ``fig6.json``, ``fig6.md`` and ``fig6.png`` under ``out``."""
    import numpy as np

    from .collect import read
    from .report import evaluate, figure, fixed_set_auc, speed_rows, table
    from .train import VARIANTS, arrays_of
    from .verifier import load_verifier

    verifiers = {}
    for variant in VARIANTS:
        path = models / f"{variant}.pt"
        if path.is_file():
            verifiers[variant] = load_verifier(path)
    if "nswm" not in verifiers:
        raise WorldModelError(f"{models}: expected nswm.pt (train it with: pase-worldmodel train)")
    header = json.loads((models / "nswm.pt.json").read_text())
    mean, std = np.asarray(header["dh_mean"]), np.asarray(header["dh_std"])
    sets = {}
    for split in ("test", "unseen"):
        frame = read(data_dir / f"{split}.parquet")
        sets[split] = (frame, arrays_of(frame))
    extra = [data_dir / f"{split}-agents.parquet" for split in ("test", "unseen")]
    frames = [read(path) for path in extra if path.is_file()]
    if frames:
        import pandas as pd

        frame = pd.concat(frames, ignore_index=True)
        sets["agents"] = (frame, arrays_of(frame))
    results = evaluate(verifiers, sets, mean, std)
    for name, timing in speed_rows(speed).items():
        if name in results["rows"]:
            results["rows"][name].update(timing)
    results["fixed_set"] = fixed_set_auc(verifiers["nswm"])
    results["command"] = command
    results["speed_source"] = speed
    results["training"] = {
        v: json.loads((models / f"{v}.pt.json").read_text()).get("train_seconds") for v in verifiers
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "fig6.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out / "fig6.md").write_text(table(results))
    figure(results, out / "fig6.png")
    print(table(results))
    print(f"written: {out}/fig6.json, fig6.md, fig6.png")
    return results


def cmd_all(args: argparse.Namespace) -> int:
    """Collect the three splits, train every variant, write the report.

    With ``--agent-plans``, the agents' plans join the training set, and the evaluation
    splits get them in a set of their own (``<split>-agents.parquet``), so that the main
    evaluation rows stay the same with or without agents."""
    from .collect import Budget, collect, write

    work = Path(args.work)
    agents = _load_agents(args.agent_plans or [], args.device)
    for split in ("train", "test", "unseen"):
        mixed = agents if split == "train" else {}
        rows = collect(
            split,
            EPISODES[split],
            SEEDS[split],
            agents=mixed,
            agent_episodes=args.agent_episodes,
            progress=not args.quiet,
        )
        write(rows, work / f"{split}.parquet")
        if agents and split != "train":
            only = Budget(0, 0, 0, oracle=False)
            rows = collect(
                split,
                EPISODES[split],
                SEEDS[split],
                budget=only,
                agents=agents,
                progress=not args.quiet,
            )
            write(rows, work / f"{split}-agents.parquet")
    from .train import VARIANTS

    written = train_variants(
        work / "train.parquet",
        work / "models",
        VARIANTS,
        epochs=args.epochs,
        seed=0,
        device=resolve_device(check_device(args.device)),
        command=_command(args.argv),
        progress=not args.quiet,
    )
    if args.ship:
        ship(written)
    write_report(work / "models", work, Path(args.out), args.speed, _command(args.argv))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="pase-worldmodel", description="PASE's world model: data, training, Fig. 6."
    )
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("collect", help="write one split's data set (Parquet)")
    c.add_argument("--split", choices=("train", "test", "unseen"), default="train")
    c.add_argument("--episodes", type=at_least(1), help="episodes per scenario (and size)")
    c.add_argument("--seed", type=int, help="seed (default: 0 for train, 1 otherwise)")
    c.add_argument("--out", help=f"Parquet file (default: {WORK}/<split>.parquet)")
    c.add_argument(
        "--agent-plans",
        nargs="+",
        metavar="AGENT",
        help="also take each decision point's plan from these agents (e.g. pase: the plan "
        "synthesis engine's plans; trusted code only, run in this process)",
    )
    c.add_argument(
        "--only-agents",
        action="store_true",
        help=f"the agents' plans (and their mutants) only (default --out: {WORK}/<split>-agents"
        ".parquet, which the report reads beside the split's set)",
    )
    c.add_argument("--device", default="auto", help=DEVICE_HELP + " (for the agents)")
    c.set_defaults(func=cmd_collect)
    t = sub.add_parser("train", help="train the world models of the comparison")
    t.add_argument("--data", default=str(WORK / "train.parquet"))
    t.add_argument("--out-dir", default=str(WORK / "models"))
    t.add_argument("--variants", default="all", help="all, or a comma list of: mlp, nswm, ...")
    t.add_argument("--epochs", type=at_least(1), default=40)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help=DEVICE_HELP)
    t.add_argument("--ship", action="store_true", help="copy the NSWM into the package")
    t.set_defaults(func=cmd_train)
    r = sub.add_parser("report", help="evaluate on test and unseen; write Fig. 6")
    r.add_argument("--models", default=str(WORK / "models"))
    r.add_argument("--data-dir", default=str(WORK))
    r.add_argument("--speed", help="pytest-benchmark JSON of benchmarks/test_bench_worldmodel.py")
    r.add_argument("--out", default=str(RESULTS))
    r.set_defaults(func=cmd_report)
    a = sub.add_parser("all", help="collect, train and report with the defaults")
    a.add_argument("--work", default=str(WORK))
    a.add_argument("--epochs", type=at_least(1), default=40)
    a.add_argument("--device", default="auto", help=DEVICE_HELP)
    a.add_argument("--speed", help="pytest-benchmark JSON of benchmarks/test_bench_worldmodel.py")
    a.add_argument("--out", default=str(RESULTS))
    a.add_argument("--ship", action="store_true", help="copy the NSWM into the package")
    a.add_argument(
        "--agent-plans",
        nargs="+",
        metavar="AGENT",
        help="plan sources beside the built-in ones (e.g. pase: the plan synthesis engine)",
    )
    a.set_defaults(func=cmd_all)
    for p in (c, a):
        p.add_argument(
            "--agent-episodes",
            type=at_least(1),
            help="the agents act in the first N episodes of each run only (in 'all': of the "
            "training split; default: every episode)",
        )
    for p in (c, t, r, a):
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()

    def handler(args: argparse.Namespace) -> int:
        args.argv = argv
        return int(args.func(args))

    return run_cli(parser, handler, argv)
