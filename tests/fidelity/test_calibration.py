"""Tests of the calibration: fitted from the train side of the split only, small, documented.

The data set (GPL-3.0) lives outside the repository; tests that read it are skipped when it is
not there. The shipped calibration file is checked against a fresh fit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pase_gym.datasets import CLASS_NAMES, DatasetError, load_all
from pase_gym.fidelity.calibration import (
    DEFAULT_SPLIT,
    REGENERATE,
    Calibration,
    check_split,
    default_path,
    load_calibration,
    rows_digest,
    split_rows,
)
from pase_gym.fidelity.experiments import PHASE_STATES
from pase_gym.fidelity.fitting import (
    calibrate_dataset,
    class_states,
    column_signature,
    fit_calibration,
    fit_emission,
    fit_mixture,
)
from pase_gym.fidelity.scripts import (
    POLL_EVENTS,
    SCRIPTS,
    SITES,
    script_events,
    step_events,
)

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO.parent / "shared" / "data" / "failure-dataset-openstack"

requires_data = pytest.mark.skipif(
    not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file(),
    reason=f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}",
)


@pytest.fixture(scope="module")
def dataset():
    return load_all(DATA_ROOT)


@pytest.fixture(scope="module")
def shipped() -> Calibration:
    return load_calibration()


def _data_part(cal: Calibration) -> dict:
    """Everything fitted from the data set alone (not from the simulator's pilot runs)."""
    out = cal.as_dict()
    for camp in out["campaigns"].values():
        for key in ("injection_mix", "pilot_shares", "class_states", "emission"):
            camp.pop(key)
    out.pop("pilot")
    return out


# --------------------------------------------------------------------------------------------
# The shipped file
# --------------------------------------------------------------------------------------------


def test_shipped_file_is_small_and_documented(shipped: Calibration) -> None:
    path = default_path()
    assert path.is_file()
    assert path.stat().st_size < 200 * 1024
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert next(iter(raw)) == "_about"  # the header comes first
    assert raw["_about"]["regenerate"] == REGENERATE
    assert "python -m pase_gym.fidelity.calibrate" in REGENERATE
    for key in (
        "class_freq",
        "signature",
        "errors",
        "injection_mix",
        "pilot_shares",
        "class_states",
        "emission",
    ):
        assert any(key in field for field in raw["_about"]["fields"])
    assert set(shipped.campaigns) == {"DEPL", "NET", "STO"}
    assert len(shipped.columns) == 112


def test_round_trip(shipped: Calibration) -> None:
    text = shipped.to_json()
    again = Calibration.from_dict(json.loads(text))
    assert again.to_json() == text
    assert text == default_path().read_text(encoding="utf-8")


def test_injection_mix_is_a_distribution_over_sites(shipped: Calibration) -> None:
    for camp in shipped.campaigns.values():
        assert set(camp.injection_mix) <= set(SITES)
        assert abs(sum(camp.injection_mix.values()) - 1.0) < 1e-3
        assert all(v > 0 for v in camp.injection_mix.values())
        assert set(camp.pilot_shares) == set(SITES)
        # the fitted mix of the pilot shares lands close to the train class shares
        mixed = {
            c: sum(w * camp.pilot_shares[s][c] for s, w in camp.injection_mix.items())
            for c in camp.classes
        }
        assert max(abs(mixed[c] - camp.class_freq[c]) for c in camp.classes) < 0.05


def test_bad_files_raise(tmp_path: Path, shipped: Calibration) -> None:
    with pytest.raises(DatasetError, match="calibration file"):
        load_calibration(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DatasetError, match="JSON"):
        load_calibration(bad)
    raw = shipped.as_dict()
    del raw["campaigns"]["DEPL"]["signature"]
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DatasetError, match="regenerate"):
        load_calibration(bad)
    raw = shipped.as_dict()
    raw["campaigns"]["NET"]["emission"]["novaclient_GET_200"] = [1.0, -2.0]
    bad.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(DatasetError, match="emission"):
        load_calibration(bad)
    raw = shipped.as_dict()
    raw["version"] = 99
    with pytest.raises(DatasetError, match="version"):
        Calibration.from_dict(raw)


@requires_data
def test_shipped_file_names_the_train_side_of_the_split(dataset, shipped: Calibration) -> None:
    train, test = check_split(shipped, dataset)
    assert shipped.split["train_sha256"] == rows_digest(train)
    assert shipped.split["n_train"] == train.size and shipped.split["n_test"] == test.size
    assert train.size + test.size == dataset.n_rows
    assert not np.intersect1d(train, test).size
    # identical rows never straddle the split
    groups = dataset.group_ids()
    assert not np.intersect1d(groups[train], groups[test]).size
    for key in ("test_size", "seed", "by"):
        assert shipped.split[key] == DEFAULT_SPLIT[key]


