"""``python -m pase_gym.fidelity.dev``: design checks on the train side only.

A change to the simulated experiments (a script, an end state, the client model) is judged
here, never on the rows the sim-to-real report evaluates on. The train side of the
calibration's split is cut into ``k`` folds of whole duplicate groups; for each fold the
calibration is fitted on the other folds (:func:`~pase_gym.fidelity.fitting.fit_calibration`,
a short pilot run) and the fold's de-duplicated rows are scored exactly as the report scores
the evaluation rows: sim-trained macro-F1 of the calibrated variant and of the scale-only one
(the simulator's end states with the healthy scale of the columns it does not model), and the
real-vs-simulated discriminator AUC of the calibrated variant. The evaluation side is never
read. Compare two versions of the code by running the command on each; the numbers are
deterministic for a seed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pase_gym.clitools import at_least, run_cli
from pase_gym.datasets import load_all
from pase_gym.datasets.campaigns import parse_campaigns
from pase_gym.datasets.dataset import Dataset
from pase_gym.fidelity.calibration import DEFAULT_SPLIT, split_rows
from pase_gym.fidelity.classifier import LogisticRegression, discriminator_auc, features
from pase_gym.fidelity.experiments import labels_of, simulate_campaign
from pase_gym.fidelity.fitting import fit_calibration
from pase_gym.fidelity.report import evaluation_rows
from pase_gym.fidelity.rows import Mode, calibrated_matrix
from pase_gym.stats import macro_f1

COMMAND = "python -m pase_gym.fidelity.dev"


def train_folds(dataset: Dataset, k: int = 3, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (fit, check) pairs of row indices over the train side of the calibration's split:
    :meth:`~pase_gym.datasets.dataset.Dataset.group_kfold` of those rows (whole duplicate
    groups in one fold, stratified by campaign and class); the evaluation side is in none."""
    train, _test = split_rows(dataset, DEFAULT_SPLIT)
    return dataset.group_kfold(k, seed, rows=train)


def dev_scores(
    dataset: Dataset,
    *,
    k: int = 3,
    seed: int = 0,
    n_sim: int = 500,
    pilot: int = 12,
    campaigns: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per campaign, the sim-trained macro-F1 (calibrated and scale-only) and the
    discriminator AUC on each train fold.

    Returns:
        ``{"campaigns": {name: {"macro_f1": [...], "scale_f1": [...], "auc": [...],
        "mean_macro_f1", "mean_scale_f1", "mean_auc"}}, "mean_macro_f1", "mean_scale_f1",
        "mean_auc", "settings"}``.
    """
    names = list(campaigns) if campaigns is not None else list(dataset.campaigns)
    per: dict[str, dict[str, list[float]]] = {
        n: {"macro_f1": [], "scale_f1": [], "auc": []} for n in names
    }
    for f, (fit_rows, check_rows) in enumerate(train_folds(dataset, k, seed)):
        calibration = fit_calibration(dataset, fit_rows, pilot=pilot, pilot_seed=seed)
        for name in names:
            camp = calibration.campaigns[name]
            rows = evaluation_rows(dataset, check_rows, name)
            x_real = features(dataset.X[rows], camp.present)
            y_real = np.asarray(dataset.labels[rows])
            experiments = simulate_campaign(name, n_sim, seed=seed + f, mix=camp.injection_mix)
            y_sim = labels_of(experiments)
            sims: dict[str, np.ndarray] = {}
            variants: tuple[tuple[str, Mode], ...] = (("macro_f1", "full"), ("scale_f1", "scale"))
            for key, mode in variants:
                sims[key] = features(
                    calibrated_matrix(experiments, calibration, mode=mode), camp.present
                )
                pred = LogisticRegression().fit(sims[key], y_sim).predict(x_real)
                per[name][key].append(round(float(macro_f1(y_real, pred)), 4))
            auc, _, _ = discriminator_auc(x_real, sims["macro_f1"], seed=seed)
            per[name]["auc"].append(round(float(auc), 4))
            if progress is not None:
                progress(
                    f"fold {f + 1}/{k} {name}: macro-F1 {per[name]['macro_f1'][-1]:.3f} "
                    f"(scale-only {per[name]['scale_f1'][-1]:.3f}), AUC "
                    f"{per[name]['auc'][-1]:.3f} ({rows.size} distinct rows)"
                )
    out: dict[str, Any] = {"campaigns": {}}
    for name, scores in per.items():
        out["campaigns"][name] = {
            **scores,
            **{f"mean_{key}": round(float(np.mean(scores[key])), 4) for key in scores},
        }
    for key in ("macro_f1", "scale_f1", "auc"):
        out[f"mean_{key}"] = round(
            float(np.mean([v[f"mean_{key}"] for v in out["campaigns"].values()])), 4
        )
    out["settings"] = {"k": k, "seed": seed, "n_sim": n_sim, "pilot": pilot}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the train-side design checks; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Design checks of the simulated experiments on folds of the train side of "
        "Failure-Dataset-OpenStack (the evaluation side is never read).",
    )
    parser.add_argument("--folds", type=at_least(2), default=3, help="folds of the train side (3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds and simulations (0)")
    parser.add_argument(
        "--n-sim", type=at_least(10), default=500, help="simulated experiments per fold (500)"
    )
    parser.add_argument(
        "--pilot", type=at_least(1), default=12, help="pilot experiments per site (12)"
    )
    parser.add_argument(
        "--campaigns", default="all", help="comma-separated campaigns or 'all' (the default)"
    )
    parser.add_argument("--data-root", default=None, help="the data set's folder")
    return run_cli(parser, _run, argv)


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    dataset = load_all(args.data_root)
    campaigns = list(parse_campaigns(args.campaigns))
    scores = dev_scores(
        dataset,
        k=args.folds,
        seed=args.seed,
        n_sim=args.n_sim,
        pilot=args.pilot,
        campaigns=campaigns,
        progress=print,
    )
    for name, v in scores["campaigns"].items():
        print(
            f"{name}: macro-F1 {v['mean_macro_f1']:.3f} (scale-only {v['mean_scale_f1']:.3f}), "
            f"AUC {v['mean_auc']:.3f} (fold means)"
        )
    print(
        f"mean: macro-F1 {scores['mean_macro_f1']:.3f} (scale-only "
        f"{scores['mean_scale_f1']:.3f}), AUC {scores['mean_auc']:.3f} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
