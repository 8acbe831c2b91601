"""Tests of the simulated experiments (pase_gym.fidelity.experiments and .rows).

These need neither the data set nor the network: the experiments come from the simulator, and
the calibrated rows from the calibration file shipped inside the package.
"""

from __future__ import annotations

import numpy as np
import pytest

from pase_gym.datasets import DatasetError
from pase_gym.datasets.campaigns import DEFAULT_LABEL_MAP
from pase_gym.fidelity.calibration import load_calibration
from pase_gym.fidelity.experiments import (
    PHASE_STATES,
    labels_of,
    phase_states,
    run_experiment,
    simulate_campaign,
)
from pase_gym.fidelity.rows import calibrated_matrix, native_matrix
from pase_gym.fidelity.scripts import (
    BUG_FAULTS,
    BUG_ROLES,
    NO_FAULT,
    SCRIPTS,
    SITES,
    SSH_STEP_NAME,
    WINDOW,
    campaign_classes,
    phase_ticks,
    script_events,
)
from pase_gym.sim.faults import FAMILIES, FAULTS
from pase_gym.sim.signals import EVENT_NAMES


@pytest.fixture(scope="module")
def calibration():
    return load_calibration()


def test_sites_are_bugs_in_nova_cinder_neutron() -> None:
    assert SITES[0] == NO_FAULT
    assert len(SITES) == 1 + len(BUG_FAULTS) * len(BUG_ROLES)
    for fault in BUG_FAULTS:
        assert FAULTS[fault].family in ("process", "deploy")
        assert "train" in FAMILIES[FAULTS[fault].family].splits
    assert all(
        r.split("-")[0] in ("nova", "cinder", "neutron", "dhcp", "l3", "ovs") for r in BUG_ROLES
    )


@pytest.mark.parametrize("campaign", ["DEPL", "NET", "STO"])
def test_script_classes_are_the_campaigns_classes(campaign: str) -> None:
    assert set(campaign_classes(campaign)) == set(DEFAULT_LABEL_MAP[campaign].values())
    ticks = phase_ticks(campaign)
    assert len(ticks) == len(SCRIPTS[campaign])
    assert list(ticks) == sorted(ticks) and ticks[0] > 0 and ticks[-1] < WINDOW
    names = [p.name for p in SCRIPTS[campaign]]
    for i, phase in enumerate(SCRIPTS[campaign]):
        assert all(n in names[:i] for n in phase.needs), "a step may only need earlier ones"
        assert all(n in names[:i] for n in phase.cleans), "a clean-up deletes earlier resources"
        assert not phase.cleans or phase.teardown


def test_experiment_is_deterministic_for_a_seed() -> None:
    a = run_experiment("DEPL", "bad_deploy@nova-compute", 11)
    b = run_experiment("deployment", "bad_deploy@nova-compute", 11)
    assert a == b
    others = {run_experiment("DEPL", "bad_deploy@nova-compute", s) for s in range(12, 20)}
    assert len({(e.onset, e.outcomes, e.native) for e in others}) > 1


def test_simulate_campaign_prefix_and_determinism() -> None:
    short = simulate_campaign("NET", 6, seed=3)
    long = simulate_campaign("NET", 10, seed=3)
    assert long[:6] == short
    assert simulate_campaign("NET", 10, seed=3) == long


