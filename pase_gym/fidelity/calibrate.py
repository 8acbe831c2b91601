"""``python -m pase_gym.fidelity.calibrate --out FILE``: fit and write the calibration file.

Loads Failure-Dataset-OpenStack, splits it (duplicate-aware, see
:data:`pase_gym.fidelity.calibration.DEFAULT_SPLIT`), fits
:func:`~pase_gym.fidelity.fitting.fit_calibration` on the train side only and writes the
JSON file. The shipped file is regenerated with::

    python -m pase_gym.fidelity.calibrate --out pase_gym/fidelity/calibration.json
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from pase_gym.clitools import at_least, run_cli
from pase_gym.datasets import load_all
from pase_gym.fidelity.calibration import DEFAULT_SPLIT
from pase_gym.fidelity.fitting import DEFAULT_PILOT, calibrate_dataset


def main(argv: Sequence[str] | None = None) -> int:
    """Fit the calibration and write it; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pase_gym.fidelity.calibrate",
        description="Fit the simulator's calibration on the train side of "
        "Failure-Dataset-OpenStack and write it as JSON.",
    )
    parser.add_argument("--out", required=True, help="the calibration file to write")
    parser.add_argument("--data-root", default=None, help="the data set's folder")
    parser.add_argument(
        "--pilot",
        type=at_least(1),
        default=DEFAULT_PILOT,
        help=f"pilot experiments per injection site and campaign ({DEFAULT_PILOT})",
    )
    parser.add_argument("--pilot-seed", type=int, default=0, help="seed of the pilot runs (0)")
    parser.add_argument(
        "--test-size",
        type=float,
        default=DEFAULT_SPLIT["test_size"],
        help=f"share of rows held out for evaluation ({DEFAULT_SPLIT['test_size']})",
    )
    parser.add_argument(
        "--split-seed", type=int, default=DEFAULT_SPLIT["seed"], help="seed of the split (0)"
    )
    return run_cli(parser, _calibrate, argv)


def _calibrate(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    dataset = load_all(args.data_root)
    calibration = calibrate_dataset(
        dataset,
        split={"test_size": args.test_size, "seed": args.split_seed, "by": "group"},
        pilot=args.pilot,
        pilot_seed=args.pilot_seed,
    )
    path = calibration.save(args.out)
    split = calibration.split
    print(
        f"fitted on {split['n_train']} train rows (held out: {split['n_test']}); "
        f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    for name, camp in calibration.campaigns.items():
        shares = ", ".join(f"{c} {v:.3f}" for c, v in camp.class_freq.items())
        print(f"  {name}: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
