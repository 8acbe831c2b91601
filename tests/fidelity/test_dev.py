"""Tests of the train-side design checks (pase_gym.fidelity.dev)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pase_gym.datasets import load_all
from pase_gym.fidelity.calibration import DEFAULT_SPLIT, split_rows
from pase_gym.fidelity.dev import dev_scores, main, train_folds

DATA_ROOT = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "failure-dataset-openstack"
)
requires_data = pytest.mark.skipif(
    not DATA_ROOT.is_dir(),
    reason=f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}",
)


@pytest.fixture(scope="module")
def dataset():
    return load_all(DATA_ROOT)


@requires_data
def test_folds_cover_the_train_side_only_with_whole_duplicate_groups(dataset) -> None:
    train, test = split_rows(dataset, DEFAULT_SPLIT)
    folds = train_folds(dataset, k=3, seed=0)
    checks = [check for _fit, check in folds]
    assert np.array_equal(np.sort(np.concatenate(checks)), np.sort(train))
    assert not np.intersect1d(np.concatenate(checks), test).size  # never an evaluation row
    groups = dataset.group_ids()
    for fit, check in folds:
        assert not np.intersect1d(fit, check).size
        assert not np.intersect1d(groups[fit], groups[check]).size
    again = train_folds(dataset, k=3, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    assert not np.array_equal(train_folds(dataset, k=3, seed=1)[0][1], folds[0][1])


@requires_data
def test_scores_are_deterministic_and_in_range(dataset) -> None:
    a = dev_scores(dataset, k=2, n_sim=40, pilot=1, campaigns=["NET"])
    b = dev_scores(dataset, k=2, n_sim=40, pilot=1, campaigns=["NET"])
    assert a == b
    net = a["campaigns"]["NET"]
    assert len(net["macro_f1"]) == len(net["scale_f1"]) == len(net["auc"]) == 2
    assert all(0.0 <= v <= 1.0 for v in net["macro_f1"] + net["scale_f1"] + net["auc"])
    assert a["mean_macro_f1"] == net["mean_macro_f1"]
    assert a["mean_scale_f1"] == net["mean_scale_f1"]
    assert net["mean_scale_f1"] == pytest.approx(np.mean(net["scale_f1"]), abs=1e-4)
    # the scale-only rows draw the unmodelled columns from the healthy class: they separate
    # the classes less well than the calibrated rows (NET, both folds)
    assert all(s < f for s, f in zip(net["scale_f1"], net["macro_f1"], strict=True))


def test_bad_arguments_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--folds", "1"])
    status = main(["--data-root", str(tmp_path / "nowhere")])
    assert status == 2
    assert "error" in capsys.readouterr().err
