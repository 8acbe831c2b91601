"""``pase-bench``: run agents on a suite, report the results.

pase-bench run --suite paper --agents rule_based,gcn_fr --seeds 5
pase-bench report --results runs/paper.jsonl --out benchmarks/results/paper
pase-bench validate --suite paper --agents my_agent.py
pase-bench verify --results runs/paper.jsonl --sample 20
pase-bench hardness --out benchmarks/hardness
pase-bench submit validate leaderboard/submissions/my-agent
pase-bench gate --baseline benchmarks/baselines/smoke.json --results runs/smoke.jsonl
pase-bench replay --agents rule_based,gcn_fr --campaigns DEPL,NET,STO --out runs/replay
pase-bench adapt --agents ifshm,rule_based --stream deadlock --figure runs/adapt-deadlock.png
pase-bench list
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pase_gym.clitools import EXIT_FAILED, run_cli
from pase_gym.devices import DEVICE_HELP, device_option
from pase_gym.errors import ResultsError, SuiteError

if TYPE_CHECKING:
    from pase_gym.harness.records import Record
    from pase_gym.harness.verify import Mismatch

DEFAULT_AGENTS = "random,rule_based,prober,gcn_fr,pase_full,oracle"


def _agents(text: str) -> list[str]:
    agents = [a.strip() for a in text.split(",") if a.strip()]
    if not agents:
        raise argparse.ArgumentTypeError("expected a comma-separated list of agents")
    if len(set(agents)) != len(agents):
        raise argparse.ArgumentTypeError(f"an agent is listed twice: {text!r}")
    return agents


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {value}")
    return value


def _load_records(path: Path) -> list[Record]:
    """The checked records of a results file, or a typed error if it is missing or empty."""
    from pase_gym.harness.records import RunStore

    if not path.is_file():
        raise ResultsError(f"{path}: no such results file")
    records = sorted(RunStore(path).load().values(), key=lambda r: r["key"])
    if not records:
        raise ResultsError(f"{path}: no records")
    return records


def _run_and_baseline(parser: argparse.ArgumentParser, results_help: str) -> None:
    """``--results`` and one of ``--baseline`` / ``--write-baseline`` (the gates' options)."""
    parser.add_argument("--results", type=Path, required=True, help=results_help)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--baseline", type=Path, help="the stored baseline to compare with")
    target.add_argument("--write-baseline", type=Path, help="store the run as a baseline")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog="pase-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run agents on a suite (resumable)")
    run.add_argument("--suite", default="smoke", help="suite name or .yaml path (default smoke)")
    run.add_argument(
        "--agents",
        type=_agents,
        default=_agents(DEFAULT_AGENTS),
        help=f"comma-separated names, module:Class or paths (default {DEFAULT_AGENTS})",
    )
    run.add_argument("--seeds", type=_positive, help="seeds per scenario (default: the suite's)")
    run.add_argument("--workers", type=_positive, default=1, help="worker processes")
    run.add_argument(
        "--device",
        type=device_option,
        default="cpu",
        help=f"passed to agents that use torch: {DEVICE_HELP} (default cpu)",
    )
    run.add_argument("--out", type=Path, help="results file (default runs/<suite>.jsonl)")
    run.add_argument(
        "--report", type=Path, help="also write the report there (default: print the table only)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local processes (--workers) or a Ray cluster (default local)",
    )
    run.add_argument(
        "--address", help="with --backend ray: the cluster to join (default: a local one)"
    )
    run.add_argument(
        "--hidden-key-file",
        type=Path,
        help="the key of the hidden split (--suite hidden); kept from every sandboxed agent",
    )
    run.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="PATH",
        help="a file sandboxed agents must not see (repeatable; the results file always is)",
    )
    run.add_argument(
        "--in-process",
        action="store_true",
        help="run agents loaded by path or module:Class in the evaluator's own process, "
        "not the sandbox (only for code you trust; the records say so)",
    )
    rep = sub.add_parser("report", help="write report.md, figures and summary.json")
    rep.add_argument("--results", type=Path, required=True, help="a results .jsonl file")
    rep.add_argument("--out", type=Path, required=True, help="output folder")
    rep.add_argument("--title", default="", help="table title")
    rep.add_argument("--no-figures", action="store_true")
    val = sub.add_parser("validate", help="check a suite and agents before a long run")
    val.add_argument("--suite", default="smoke")
    val.add_argument("--agents", type=_agents, default=_agents(DEFAULT_AGENTS))
    # its options (-h included) are parsed by pase_gym.harness.replay: see main()
    sub.add_parser(
        "replay",
        help="score agents' fault detection on real rows of Failure-Dataset-OpenStack",
        add_help=False,
    )
    ver = sub.add_parser(
        "verify", help="run a results file's episodes again and compare (exit 1 on a mismatch)"
    )
    ver.add_argument("--results", type=Path, required=True, help="a results .jsonl file")
    ver.add_argument("--sample", type=_positive, help="verify this many records (default: all)")
    ver.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    ver.add_argument("--suite", help="the suite the run used (default: each record's, by name)")
    ver.add_argument(
        "--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)"
    )
    ver.add_argument("--quiet", action="store_true", help="no progress bar")
    ver.add_argument(
        "--traces-only",
        action="store_true",
        help="step each record's plan trace and recompute its metrics, without running the "
        "agent (checks the numbers against the trace, not the trace against the agent)",
    )
    ver.add_argument(
        "--sign",
        action="store_true",
        help="when every replayed record reproduces, sign the file for the leaderboard with "
        "the evaluator's key (the hidden split's key)",
    )
    _key_file(ver)
    board = sub.add_parser("leaderboard", help="the leaderboard: Markdown and a static site")
    board_sub = board.add_subparsers(dest="board_command", required=True)
    build = board_sub.add_parser("build", help="build the board from results files")
    build.add_argument(
        "--results", type=Path, nargs="+", required=True, help="results .jsonl files"
    )
    build.add_argument(
        "--submissions",
        type=Path,
        default=Path("leaderboard/submissions"),
        help="submission folders with their manifests (default leaderboard/submissions)",
    )
    build.add_argument(
        "--out", type=Path, default=Path("leaderboard/site"), help="default leaderboard/site"
    )
    build.add_argument(
        "--signed",
        action="store_true",
        help="refuse any results file without a valid signature (needs the evaluator's key)",
    )
    _key_file(build)
    hard = sub.add_parser(
        "hardness", help="which single observation tokens give each fault type away"
    )
    hard.add_argument(
        "--episodes", type=_positive, default=500, help="first alarms per split (default 500)"
    )
    hard.add_argument(
        "--splits", default="train,test", help="comma-separated splits (default train,test)"
    )
    hard.add_argument(
        "--agents",
        default="gcn_fr",
        help="comma-separated agents whose first answer at each first alarm is scored "
        "(default gcn_fr; '' for none)",
    )
    hard.add_argument(
        "--no-expert", action="store_true", help="skip the scripted expert and its probes"
    )
    hard.add_argument("--out", type=Path, help="write hardness.md and hardness.json there")
    hard.add_argument("--quiet", action="store_true", help="no progress bar")
    gate = sub.add_parser(
        "gate", help="compare a run with a stored baseline (exit 1 when a score regressed)"
    )
    _run_and_baseline(gate, "the run's .jsonl file")
    gate.add_argument("--alpha", type=float, default=0.05, help="significance (default 0.05)")
    gate.add_argument(
        "--min-effect",
        type=float,
        default=0.05,
        help="smallest worsening that counts: points for shares, a fraction otherwise (0.05)",
    )
    gate.add_argument(
        "--all", action="store_true", help="print every comparison, not only regressions"
    )
    speed = sub.add_parser(
        "speed-gate", help="compare pytest-benchmark results with a baseline, machine speed aside"
    )
    _run_and_baseline(speed, "a --benchmark-json file")
    speed.add_argument(
        "--threshold", type=float, default=1.5, help="largest slowdown allowed (default 1.5x)"
    )
    submit = sub.add_parser("submit", help="leaderboard submissions")
    submit_sub = submit.add_subparsers(dest="submit_command", required=True)
    check = submit_sub.add_parser(
        "validate", help="check a submission folder and its manifest before a long run"
    )
    check.add_argument("folder", type=Path, help="the submission folder (with manifest.yaml)")
    check.add_argument(
        "--no-import", action="store_true", help="skip the import check in the sandbox"
    )
    sub.add_parser("list", help="list suites and reference agents")
    adapt = sub.add_parser(
        "adapt",
        help="online adaptation: a stream with an unseen fault injected mid-stream; agents "
        "with learn() get each episode's outcome",
    )
    adapt.add_argument("--agents", type=_agents, required=True, help="comma-separated agents")
    adapt.add_argument("--stream", default="deadlock", help="deadlock or certificate")
    adapt.add_argument("--episodes", type=_positive, help="episodes in the stream (default 40)")
    adapt.add_argument("--switch", type=_positive, help="episodes before the unseen fault (10)")
    adapt.add_argument("--seed", type=int, default=0)
    adapt.add_argument("--device", type=device_option, default="cpu", help=DEVICE_HELP)
    adapt.add_argument("--out", type=Path, help="rows file (default runs/adapt-<stream>.jsonl)")
    adapt.add_argument("--figure", type=Path, help="also draw the rolling success there (.png)")
    adapt.add_argument("--quiet", action="store_true", help="no progress bar")
    adrep = sub.add_parser(
        "adapt-report",
        help="the adaptation table and Fig. 4 from stream row files (one stream)",
    )
    adrep.add_argument("--results", type=Path, nargs="+", required=True, help="row files")
    adrep.add_argument("--out", type=Path, required=True, help="folder for the table and figure")
    t1 = sub.add_parser(
        "table1", help="PASE's ablation table (Table 1) from run records and adaptation rows"
    )
    t1.add_argument(
        "--results",
        type=Path,
        nargs="+",
        required=True,
        help="records of the variants (one file or several, e.g. one per variant)",
    )
    t1.add_argument("--adapt", type=Path, nargs="*", default=[], help="their stream row files")
    t1.add_argument("--out", type=Path, required=True, help="folder for table1.md and .json")
    return p


