"""Observable signals: no ground truth leaks, the event vocabulary is the data set's, faults
show as omitted events and as alarms on the faulty node."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from pase_gym.episode import Episode, run_oracle
from pase_gym.scenarios import ScenarioSpec, list_scenarios, load_scenario
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.observe import PROCESS_DETAIL, SERVICE_LEVEL, observe, service_view
from pase_gym.sim.roles import Kind
from pase_gym.sim.signals import ALARM_RULES, EVENT_CHAINS, EVENT_INDEX, EVENT_NAMES, Observation
from pase_gym.sim.state import IND

SCENARIOS = list_scenarios()
ALARMS = {rule[3] for rule in ALARM_RULES}
FAULT_SPELLINGS = [
    spelling
    for name in FAULT_NAMES
    for spelling in (name, name.replace("_", "-"), name.replace("_", " "))
]
BUILD = EVENT_INDEX["compute_build_and_run_instance"]
UPSTREAM_OF_COMPUTE = (
    "novaclient_POST_202",
    "conductor_schedule_and_build_instances",
    "scheduler_select_destinations",
)


def leaked_fault_names(obs: Observation) -> list[str]:
    text = "\n".join(
        [str(line) for line in obs.logs] + [f"{node} {alarm}" for node, alarm, _ in obs.alarms]
    ).lower()
    return [s for s in FAULT_SPELLINGS if s in text]


def one_fault(fault_type: str, role: str, nodes: str = "tiny", onset: int = 300) -> ScenarioSpec:
    return load_scenario(
        {
            "name": f"{fault_type}-on-{role}",
            "split": "train",
            "topology": {"nodes": nodes, "seed": 0},
            "faults": [{"type": fault_type, "role": role, "onset": onset}],
            "budget": 2000,
        }
    )


def event_windows(spec: ScenarioSpec, ticks: int = 280) -> tuple[np.ndarray, ...]:
    """Expected and observed event counts over ``ticks`` before and after the onset."""
    episode = Episode(spec, 0)
    episode.reset(skip_to_incident=False)
    onset = spec.faults[0].onset
    assert isinstance(onset, int)
    episode.wait(onset - ticks - 1)
    episode.observe()  # start a fresh count
    episode.wait(ticks)
    expected_before = episode.state.event_counts.copy()
    before = episode.observe().events
    episode.wait(20)  # the fault strikes and settles
    assert episode.state.faults and not episode.state.slo_ok
    episode.observe()
    episode.wait(ticks)
    expected_after = episode.state.event_counts.copy()
    after = episode.observe().events
    return expected_before, before, expected_after, after


# --- no ground truth ------------------------------------------------------------------------


def test_an_observation_has_only_signal_fields() -> None:
    names = {f.name for f in dataclasses.fields(Observation)}
    assert names == {"tick", "metrics", "window", "alarms", "logs", "events", "probes"}


@pytest.mark.parametrize("name", SCENARIOS)
def test_observations_carry_no_ground_truth(name: str) -> None:
    episode = Episode(name, 0)
    seen = [episode.reset()]
    first = sorted(episode.ground_truth(), key=lambda f: f["onset"])[0]
    onset_lines = [
        line
        for line in episode.state.log
        if line.node == first["node"] and line.tick == first["onset"]
    ]
    run_oracle(episode)
    seen.append(episode.observe())
    for obs in seen:
        assert set(vars(obs)) == {"tick", "metrics", "window", "alarms", "logs", "events", "probes"}
        for array in (obs.metrics, obs.window, obs.events):
            assert isinstance(array, np.ndarray) and array.dtype.kind == "f"
        assert obs.metrics.shape == (episode.topology.n, 8)
        assert {alarm for _, alarm, _ in obs.alarms} <= ALARMS
        assert {node for node, _, _ in obs.alarms} <= set(episode.topology.names)
        assert leaked_fault_names(obs) == []
    assert onset_lines, "the fault should have written its onset line"


# --- events ---------------------------------------------------------------------------------


def test_event_vocabulary_is_the_data_sets() -> None:
    for name in (
        "novaclient_POST_202",
        "novaclient_GET_200",
        "novaclient_DELETE_204",
        "compute_build_and_run_instance",
        "scheduler_select_destinations",
        "conductor_schedule_and_build_instances",
        "neutronclient_POST_201",
        "cinderclient_POST_202",
        "q-plugin_update_device_list",
    ):
        assert name in EVENT_NAMES, name
    assert len(set(EVENT_NAMES)) == len(EVENT_NAMES)
    rest = re.compile(r"^(nova|cinder|neutron)client_(GET|POST|PUT|DELETE)_[245]\d\d$")
    for name in EVENT_NAMES:
        assert re.fullmatch(r"[a-z0-9][A-Za-z0-9_.@-]*", name), name
        if "client_" in name:
            assert rest.match(name), name
    for chain in EVENT_CHAINS.values():
        for name, _, _, error in chain:
            assert name in EVENT_NAMES
            if error is not None:
                assert error.endswith(("_500", "_ERROR")), error
                assert error in EVENT_NAMES


def test_events_are_counts_over_the_vocabulary_and_reset_on_observe() -> None:
    episode = Episode("process-crash-test", 0)
    episode.reset(skip_to_incident=False)
    episode.wait(15)
    obs = episode.observe()
    assert obs.events.shape == (len(EVENT_NAMES),)
    assert np.all(obs.events >= 0) and np.array_equal(obs.events, np.round(obs.events))
    assert obs.events[EVENT_INDEX["novaclient_POST_202"]] > 0
    assert not episode.observe().events.any()  # each observation carries the new events only


def test_a_healthy_cloud_emits_no_error_events() -> None:
    episode = Episode("process-crash-test", 0)
    episode.reset(skip_to_incident=False)
    episode.wait(18)  # before the onset
    assert not episode.state.faults
    errors = [i for i, name in enumerate(EVENT_NAMES) if name.endswith(("_500", "_ERROR"))]
    assert errors
    assert not episode.observe().events[errors].any()


def test_a_broken_nova_compute_omits_its_build_events() -> None:
    exp_before, before, exp_after, after = event_windows(one_fault("process_hang", "nova-compute"))
    assert exp_before[BUILD] > 2 and before[BUILD] > 0
    assert exp_after[BUILD] < 0.05 * exp_before[BUILD]
    assert after[BUILD] == 0
    for name in UPSTREAM_OF_COMPUTE:  # the requests still get that far
        i = EVENT_INDEX[name]
        assert exp_after[i] == pytest.approx(exp_before[i], rel=0.1), name


def test_one_failing_nova_compute_of_many_thins_the_build_events() -> None:
    exp_before, _, exp_after, _ = event_windows(
        one_fault("config_drift", "nova-compute", nodes="small")
    )
    assert exp_after[BUILD] < 0.97 * exp_before[BUILD]
    assert exp_after[BUILD] > 0.5 * exp_before[BUILD]


def test_a_failing_nova_api_emits_error_variants_and_omits_the_rest() -> None:
    exp_before, _, exp_after, after = event_windows(
        one_fault("config_drift", "nova-api", nodes="small")
    )
    err = EVENT_INDEX["novaclient_POST_500"]
    assert exp_before[err] == 0
    assert exp_after[err] > 0 and after[err] > 0
    assert exp_after[BUILD] < 0.9 * exp_before[BUILD]


def test_the_client_keeps_polling_what_the_api_accepted() -> None:
    # a hung nova-compute loses the build and every later event of a boot, but the client
    # still polls the servers the API accepted (until its timeout), as the real clients do
    exp_before, _, exp_after, after = event_windows(one_fault("process_hang", "nova-compute"))
    poll = EVENT_INDEX["novaclient_GET_200"]
    late = EVENT_INDEX["compute_external_instance_event"]  # a chain step after the build
    assert exp_after[late] < 0.05 * exp_before[late]
    assert exp_after[poll] == pytest.approx(exp_before[poll], rel=0.1)
    assert after[poll] > 0


def test_a_failing_api_loses_the_polls_of_what_it_rejected() -> None:
    exp_before, _, exp_after, _ = event_windows(
        one_fault("config_drift", "nova-api", nodes="small")
    )
    poll = EVENT_INDEX["novaclient_GET_200"]
    assert exp_after[poll] < 0.9 * exp_before[poll]


def test_the_event_counts_noise_never_moves_the_dynamics() -> None:
    # the event stream's Poisson noise has its own stream: scaling every expected count (as a
    # change to what the stream counts would) leaves the health trajectory bit for bit alike
    def trajectory(scale: float) -> np.ndarray:
        episode = Episode("process-crash-test", 3)
        episode.reset()
        rows = []
        for _ in range(6):
            episode.state.event_counts = episode.state.event_counts * scale
            rows.append(episode.observe().metrics.copy())
            episode.wait(10)
        return np.stack(rows)

    assert np.array_equal(trajectory(1.0), trajectory(7.3))


def test_a_crashed_only_nova_compute_omits_its_build_events() -> None:
    exp_before, _, exp_after, _ = event_windows(one_fault("process_crash", "nova-compute"))
    assert exp_before[BUILD] > 2
    assert exp_after[BUILD] < 0.05 * exp_before[BUILD]


# --- alarms ---------------------------------------------------------------------------------


def test_a_healthy_cloud_raises_no_alarms() -> None:
    for name in ("tiny-mix-train", "process-crash-test"):
        episode = Episode(name, 0)
        assert episode.reset(skip_to_incident=False).alarms == []
        episode.wait(9)  # every onset of these scenarios is later
        assert not episode.state.faults
        assert episode.observe().alarms == []


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", SCENARIOS)
def test_alarms_fire_on_the_faulty_node(name: str, seed: int) -> None:
    episode = Episode(name, seed)
    obs = episode.reset()
    state = episode.state
    fault = state.faults[0]
    watched = {state.name(fault.node)}
    if episode.topology.kind[fault.node] == Kind.HOST:  # a host's alarms show on what it runs
        watched |= {state.name(int(i)) for i in episode.topology.hosted_on(fault.node)}
    for _ in range(12):
        if any(node in watched for node, _, _ in obs.alarms):
            break
        episode.wait(5)
        obs = episode.observe()
    hits = [a for a in obs.alarms if a[0] in watched]
    assert hits, f"no alarm on {state.name(fault.node)} within 60 ticks ({obs.alarms[:5]})"


def test_alarms_clear_after_recovery() -> None:
    episode = Episode("process-crash-test", 0)
    assert episode.reset().alarms
    run_oracle(episode)
    assert episode.recovered
    assert episode.observe().alarms == []


# --- metric window --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["process-crash-test", "tiny-mix-train"])
def test_the_window_ends_with_the_current_evaluation_after_the_incident(name: str) -> None:
    episode = Episode(name, 0)
    obs = episode.reset()
    assert obs.window.shape == (8, episode.topology.n, 8)
    assert np.array_equal(obs.window[-1], service_view(episode.state, episode.state.health))
    assert np.abs(obs.metrics - obs.window[-1]).max() < 0.1  # measurement noise only
    for _ in range(8):  # eight monitoring steps fill the window, oldest first
        episode.wait(5)
    obs = episode.observe()
    assert all(obs.window[i].any() for i in range(8))
    assert episode.state.history_ticks[-8:] == list(range(obs.tick - 35, obs.tick + 1, 5))
    assert np.array_equal(obs.window[-1], service_view(episode.state, episode.state.health))


def test_the_first_observation_window_holds_the_current_evaluation() -> None:
    episode = Episode("process-crash-test", 0)
    obs = episode.reset(skip_to_incident=False)
    assert obs.metrics.any()
    assert np.array_equal(obs.window[-1], service_view(episode.state, episode.state.health))


# --- the service view (env v3's default) ------------------------------------------------------


def test_the_service_view_shows_services_not_processes() -> None:
    """A hung replica raises its whole service's latency, not its own; no process's resource
    use shows; its own health check (availability) and the hosts' rows stay its own."""
    episode = Episode("process-hang-test", 1)  # keystone-3 hangs, one of three replicas
    episode.reset()
    state, t = episode.state, episode.topology
    root = t.index[episode.ground_truth()[0]["node"]]
    shown = service_view(state, state.health)
    pool = np.flatnonzero((t.pool == t.pool[root]) & state.active & t.is_process)
    assert pool.size >= 2
    latency = list(SERVICE_LEVEL).index(IND["latency"])
    assert SERVICE_LEVEL[latency] == IND["latency"]
    for col in SERVICE_LEVEL:  # every replica shows its service's (weighted) mean
        assert np.allclose(shown[pool, col], shown[root, col])
        weights = state.route_w[pool]
        mean = np.sum(weights * state.health[pool, col]) / np.sum(weights)
        assert shown[root, col] == pytest.approx(mean)
    assert shown[root, IND["latency"]] < state.health[root, IND["latency"]]
    assert not shown[np.ix_(t.is_process, PROCESS_DETAIL)].any()
    assert np.array_equal(shown[:, IND["availability"]], state.health[:, IND["availability"]])
    hosts = t.is_host
    assert np.array_equal(shown[hosts], state.health[hosts])
    with pytest.raises(ValueError, match="view must be one of"):
        observe(state, np.random.default_rng(0), view="process")


def test_the_node_view_shows_every_process() -> None:
    episode = Episode("process-hang-test", 0)
    episode.reset()
    obs = observe(episode.state, np.random.default_rng(0), view="node", noise=0.0)
    assert np.array_equal(obs.metrics, episode.state.health)
