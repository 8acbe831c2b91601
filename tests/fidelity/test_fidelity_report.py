"""Tests of the sim-to-real report (pase_gym.fidelity) and the statistics it uses (pase_gym.stats).

The metric helpers are checked on hand-made inputs with known answers. The report command is
run in-process on a small budget and its JSON compared with the functions users call, and one
number of each kind is recomputed from the building blocks by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pase_gym.datasets import DatasetError, load_all
from pase_gym.datasets.splits import unique_rows
from pase_gym.fidelity.calibration import check_split, load_calibration, rows_digest
from pase_gym.fidelity.classifier import LogisticRegression, discriminator_auc, features
from pase_gym.fidelity.cli import main
from pase_gym.fidelity.experiments import labels_of, simulate_campaign, uniform_mix
from pase_gym.fidelity.render import render_markdown
from pase_gym.fidelity.report import TARGETS, build_report, class_shares, evaluation_rows
from pase_gym.fidelity.rows import calibrated_matrix, native_matrix
from pase_gym.stats import (
    bootstrap_macro_f1,
    confusion_matrix,
    f1_per_class,
    js_divergence,
    macro_f1,
    roc_auc,
)

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO.parent / "shared" / "data" / "failure-dataset-openstack"

requires_data = pytest.mark.skipif(
    not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file(),
    reason=f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}",
)

N_SIM = 40  # a small budget: the numbers are not meaningful, only where they come from


# --------------------------------------------------------------------------------------------
# Metrics on hand-made inputs
# --------------------------------------------------------------------------------------------


def test_macro_f1_known_values() -> None:
    y = ["a", "a", "b", "b"]
    assert macro_f1(y, y) == 1.0
    assert macro_f1(y, ["b", "b", "a", "a"]) == 0.0
    # a: tp 1, fp 0, fn 1 -> 2/3; b: tp 2, fp 1, fn 0 -> 4/5
    pred = ["a", "b", "b", "b"]
    assert f1_per_class(y, pred) == pytest.approx({"a": 2 / 3, "b": 4 / 5})
    assert macro_f1(y, pred) == pytest.approx((2 / 3 + 4 / 5) / 2)
    # a label only predicted counts (F1 0); an unused label in `labels` counts 0 too
    assert macro_f1(["a", "a"], ["a", "c"]) == pytest.approx((2 / 3 + 0.0) / 2)
    assert macro_f1(y, y, labels=["a", "b", "z"]) == pytest.approx(2 / 3)


def test_confusion_matrix_known_values() -> None:
    m = confusion_matrix(["a", "a", "b", "c"], ["a", "b", "b", "a"], ["a", "b", "c"])
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(DatasetError):
        confusion_matrix(["a"], ["a", "b"], ["a", "b"])


def test_roc_auc_known_values() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) lose, (0.8, *) win -> 3/4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # a tie between a positive and a negative counts one half
    assert roc_auc([0, 1, 1], [0.3, 0.3, 0.9]) == 0.75
    with pytest.raises(DatasetError):
        roc_auc([1, 1], [0.1, 0.2])


def test_js_divergence_known_values() -> None:
    assert js_divergence([0.2, 0.8], [0.2, 0.8]) == 0.0
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4)
    expected = 0.5 * np.log2(4 / 3) + 0.5 * (0.5 * np.log2(2 / 3) + 0.5 * np.log2(2))
    assert js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(expected)
    assert js_divergence([2, 0], [1, 1]) == pytest.approx(expected)  # normalised
    assert js_divergence([0.3, 0.7], [0.6, 0.4]) == pytest.approx(
        js_divergence([0.6, 0.4], [0.3, 0.7])
    )
    with pytest.raises(DatasetError):
        js_divergence([1, 0], [1, 0, 0])


def test_bootstrap_interval_brackets_the_estimate() -> None:
    y = np.array(["a"] * 20 + ["b"] * 20)
    pred = y.copy()
    pred[:5] = "b"
    lo, hi = bootstrap_macro_f1(y, pred, n=200, seed=0)
    assert lo <= macro_f1(y, pred) <= hi
    assert (lo, hi) == bootstrap_macro_f1(y, pred, n=200, seed=0)
    assert bootstrap_macro_f1(y, y, n=50) == (1.0, 1.0)
    # several runs: the interval of their mean
    lo2, hi2 = bootstrap_macro_f1(y, np.stack([pred, y]), n=200, seed=0)
    assert lo2 <= (macro_f1(y, pred) + 1.0) / 2 <= hi2


def test_logistic_regression_separates_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    x = np.vstack(
        [rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (40, 3)), rng.normal(-4, 1, (40, 3))]
    )
    y = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 40)
    model = LogisticRegression().fit(x, y)
    assert list(model.classes_) == ["a", "b", "c"]
    assert np.mean(model.predict(x) == y) > 0.95
    proba = model.predict_proba(x)
    assert proba.shape == (120, 3) and np.allclose(proba.sum(axis=1), 1.0)
    again = LogisticRegression().fit(x, y)
    assert np.array_equal(model.coef_, again.coef_)
    with pytest.raises(DatasetError, match="two classes"):
        LogisticRegression().fit(x, np.array(["a"] * 120))


def test_discriminator_auc_extremes() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, (60, 4))
    far = rng.normal(6, 1, (60, 4))
    auc, n_real, n_sim = discriminator_auc(real, far, seed=0)
    assert auc > 0.99 and n_real == n_sim == 60
    same = rng.normal(0, 1, (60, 4))
    auc, _, _ = discriminator_auc(real, same, seed=0)
    assert 0.3 < auc < 0.7
    # duplicates count once on each side; the simulated side is subsampled to the real size
    _, n_real, n_sim = discriminator_auc(np.vstack([real, real]), np.vstack([far, far, far]))
    assert n_real == n_sim == 60


def test_unique_rows_keeps_first_of_each_row_label_pair() -> None:
    x = np.array([[1, 0], [1, 0], [2, 0], [1, 0]])
    labels = np.array(["a", "a", "a", "b"])
    positions, keep = unique_rows(x, labels)
    assert positions.tolist() == [0, 2, 3]
    assert keep.tolist() == [True, False, True, True]
    assert class_shares(labels, ["a", "b"]) == {"a": 0.75, "b": 0.25}


# --------------------------------------------------------------------------------------------
# The report and the command
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset():
    return load_all(DATA_ROOT)


@pytest.fixture(scope="module")
def calibration():
    return load_calibration()


@pytest.fixture(scope="module")
def command_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file():
        pytest.skip("Failure-Dataset-OpenStack is not available")
    out = tmp_path_factory.mktemp("fidelity")
    status = main(
        [
            "--out",
            str(out),
            "--n-sim",
            str(N_SIM),
            "--n-seeds",
            "2",
            "--data-root",
            str(DATA_ROOT),
            "--no-figure",
        ]
    )
    assert status == 0
    assert (out / "report.md").is_file()
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@requires_data
def test_evaluation_rows_are_unique_test_rows(dataset, calibration) -> None:
    train, test = check_split(calibration, dataset)
    assert rows_digest(train) == calibration.split["train_sha256"]
    for name in dataset.campaigns:
        rows = evaluation_rows(dataset, test, name)
        assert np.isin(rows, test).all() and not np.isin(rows, train).any()
        assert (dataset.campaign[rows] == name).all()
        keys = {(tuple(dataset.X[r].tolist()), str(dataset.labels[r])) for r in rows}
        assert len(keys) == rows.size  # de-duplicated
        every = {
            (tuple(dataset.X[r].tolist()), str(dataset.labels[r]))
            for r in np.intersect1d(dataset.rows_of(name), test)
        }
        assert keys == every  # and nothing distinct is lost


@requires_data
def test_command_writes_what_build_report_returns(command_report, dataset, calibration) -> None:
    meta = command_report.pop("meta")
    assert "python -m pase_gym.fidelity" in meta["command"]
    direct = build_report(dataset, calibration, n_sim=N_SIM, seed=0, n_seeds=2)
    assert json.loads(json.dumps(direct)) == command_report
    assert command_report["targets"] == TARGETS
    assert (
        command_report["settings"]["calibration_train_sha256"]
        == (calibration.split["train_sha256"])
    )
    text = render_markdown(direct)
    for name, camp in direct["campaigns"].items():
        assert f"| {name} | {camp['rows']['real_eval_unique']} | " in text


@requires_data
def test_report_numbers_come_from_the_user_functions(command_report, dataset, calibration) -> None:
    train, test = check_split(calibration, dataset)
    name = "NET"
    camp = calibration.campaigns[name]
    evals = evaluation_rows(dataset, test, name)
    x_eval = features(dataset.X[evals], camp.present)
    y_eval = dataset.labels[evals]
    got = command_report["campaigns"][name]
    assert command_report["settings"]["n_seeds"] == 2

    # sim-trained (calibrated): simulate with the fitted mix, calibrate, train, score
    experiments = simulate_campaign(name, N_SIM, seed=0, mix=camp.injection_mix)
    x_sim = features(calibrated_matrix(experiments, calibration), camp.present)
    pred = LogisticRegression().fit(x_sim, labels_of(experiments)).predict(x_eval)
    assert got["macro_f1_by_seed"]["calibrated"][0] == round(macro_f1(y_eval, pred), 4)
    # the reported number is the mean over the seeds 0 and 1
    by_seed = got["macro_f1_by_seed"]["calibrated"]
    assert len(by_seed) == 2
    assert got["macro_f1"]["calibrated"] == pytest.approx(np.mean(by_seed), abs=1e-4)

    # uncalibrated: the native event stream, uniform mix
    plain = simulate_campaign(name, N_SIM, seed=0, mix=uniform_mix())
    x_plain = features(native_matrix(plain, calibration.columns), camp.present)
    pred = LogisticRegression().fit(x_plain, labels_of(plain)).predict(x_eval)
    assert got["macro_f1_by_seed"]["uncalibrated"][0] == round(macro_f1(y_eval, pred), 4)

    # the real-on-real ceiling: the same classifier on the campaign's train rows
    rows = np.intersect1d(dataset.rows_of(name), train)
    model = LogisticRegression().fit(features(dataset.X[rows], camp.present), dataset.labels[rows])
    assert got["macro_f1"]["real_ceiling"] == round(macro_f1(y_eval, model.predict(x_eval)), 4)

    # the discriminator and the divergence of class shares
    auc, n_real, _ = discriminator_auc(x_eval, x_sim, seed=0)
    assert got["discriminator_auc_by_seed"]["calibrated"][0] == round(auc, 4)
    assert got["discriminator_rows"]["calibrated"][0] == n_real
    # class shares pool the simulated experiments of both seeds
    classes = list(camp.classes)
    real = class_shares(dataset.labels[np.intersect1d(dataset.rows_of(name), test)], classes)
    second = simulate_campaign(name, N_SIM, seed=1, mix=camp.injection_mix)
    sim = class_shares(np.concatenate([labels_of(experiments), labels_of(second)]), classes)
    expected = js_divergence([sim[c] for c in classes], [real[c] for c in classes])
    assert got["js_divergence"]["calibrated"] == round(expected, 4)
    assert got["rows"]["real_eval_unique"] == evals.size


@requires_data
def test_report_layout_and_ranges(command_report) -> None:
    assert set(command_report["campaigns"]) == {"DEPL", "NET", "STO"}
    for camp in command_report["campaigns"].values():
        assert set(camp["macro_f1"]) == {"calibrated", "scale_only", "uncalibrated", "real_ceiling"}
        assert set(camp["discriminator_auc"]) == {"calibrated", "scale_only", "uncalibrated"}
        for value in [*camp["macro_f1"].values(), *camp["discriminator_auc"].values()]:
            assert 0.0 <= value <= 1.0
        for lo, hi in camp["macro_f1_ci95"].values():
            assert 0.0 <= lo <= hi <= 1.0
        for value in camp["js_divergence"].values():
            assert 0.0 <= value <= 1.0
        n = len(camp["classes"])
        assert np.array(camp["confusion"]["calibrated"]).shape == (n, n)
        n_eval = camp["rows"]["real_eval_unique"]
        assert set(camp["support"]) == set(camp["classes"])
        assert sum(camp["support"].values()) == n_eval
        # a confusion row sums to its class's support
        assert np.array(camp["confusion"]["real_ceiling"]).sum(axis=1).tolist() == [
            camp["support"][c] for c in camp["classes"]
        ]
        assert np.array(camp["confusion"]["real_ceiling"]).sum() == n_eval
        assert np.array(camp["confusion"]["calibrated"]).sum() == 2 * n_eval  # two seeds
    summary = command_report["summary"]
    assert set(summary["targets_met"]) == {"sim_macro_f1", "discriminator_auc"}


def test_shipped_report_matches_the_shipped_calibration(calibration) -> None:
    path = REPO / "benchmarks" / "fidelity" / "report.json"
    if not path.is_file():
        pytest.skip("no shipped report")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["settings"]["calibration_train_sha256"] == calibration.split["train_sha256"]
    assert "python -m pase_gym.fidelity" in report["meta"]["command"]
    assert report["settings"]["n_sim"] >= 1000


def test_command_rejects_a_tiny_budget(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--n-sim", "2"])


def test_command_reports_a_missing_data_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "nowhere")])
    assert status == 2
    assert "error" in capsys.readouterr().err
