"""The ``pase-gym`` command line.

``pase-gym demo`` (the default) runs one episode of a scenario with the oracle planner and prints
the incident, the plan and the metrics. ``faults``, ``primitives`` and ``scenarios`` list the
catalogues; ``check-plan`` and ``check-scenario`` validate user input with clear errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from pase_gym import __version__
from pase_gym.clitools import EXIT_FAILED, EXIT_OK, run_cli


def _print_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
        if k == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """Run one oracle episode and print incident, plan and metrics."""
    from pase_gym.episode import Episode, run_oracle

    episode = Episode(args.scenario, args.seed)
    obs = episode.reset()
    spec = episode.scenario
    topo = episode.topology
    active = int(episode.state.active.sum())
    out.write(
        f"pase-gym {__version__} demo: scenario {spec.name!r} ({spec.split} split), "
        f"seed {args.seed}\n"
    )
    out.write(
        f"cloud: {active} active nodes ({topo.layout.controllers} controllers, "
        f"{topo.layout.compute_hosts} compute hosts), {episode.state.profile} workload\n\n"
    )
    out.write(f"== incident at t={obs.tick}s\n")
    alarms = obs.alarms[: args.max_lines]
    for node, alarm, value in alarms:
        out.write(f"  ALARM {alarm:<17} {node:<24} {value:8.3f}\n")
    if len(obs.alarms) > len(alarms):
        out.write(f"  ... {len(obs.alarms) - len(alarms)} more alarms\n")
    for line in obs.logs[-args.max_lines :]:
        out.write(f"  LOG   {line}\n")
    plans = run_oracle(episode)
    out.write("\n== oracle plan (reads the ground truth: the ceiling, not an agent)\n")
    for plan in plans:
        out.write(f"  {plan}\n")
    report = episode.report()
    out.write("\n== metrics\n")
    truth = ", ".join(f"{t['fault_type']}@{t['node']}" for t in episode.ground_truth())
    rows = [
        ["metric", "value"],
        ["injected fault(s)", truth],
        ["recovered", str(report.recovered)],
        ["MTTR (s)", "n/a (not recovered)" if report.mttr is None else str(report.mttr)],
        ["plan steps", str(report.steps)],
        ["safety score", f"{report.safety_score:.2f}"],
        ["collateral (harmed nodes)", str(len(report.harmed))],
        ["resource cost", f"{report.cost:.1f}"],
        ["diagnosis correct", str(report.diagnosis_correct)],
        ["simulated time (s)", str(report.ticks)],
    ]
    _print_table(rows, out)
    if args.json:
        out.write(json.dumps(report.as_dict(), sort_keys=True) + "\n")
    return EXIT_OK if report.recovered else EXIT_FAILED


def _listing(
    items: list[dict[str, object]], columns: dict[str, str], as_json: bool, out: TextIO
) -> int:
    """Print ``items`` as JSON, or as a table of ``columns`` (heading: item key)."""
    if as_json:
        out.write(json.dumps(items, indent=2) + "\n")
        return EXIT_OK

    def cell(value: object) -> str:
        return "/".join(map(str, value)) if isinstance(value, list) else str(value)

    rows = [list(columns)] + [[cell(item[key]) for key in columns.values()] for item in items]
    _print_table(rows, out)
    return EXIT_OK


def cmd_faults(args: argparse.Namespace, out: TextIO) -> int:
    """List the fault catalogue."""
    from pase_gym import list_faults

    columns = {"fault": "name", "family": "family", "splits": "splits", "target": "target"}
    return _listing(list_faults(), {**columns, "recovery": "recovery"}, args.json, out)


def cmd_primitives(args: argparse.Namespace, out: TextIO) -> int:
    """List the recovery primitives."""
    from pase_gym import list_primitives

    columns = {"signature": "signature", "safety": "safety", "ticks": "duration", "cost": "cost"}
    return _listing(list_primitives(), {**columns, "summary": "summary"}, args.json, out)


def cmd_scenarios(args: argparse.Namespace, out: TextIO) -> int:
    """List (or refresh the references of) the built-in scenarios."""
    from pase_gym.scenarios import list_scenarios, load_scenario

    if args.refresh:
        from pase_gym.harness.references import refresh_all

        for name, ref in refresh_all(args.seed).items():
            out.write(f"{name}: MTTR {ref.mttr} s  {ref.plan}\n")
        return 0
    rows = [["scenario", "split", "nodes", "workload", "faults", "oracle MTTR (s)"]]
    for name in list_scenarios(args.split):
        spec = load_scenario(name)
        faults = "+".join("|".join(f.types()) if len(f.types()) < 3 else "mix" for f in spec.faults)
        mttr = str(spec.reference.mttr) if spec.reference else "-"
        rows.append(
            [
                name,
                spec.split,
                str(spec.topology.nodes),
                "/".join(spec.workload.profiles()),
                faults,
                mttr,
            ]
        )
    _print_table(rows, out)
    return 0


def cmd_check_plan(args: argparse.Namespace, out: TextIO) -> int:
    """Parse a plan and print its canonical form and structured JSON."""
    from pase_gym.sim.plan import parse_plan

    text = sys.stdin.read() if args.plan == "-" else args.plan
    plan = parse_plan(text)
    out.write(f"{plan}\n{json.dumps(plan.to_structured())}\n")
    return 0


def cmd_check_scenario(args: argparse.Namespace, out: TextIO) -> int:
    """Validate a scenario file: the schema, then its cloud built and its faults scheduled on
    it (targets, roles, pinned nodes), without running the clock (seconds even for the
    largest legal cloud and budget)."""
    from pase_gym.episode import Episode

    episode = Episode(args.path, 0)
    episode.reset(skip_to_incident=False)
    spec = episode.scenario
    out.write(
        f"{args.path}: ok ({spec.name}, split {spec.split}, {episode.topology.n} nodes, "
        f"{len(spec.faults)} fault{'s' if len(spec.faults) > 1 else ''})\n"
    )
    return 0


def cmd_check_env(args: argparse.Namespace, out: TextIO) -> int:
    """Run the conformance checks on an env id (optionally on a scenario file)."""
    from pase_gym.env.checks import run_checks

    kwargs = {"scenario": args.scenario} if args.scenario else {}
    results = run_checks(args.env_id, seed=args.seed, **kwargs)
    if args.json:
        out.write(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
    else:
        for r in results:
            out.write(f"{'ok  ' if r.ok else 'FAIL'} {r.name}{'' if r.ok else ': ' + r.message}\n")
    failed = sum(not r.ok for r in results)
    out.write(f"{args.env_id}: {len(results) - failed} of {len(results)} checks passed\n")
    return EXIT_FAILED if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="pase-gym",
        description="A simulated OpenStack cloud for self-healing agents.",
    )
    parser.add_argument("--version", action="version", version=f"pase-gym {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run one oracle episode and print incident, plan, metrics")
    demo.add_argument(
        "--scenario",
        default="default",
        help="built-in scenario name or path to a .yaml file (default: default)",
    )
    demo.add_argument("--seed", type=int, default=0, help="episode seed (default: 0)")
    demo.add_argument("--max-lines", type=int, default=12, help="alarms/log lines to show")
    demo.add_argument("--json", action="store_true", help="also print the report as JSON")
    demo.set_defaults(func=cmd_demo)
    faults = sub.add_parser("faults", help="list the fault catalogue")
    faults.add_argument("--json", action="store_true")
    faults.set_defaults(func=cmd_faults)
    prims = sub.add_parser("primitives", help="list the recovery primitives")
    prims.add_argument("--json", action="store_true")
    prims.set_defaults(func=cmd_primitives)
    scen = sub.add_parser("scenarios", help="list the built-in scenarios")
    scen.add_argument("--split", choices=("train", "test", "unseen"))
    scen.add_argument(
        "--refresh",
        action="store_true",
        help="re-run the oracle and rewrite every scenario's reference (maintainers)",
    )
    scen.add_argument("--seed", type=int, default=0, help="seed of the references (--refresh)")
    scen.set_defaults(func=cmd_scenarios)
    check = sub.add_parser("check-plan", help="parse a plan ('-' reads stdin)")
    check.add_argument("plan")
    check.set_defaults(func=cmd_check_plan)
    checks = sub.add_parser("check-scenario", help="validate a scenario file")
    checks.add_argument("path")
    checks.set_defaults(func=cmd_check_scenario)
    env_check = sub.add_parser("check-env", help="run the conformance checks on an env id")
    env_check.add_argument("env_id", help="a registered id, e.g. PASE-OpenStack-v4")
    env_check.add_argument("--scenario", help="run the env on this scenario name or .yaml file")
    env_check.add_argument("--seed", type=int, default=0, help="seed of the checks (default: 0)")
    env_check.add_argument("--json", action="store_true")
    env_check.set_defaults(func=cmd_check_env)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 not recovered, 2 bad input)."""
    stream = out or sys.stdout
    return run_cli(build_parser(), lambda a: int(a.func(a, stream)), argv, default=["demo"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