@requires_data
def test_shipped_data_part_matches_a_fresh_fit(dataset, shipped: Calibration) -> None:
    fresh = calibrate_dataset(dataset, pilot=1)
    assert _data_part(fresh) == _data_part(shipped)


@pytest.mark.slow
@requires_data
def test_shipped_file_is_what_the_command_writes(dataset, shipped: Calibration) -> None:
    fresh = calibrate_dataset(
        dataset, pilot=int(shipped.pilot["per_site"]), pilot_seed=int(shipped.pilot["seed"])
    )
    assert fresh.to_json() == shipped.to_json(), (
        f"the shipped calibration is stale (the simulator or the data changed): {REGENERATE}"
    )


@requires_data
def test_class_freq_and_signature_are_train_statistics(dataset, shipped: Calibration) -> None:
    train, _ = split_rows(dataset, shipped.split)
    for name, camp in shipped.campaigns.items():
        rows = np.intersect1d(dataset.rows_of(name), train)
        labels = dataset.labels[rows]
        assert camp.n_train_rows == rows.size
        for cls, share in camp.class_freq.items():
            assert share == round(float(np.mean(labels == cls)), 4)
        j = dataset.columns.index("novaclient_GET_200")
        for cls in camp.classes:
            counts = dataset.X[rows[labels == cls], j]
            entry = camp.signature[cls].get("novaclient_GET_200")
            assert entry is not None
            assert entry[0] == round(float(np.mean(counts == 0)), 4)


def test_emission_counts_only_where_a_step_issues_the_event(shipped: Calibration) -> None:
    per_step = len(PHASE_STATES)
    for name, camp in shipped.campaigns.items():
        emitters = step_events(name)
        n = len(SCRIPTS[name]) * per_step
        assert set(camp.emission) <= set(script_events(name))
        assert set(camp.emission) == {e for e in script_events(name) if e in camp.columns_present}
        for event, counts in camp.emission.items():
            assert len(counts) == n and min(counts) >= 0.0
            allowed = np.repeat([event in step for step in emitters], per_step)
            assert not np.asarray(counts)[~allowed].any(), (name, event)
        for states in camp.class_states.values():
            shares = np.asarray(states).reshape(len(SCRIPTS[name]), per_step)
            assert (shares.sum(axis=1) <= 1.0 + 1e-3).all() and (shares >= 0).all()
        healthy = np.asarray(camp.class_states["no_failure"]).reshape(-1, per_step)
        asserted = [p.failure_class is not None for p in SCRIPTS[name]]
        seen_ok = (
            healthy[:, PHASE_STATES.index("completed")] + healthy[:, PHASE_STATES.index("degraded")]
        )
        assert np.allclose(seen_ok[asserted], 1.0)  # the client saw every asserted step succeed
        # a status poll is issued during every step, so the client may keep polling after a
        # failure; a step's own events come only from the steps whose chains list them
        for poll in POLL_EVENTS:
            assert all(poll in step for step in emitters)


@requires_data
def test_emission_reproduces_the_train_rows_healthy_counts(dataset, shipped: Calibration) -> None:
    # a healthy run completes every step: its counts come out near the healthy train mean (the
    # fit is a compromise over all classes, so not exactly: within 30% of the mean plus one)
    train, _ = split_rows(dataset, shipped.split)
    for name, camp in shipped.campaigns.items():
        rows = np.intersect1d(dataset.rows_of(name), train)
        healthy = rows[dataset.labels[rows] == "no_failure"]
        states = np.asarray(camp.class_states["no_failure"])
        for event, counts in camp.emission.items():
            mean = float(dataset.X[healthy, dataset.columns.index(event)].mean())
            fitted = float(states @ np.asarray(counts))
            assert abs(fitted - mean) <= 0.3 * (mean + 1.0), (name, event, fitted, mean)