def _key_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        type=Path,
        help="a file holding the evaluator's key (else $PASE_GYM_HIDDEN_KEY or "
        "$PASE_GYM_HIDDEN_KEY_FILE)",
    )


def _evaluator_key(args: argparse.Namespace) -> bytes:
    from pase_gym.harness.hidden import KEY_FILE_ENV, load_key

    if args.key_file is not None:
        if not args.key_file.is_file():
            raise SuiteError(f"--key-file: no such file: {args.key_file}")
        os.environ[KEY_FILE_ENV] = str(args.key_file.resolve())
    return load_key()


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from pase_gym.harness.board import collect, write_board

    key = _evaluator_key(args) if args.signed else None
    board = collect(args.results, args.submissions, key)
    written = write_board(board, args.out)
    sys.stdout.write(
        f"board of {len(board.entries)} agents on {', '.join(board.suites) or 'no suite'} "
        f"({'signed results' if key else 'signatures not checked'}): {written[0]}, {written[1]} "
        f"and {len(written) - 2} agent pages\n"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pase_gym.harness.hidden import KEY_FILE_ENV
    from pase_gym.harness.report import markdown_table, write_report

    if args.hidden_key_file is not None:
        if not args.hidden_key_file.is_file():
            raise SuiteError(f"--hidden-key-file: no such file: {args.hidden_key_file}")
        os.environ[KEY_FILE_ENV] = str(args.hidden_key_file.resolve())
    from pase_gym.harness.runner import run_suite
    from pase_gym.harness.suites import load_suite

    suite = load_suite(args.suite)
    out = args.out or Path("runs") / f"{suite.name}.jsonl"
    start = time.monotonic()
    records = run_suite(
        args.agents,
        suite,
        out,
        seeds=args.seeds,
        workers=args.workers,
        device=args.device,
        progress=not args.quiet,
        isolation="in-process" if args.in_process else "auto",
        hide=args.hide,
        backend=args.backend,
        address=args.address,
    )
    elapsed = time.monotonic() - start
    sys.stdout.write(markdown_table(records, f"suite {suite.name}"))
    sys.stdout.write(f"\n{len(records)} episodes in {out} ({elapsed:.1f} s this run)\n")
    if args.report:
        path = write_report(records, args.report, f"suite {suite.name}")
        sys.stdout.write(f"report: {path}\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pase_gym.harness.report import write_report

    records = _load_records(args.results)
    path = write_report(records, args.out, args.title, figures=not args.no_figures)
    sys.stdout.write(f"{path}\n")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from pase_gym.harness.runner import close_agents, progress_bar
    from pase_gym.harness.verify import mismatch_table, select, verify_records

    if args.sign and args.traces_only:
        raise ResultsError(
            "--sign needs the agent re-run: a traces-only check does not show that the agent "
            "produced its trace; drop --traces-only"
        )
    records = _load_records(args.results)
    chosen = select(records, args.sample, args.seed)
    bar = None if args.quiet else progress_bar(len(chosen), "verify")
    bad: set[str] = set()

    def done(record: Record, mismatches: list[Mismatch]) -> None:
        if mismatches:
            bad.add(record["key"])
        if bar is not None:
            bar.update()

    mismatches = verify_records(
        chosen,
        suite=args.suite,
        device=args.device,
        on_done=done,
        hide=[str(args.results.resolve())],
        traces_only=args.traces_only,
    )
    close_agents()
    if bar is not None:
        bar.close()
    if mismatches:
        sys.stdout.write(mismatch_table(mismatches))
        sys.stdout.write(
            f"\n{len(bad)} of {len(chosen)} replayed episodes differ from {args.results}\n"
        )
        return EXIT_FAILED
    how = "plan traces stepped" if args.traces_only else "replayed"
    sys.stdout.write(
        f"ok: {len(chosen)} of {len(records)} episodes of {args.results} {how}, "
        "every record reproduced (timing and provenance aside)\n"
    )
    if args.sign:
        from pase_gym.harness.board import sign

        signature = sign(args.results, _evaluator_key(args), verified=len(chosen))
        sys.stdout.write(f"signed: {signature}\n")
    return 0


def cmd_hardness(args: argparse.Namespace) -> int:
    import json

    from pase_gym.harness.hardness import build_report, markdown
    from pase_gym.harness.runner import progress_bar

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in splits if s not in ("train", "test", "unseen")]
    if not splits or unknown:
        raise ResultsError(f"--splits: expected train, test or unseen, found {args.splits!r}")
    from pase_gym.harness.agent import agent_name, load_agent

    agents = {}
    for spec in (a.strip() for a in args.agents.split(",")):
        if spec:
            agent = load_agent(spec)
            agents[agent_name(agent, spec)] = agent
    bar = None if args.quiet else progress_bar(args.episodes * len(splits), "hardness")
    report = build_report(
        splits,
        args.episodes,
        None if bar is None else bar.update,
        agents=agents,
        expert=not args.no_expert,
    )
    if bar is not None:
        bar.close()
    text = markdown(report)
    sys.stdout.write(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "hardness.md").write_text(text, encoding="utf-8")
        (args.out / "hardness.json").write_text(
            json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    import json
    import shlex

    from pase_gym.harness.gate import compare, load_baseline, make_baseline, table

    records = _load_records(args.results)
    if args.write_baseline is not None:
        command = "pase-bench gate " + shlex.join(sys.argv[2:] if len(sys.argv) > 2 else [])
        baseline = make_baseline(records, command)
        args.write_baseline.parent.mkdir(parents=True, exist_ok=True)
        args.write_baseline.write_text(
            json.dumps(baseline, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        sys.stdout.write(f"baseline of {len(records)} episodes written to {args.write_baseline}\n")
        return 0
    if not 0 < args.alpha < 1 or args.min_effect < 0:
        raise ResultsError("--alpha must be in (0, 1) and --min-effect >= 0")
    found = compare(
        load_baseline(args.baseline), records, alpha=args.alpha, min_effect=args.min_effect
    )
    bad = [c for c in found if c.regressed]
    if bad or args.all:
        sys.stdout.write(table(found, only_regressions=not args.all))
    sys.stdout.write(
        f"{len(bad)} of {len(found)} agent x metric comparisons regressed against {args.baseline}\n"
    )
    return EXIT_FAILED if bad else 0


def cmd_speed_gate(args: argparse.Namespace) -> int:
    import json

    from pase_gym.harness import speed

    if args.write_baseline is not None:
        baseline = speed.make_baseline(args.results, f"from {args.results}")
        args.write_baseline.parent.mkdir(parents=True, exist_ok=True)
        args.write_baseline.write_text(
            json.dumps(baseline, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        sys.stdout.write(f"speed baseline written to {args.write_baseline}\n")
        return 0
    if args.threshold <= 1.0:
        raise ResultsError("--threshold must be above 1.0 (a slowdown factor)")
    try:
        baseline = json.loads(args.baseline.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{args.baseline}: not a readable speed baseline ({exc})") from None
    checks = speed.compare(baseline, args.results, args.threshold)
    slower = [c for c in checks if c.regressed]
    if slower:
        sys.stdout.write(speed.table(checks))
    sys.stdout.write(
        f"{len(slower)} of {len(checks)} benchmarks slower than {args.threshold:g}x the "
        f"baseline (each over the reference workload of its own run)\n"
    )
    return EXIT_FAILED if slower else 0


def cmd_submit(args: argparse.Namespace) -> int:
    from pase_gym.harness.submission import validate_submission

    sub = validate_submission(args.folder, import_check=not args.no_import)
    m = sub.manifest
    sys.stdout.write(
        f"ok: {m.name} by {', '.join(m.authors)} ({m.licence}); agent {sub.spec}; "
        f"{sub.files} files, {sub.size / 1024:.0f} KiB; reads {m.reads}; "
        f"model {m.model.name} ({m.model.parameters:,} parameters)"
        f"{'; extras ' + ', '.join(m.extras) if m.extras else ''}\n"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pase_gym.harness.agent import REGISTRY, load_agent
    from pase_gym.harness.sandbox import SandboxedAgent
    from pase_gym.harness.suites import load_suite

    suite = load_suite(args.suite)
    specs = suite.scenario_specs()
    for a in args.agents:  # a submission's code is imported in the sandbox, as in a run
        if a in REGISTRY:
            load_agent(a)
        else:
            SandboxedAgent(a).close()
    sys.stdout.write(
        f"ok: suite {suite.name} ({len(specs)} scenarios x {suite.seeds} seeds), "
        f"agents {', '.join(args.agents)}\n"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from pase_gym.harness.agent import REGISTRY
    from pase_gym.harness.suites import list_suites

    sys.stdout.write("suites: " + ", ".join(list_suites()) + "\n")
    sys.stdout.write("agents: " + ", ".join(REGISTRY) + " (or module:Class, path.py[:Class])\n")
    return 0


def _advance(bar: Any) -> Any:
    return lambda _row: bar.update(1)


def cmd_adapt(args: argparse.Namespace) -> int:
    from pase_gym.harness.adaptation import figure, run_stream, stream_of, table
    from pase_gym.harness.runner import progress_bar

    try:
        stream = stream_of(args.stream, args.episodes, args.switch, args.seed)
        stream.plan()
    except ValueError as exc:
        raise SuiteError(str(exc)) from exc
    out = args.out or Path("runs") / f"adapt-{stream.name}.jsonl"
    if out.exists():
        raise SuiteError(f"{out} exists: a stream is not resumable; remove it or pick --out")
    rows = []
    for agent in args.agents:
        bar = progress_bar(stream.episodes, f"{stream.name} {agent}")
        bar.disable = args.quiet
        rows += run_stream(agent, stream, out, args.device, on_episode=_advance(bar))
        bar.close()
    sys.stdout.write(
        f"stream {stream.name}: {stream.switch} known-fault episodes, then "
        f"{stream.episodes - stream.switch} of {stream.after} (seed {stream.seed})\n"
        + table(rows, stream.switch)
        + f"{len(rows)} episodes in {out}\n"
    )
    if args.figure:
        figure(rows, stream.switch, args.figure)
    return 0


def cmd_table1(args: argparse.Namespace) -> int:
    from pase_gym.harness.ablation import markdown, write
    from pase_gym.harness.adaptation import load_rows

    records: list[Record] = []
    seen: dict[str, Path] = {}
    for path in args.results:
        for record in _load_records(path):
            if record["key"] in seen:
                raise ResultsError(
                    f"{path}: record {record['key']!r} is also in {seen[record['key']]}"
                )
            seen[record["key"]] = path
            records.append(record)
    try:
        rows = load_rows(args.adapt) if args.adapt else []
        sys.stdout.write(markdown(records, rows))
        paths = write(records, rows, args.out)
    except ValueError as exc:
        raise ResultsError(str(exc)) from None
    for path in paths:
        sys.stdout.write(f"{path}\n")
    return 0


def cmd_adapt_report(args: argparse.Namespace) -> int:
    from pase_gym.harness.adaptation import load_rows, switch_of, table, write_report

    try:
        rows = load_rows(args.results)
        switch = switch_of(rows)
    except ValueError as exc:
        raise ResultsError(str(exc)) from None
    sys.stdout.write(table(rows, switch))
    for path in write_report(rows, args.out):
        sys.stdout.write(f"{path}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 ok, 1 a verified record did not reproduce, 2 bad input."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["replay"]:  # its own parser (imported only when it runs)
        from pase_gym.harness.replay import main as replay_main

        return replay_main(arguments[1:])
    handlers = {
        "run": cmd_run,
        "report": cmd_report,
        "validate": cmd_validate,
        "verify": cmd_verify,
        "hardness": cmd_hardness,
        "submit": cmd_submit,
        "gate": cmd_gate,
        "speed-gate": cmd_speed_gate,
        "leaderboard": cmd_leaderboard,
        "list": cmd_list,
        "adapt": cmd_adapt,
        "adapt-report": cmd_adapt_report,
        "table1": cmd_table1,
    }
    return run_cli(build_parser(), lambda a: handlers[a.command](a), arguments, default=["run"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