@pytest.mark.parametrize(
    ("campaign", "site", "onset", "expected"),
    [
        # a crash of nova-compute before the boot: the boot chain stops at the compute step
        ("DEPL", "process_crash@nova-compute", 5, "instance_failure"),
        ("STO", "process_crash@nova-compute", 5, "instance_failure"),
        # a cinder-volume fault: the volume chain stops at lvm_create_volume
        ("DEPL", "process_crash@cinder-volume", 5, "volume_failure"),
        ("STO", "config_drift@cinder-volume", 5, "volume_failure"),
        # neutron-server down before the network step: network creation fails
        ("DEPL", "process_crash@neutron-server", 5, "network_failure"),
        # the l3-agent down before it: the API answers, the agent never plugs the router, and
        # only the SSH check finds out; down after it: the instance does not answer either
        ("DEPL", "process_crash@l3-agent", 5, "ssh_failure"),
        ("DEPL", "process_crash@l3-agent", 40, "ssh_failure"),
        # cinder-api down only when the clean-up deletes the volume
        ("DEPL", "process_crash@cinder-api", 180, "cleanup_failure"),
        ("NET", "process_crash@neutron-server", 5, "network_failure"),
        # a Cinder bug does not touch NET's workload
        ("NET", "process_crash@cinder-scheduler", 5, "no_failure"),
        ("DEPL", NO_FAULT, None, "no_failure"),
        ("NET", NO_FAULT, None, "no_failure"),
    ],
)
def test_class_comes_from_the_simulated_outcome(
    campaign: str, site: str, onset: int | None, expected: str
) -> None:
    for seed in range(3):
        exp = run_experiment(campaign, site, seed, onset=onset)
        assert exp.label == expected, (seed, exp)
        failed = [o for o in exp.outcomes if o >= 0]
        assert bool(failed) == (expected != "no_failure") or campaign == "NET"


def test_a_failed_step_skips_what_needs_it_while_its_client_keeps_polling() -> None:
    exp = run_experiment("DEPL", "process_crash@nova-compute", 0, onset=5)
    names = [p.name for p in SCRIPTS["DEPL"]]
    boot, attach = names.index("boot"), names.index("volume-attach")
    assert exp.outcomes[boot] == 3  # compute_build_and_run_instance is the chain's 4th step
    assert exp.outcomes[attach] == -2  # nothing to attach to
    states = phase_states(exp)
    assert PHASE_STATES[int(states[boot].argmax())] == "failed"  # the API took the request
    assert not states[attach].any()
    cal = load_calibration()
    camp = cal.campaigns["DEPL"]
    col = {c: j for j, c in enumerate(cal.columns)}
    rows = calibrated_matrix([exp] * 1, cal)
    healthy = calibrated_matrix([run_experiment("DEPL", NO_FAULT, 0)], cal)[0]
    row = rows[0]
    # the boot's later events are missing or far below a healthy run's ...
    assert (
        row[col["compute_external_instance_event"]]
        < healthy[col["compute_external_instance_event"]] / 2
    )
    assert row[col["compute_attach_volume"]] == 0
    # ... while the client, holding a server that never becomes active, keeps polling it
    assert sum(camp.emission["novaclient_GET_200"]) > 0
    assert row[col["novaclient_GET_200"]] >= healthy[col["novaclient_GET_200"]] / 2


def test_a_clean_up_step_runs_only_when_there_is_something_to_delete() -> None:
    names = [p.name for p in SCRIPTS["DEPL"]]
    # neutron-server down from the start: the network is never created, the boot never runs
    exp = run_experiment("DEPL", "process_crash@neutron-server", 0, onset=1)
    assert exp.label == "network_failure"
    assert exp.outcomes[names.index("network")] == 0  # rejected at its first step
    assert exp.outcomes[names.index("boot")] == -2
    assert exp.outcomes[names.index("delete-server")] == -2  # no server to delete
    assert exp.outcomes[names.index("delete-network")] == -2  # no network either
    assert exp.outcomes[names.index("delete-volume")] != -2  # the volume exists
    healthy = run_experiment("DEPL", NO_FAULT, 0)
    teardown = [i for i, p in enumerate(SCRIPTS["DEPL"]) if p.teardown]
    assert all(healthy.outcomes[i] == -1 for i in teardown)


def test_same_fault_different_onset_different_class() -> None:
    early = run_experiment("DEPL", "process_crash@cinder-api", 1, onset=5).label
    late = run_experiment("DEPL", "process_crash@cinder-api", 1, onset=180).label
    assert (early, late) == ("volume_failure", "cleanup_failure")