def test_fit_emission_recovers_known_counts() -> None:
    # two steps x four end states; the classes' end states and the true counts are known
    def ends(first: str | None, second: str | None) -> np.ndarray:
        out = np.zeros(2 * len(PHASE_STATES))
        for step, state in enumerate((first, second)):
            if state is not None:
                out[step * len(PHASE_STATES) + PHASE_STATES.index(state)] = 1.0
        return out

    states = {
        "no_failure": ends("completed", "completed"),
        "network_failure": ends("failed", None),
        "volume_failure": ends("completed", "rejected"),
        "instance_failure": ends("rejected", None),
        "ssh_failure": ends("completed", "failed"),
        "cleanup_failure": ends(None, "completed"),
        "x_failure": ends("degraded", None),
        "y_failure": ends(None, "degraded"),
    }
    true = {"a": np.array([2, 1.5, 5, 0, 3, 0, 1, 0.5]), "b": np.array([0, 0, 0, 0, 4, 2, 0, 1])}
    labels = np.repeat(list(states), 3)
    x = np.array([[states[c] @ true["a"], states[c] @ true["b"]] for c in labels])
    emitters = (frozenset({"a"}), frozenset({"a", "b"}))
    got = fit_emission(x, labels, ["a", "b"], ["a", "b", "not-a-column"], states, emitters)
    assert set(got) == {"a", "b"}
    assert np.allclose(got["a"], true["a"], atol=1e-3)
    assert np.allclose(got["b"], true["b"], atol=1e-3)
    # a step that does not issue an event gets no count of it, whatever the data say
    got = fit_emission(x, labels, ["a", "b"], ["b"], states, (frozenset(), frozenset({"a"})))
    assert got["b"] == [0.0] * 8
    with pytest.raises(DatasetError, match="end-state shares"):
        fit_emission(x, labels, ["a", "b"], ["a"], states, (frozenset({"a"}),))


def test_class_states_weighs_sites_by_the_mix() -> None:
    from pase_gym.fidelity.experiments import Experiment

    def exp(site: str, label: str, outcomes: tuple[int, ...]) -> Experiment:
        return Experiment("STO", site, 0, 1, label, outcomes, (), (), (-1,) * len(outcomes))

    n = len(SCRIPTS["STO"])
    done = (-1,) * n
    failed_create = (1,) + (-2,) * (n - 1)
    rejected_create = (0,) + (-2,) * (n - 1)
    runs = {
        "none": [exp("none", "no_failure", done)],
        "a": [exp("a", "volume_failure", failed_create)],
        "b": [exp("b", "volume_failure", rejected_create)],
    }
    got = class_states(
        runs, {"none": 0.5, "a": 0.375, "b": 0.125}, ["no_failure", "volume_failure"]
    )
    create = got["volume_failure"].reshape(n, len(PHASE_STATES))[0]
    assert np.allclose(create, [0.0, 0.0, 0.75, 0.25])  # failed 3:1 rejected, as the mix weighs
    assert np.allclose(got["no_failure"].reshape(n, -1)[:, 0], 1.0)


# --------------------------------------------------------------------------------------------
# Fitted from the train side only
# --------------------------------------------------------------------------------------------


@requires_data
def test_changing_the_evaluation_rows_does_not_change_the_calibration(dataset) -> None:
    train, test = split_rows(dataset)
    base = fit_calibration(dataset, train, pilot=1)
    x = np.array(dataset.X)
    labels = np.array(dataset.labels)
    rng = np.random.default_rng(0)
    x[test] = rng.integers(0, 50, size=(test.size, x.shape[1]))
    labels[test] = rng.choice(np.array(CLASS_NAMES), size=test.size)
    scrambled = dataclasses.replace(dataset, X=x, labels=labels)
    assert fit_calibration(scrambled, train, pilot=1).to_json() == base.to_json()
    # ... while changing one train row does (the check is not vacuous)
    x2 = np.array(dataset.X)
    x2[train[0]] += 7
    changed = dataclasses.replace(dataset, X=x2)
    assert fit_calibration(changed, train, pilot=1).to_json() != base.to_json()


@requires_data
def test_check_split_refuses_another_split(dataset, shipped: Calibration) -> None:
    other = dataclasses.replace(shipped, split={**shipped.split, "seed": 1})
    with pytest.raises(DatasetError, match="regenerate"):
        check_split(other, dataset)


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------


def test_column_signature_on_known_counts() -> None:
    assert column_signature(np.array([0, 0, 0]), 2.0) is None
    p_zero, ratio, values = column_signature(np.array([0, 2, 2, 3]), 2.0)  # type: ignore[misc]
    assert p_zero == 0.25
    assert ratio == round(7 / 4 / 2.0, 3)
    assert values == [[2, round(2 / 3, 3)], [3, round(1 / 3, 3)]]
    assert column_signature(np.array([1]), 0.0)[1] is None  # type: ignore[index]


def test_fit_mixture_recovers_known_weights() -> None:
    shares = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]])
    target = np.array([0.2, 0.5, 0.3])  # = 0.2 * row0 + 0.2 * row1 + 0.6 * row2
    w = fit_mixture(shares, target, iterations=20000)
    assert np.allclose(w, [0.2, 0.2, 0.6], atol=1e-3)
    assert np.allclose(w @ shares, target, atol=1e-3)
    # identical sites keep equal weights
    w = fit_mixture(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5]))
    assert np.allclose(w, [0.25, 0.25, 0.5])
