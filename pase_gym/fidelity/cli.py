"""``python -m pase_gym.fidelity --out DIR``: write the sim-to-real report.

Loads Failure-Dataset-OpenStack and the shipped calibration, builds the report
(:func:`pase_gym.fidelity.report.build_report`) and writes it
(:func:`pase_gym.fidelity.render.write_report`). The committed report is regenerated with::

    python -m pase_gym.fidelity --out benchmarks/fidelity/
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pase_gym.clitools import at_least, run_cli
from pase_gym.datasets import load_all
from pase_gym.fidelity.calibration import load_calibration
from pase_gym.fidelity.render import COMMAND, write_report
from pase_gym.fidelity.report import DEFAULT_N_SEEDS, DEFAULT_N_SIM, build_report


def main(argv: Sequence[str] | None = None) -> int:
    """Write the sim-to-real report; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Sim-to-real report of pase-gym against Failure-Dataset-OpenStack.",
    )
    parser.add_argument("--out", required=True, help="folder for report.json/.md and the figure")
    parser.add_argument(
        "--n-sim",
        type=at_least(10),
        default=DEFAULT_N_SIM,
        help=f"simulated experiments per campaign and variant ({DEFAULT_N_SIM})",
    )
    parser.add_argument("--seed", type=int, default=0, help="first simulation seed (0)")
    parser.add_argument(
        "--n-seeds",
        type=at_least(1),
        default=DEFAULT_N_SEEDS,
        help=f"simulation seeds to average over ({DEFAULT_N_SEEDS})",
    )
    parser.add_argument("--folds", type=int, default=5, help="discriminator CV folds (5)")
    parser.add_argument("--calibration", default=None, help="calibration file (the shipped one)")
    parser.add_argument("--data-root", default=None, help="the data set's folder")
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG")
    arguments = list(sys.argv[1:] if argv is None else argv)
    return run_cli(parser, lambda args: _report(args, arguments), arguments)


def _report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    start = time.perf_counter()
    dataset = load_all(args.data_root)
    calibration = load_calibration(args.calibration)
    report = build_report(
        dataset,
        calibration,
        n_sim=args.n_sim,
        seed=args.seed,
        n_seeds=args.n_seeds,
        folds=args.folds,
    )
    elapsed = time.perf_counter() - start
    command = f"{COMMAND} " + " ".join(argv)
    meta = {"command": command, "runtime_s": round(elapsed, 1)}
    paths = write_report(report, args.out, meta=meta, figure=not args.no_figure)
    s = report["summary"]
    print(f"mean macro-F1: {s['mean_macro_f1']}")
    print(f"mean discriminator AUC: {s['mean_discriminator_auc']}")
    print(f"mean JS divergence: {s['mean_js_divergence']}")
    print(f"wrote {', '.join(str(p) for p in paths)} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