def test_an_asynchronous_agent_fails_silently_until_the_ssh_check() -> None:
    names = [p.name for p in SCRIPTS["DEPL"]]
    exp = run_experiment("DEPL", "process_crash@l3-agent", 0, onset=5)
    network = names.index("network")
    assert exp.outcomes[network] == -1  # the client saw the network step succeed ...
    assert exp.silent[network] >= 0  # ... while the l3-agent dropped its part
    assert PHASE_STATES[int(phase_states(exp)[network].argmax())] == "degraded"
    assert exp.outcomes[names.index("boot")] == -1
    assert exp.outcomes[names.index(SSH_STEP_NAME)] == 0 and exp.label == "ssh_failure"
    assert not [k for k in run_experiment("DEPL", NO_FAULT, 0).silent if k >= 0]


def test_bad_inputs_raise() -> None:
    with pytest.raises(DatasetError, match="injection site"):
        run_experiment("DEPL", "process_crash", 0)
    with pytest.raises(DatasetError, match="injection site"):
        run_experiment("DEPL", "no_such_fault@nova-api", 0)
    with pytest.raises(DatasetError, match="campaign"):
        run_experiment("XYZ", NO_FAULT, 0)
    with pytest.raises(DatasetError, match="onset"):
        run_experiment("DEPL", NO_FAULT, 0, onset=WINDOW)
    with pytest.raises(DatasetError, match="positive weight"):
        simulate_campaign("DEPL", 3, mix={NO_FAULT: 0.0})


def test_rows_have_the_data_sets_shape_and_column_order(calibration) -> None:
    experiments = simulate_campaign(
        "DEPL", 12, seed=5, mix=calibration.campaigns["DEPL"].injection_mix
    )
    assert len(calibration.columns) == 112
    native = native_matrix(experiments, calibration.columns)
    assert native.shape == (12, 112) and native.dtype == np.int64
    emitted = np.array([c in EVENT_NAMES for c in calibration.columns])
    assert (native[:, ~emitted] == 0).all()  # columns the simulator never emits stay 0
    order = [calibration.columns.index(n) for n in EVENT_NAMES]
    assert (native[:, order] == np.array([e.native for e in experiments])).all()
    for mode in ("full", "scale"):
        rows = calibrated_matrix(experiments, calibration, mode=mode)
        assert rows.shape == (12, 112) and rows.dtype == np.int64
        assert (rows >= 0).all()
        absent = ~calibration.campaigns["DEPL"].present
        assert (rows[:, absent] == 0).all()
        assert (rows == calibrated_matrix(experiments, calibration, mode=mode)).all()
    assert labels_of(experiments).shape == (12,)


@pytest.mark.parametrize("campaign", ["DEPL", "NET", "STO"])
def test_calibrated_rows_are_absent_free_and_deterministic(calibration, campaign: str) -> None:
    mix = calibration.campaigns[campaign].injection_mix
    a = calibrated_matrix(simulate_campaign(campaign, 8, seed=1, mix=mix), calibration)
    b = calibrated_matrix(simulate_campaign(campaign, 8, seed=1, mix=mix), calibration)
    assert (a == b).all()
    assert (a[:, ~calibration.campaigns[campaign].present] == 0).all()
    # the script only emits events the campaign's tracer recorded (error variants aside)
    present = set(calibration.campaigns[campaign].columns_present)
    emitted = [e for e in script_events(campaign) if not e.endswith("_ERROR")]
    missing = [e for e in emitted if e not in present]
    assert campaign == "STO" or not missing
    assert set(missing) <= {
        "q-plugin_get_ports",
        "compute_reserve_block_device_name",
        "compute_attach_volume",
    }


def test_calibrated_mode_is_checked(calibration) -> None:
    exp = [run_experiment("DEPL", NO_FAULT, 0)]
    with pytest.raises(DatasetError, match="mode"):
        calibrated_matrix(exp, calibration, mode="bogus")  # type: ignore[arg-type]
