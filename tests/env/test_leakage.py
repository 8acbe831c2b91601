"""Nothing an agent sees names the injected fault or the scenario; only ground_truth() does:
no literal name, no synonym (a log line or alarm of one fault type alone), no cloud or
workload that tells the scenario before its onset."""

from __future__ import annotations

import gymnasium as gym
import pytest
from pase_env_helpers import (
    FAULT_SPELLINGS,
    INFO_KEYS_RESET,
    INFO_KEYS_STEP,
    WAIT10,
    text_values,
)

from pase_gym.env import SIM_ENV_IDS
from pase_gym.harness.hardness import fault_hardness, first_alarms
from pase_gym.scenarios import list_scenarios
from pase_gym.sim.faults import FAULT_NAMES
from pase_gym.sim.plan import parse_plan

SCENARIOS = [*list_scenarios("test"), *list_scenarios("unseen")]
SEEDS = (0, 1, 2, 3, 4)
STEPS = 6


def _leaks(text: str, scenario: str) -> list[str]:
    low = text.lower()
    return [word for word in (*FAULT_SPELLINGS, scenario.lower()) if word in low]


def test_the_spellings_cover_every_fault_type() -> None:
    assert len(FAULT_NAMES) >= 18
    assert "memory_leak" in FAULT_SPELLINGS and "memory leak" in FAULT_SPELLINGS
    assert _leaks("a Memory Leak on nova-api-1", "x") == ["memory leak"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_observation_info_and_render_never_name_the_fault(scenario: str) -> None:
    for start in ("normal", "incident"):
        env = gym.make("PASE-OpenStack-v4", scenario=scenario, start=start, render_mode="ansi")
        for seed in SEEDS:
            obs, info = env.reset(seed=seed)
            seen = [(obs, info, env.render())]
            for _ in range(STEPS):
                obs, _, _, _, info = env.step(WAIT10)
                seen.append((obs, info, env.render()))
            truth = env.unwrapped.ground_truth()
            assert truth and all(t["fault_type"] in FAULT_NAMES for t in truth)
            for obs, info, screen in seen:
                for key in obs:
                    assert not _leaks(key, scenario), key
                texts = [*text_values(info), screen]
                leaked = {w for t in texts for w in _leaks(t, scenario)}
                assert not leaked, f"{scenario} seed {seed}: {leaked} in {info['description']!r}"


@pytest.mark.parametrize("env_id", SIM_ENV_IDS)
def test_info_has_only_the_documented_keys(env_id: str) -> None:
    env = gym.make(env_id, start="incident")
    _, info = env.reset(seed=0)
    assert set(info) == INFO_KEYS_RESET
    for action in (WAIT10, "not a plan (", parse_plan("Diagnose(process_crash, compute-1)")):
        _, _, _, _, info = env.step(action)
        assert INFO_KEYS_RESET <= set(info) <= INFO_KEYS_STEP
        assert isinstance(info["description"], str)
        assert isinstance(info["tick"], int) and isinstance(info["slo_ok"], bool)
        assert isinstance(info["alarms"], int)
    # the agent-facing objects keep the truth on the evaluation side
    assert not any(hasattr(v, "ground_truth") for v in info.values())


def test_a_diagnosis_is_recorded_but_not_revealed() -> None:
    """Claiming the right fault type gets no confirmation in the observation or info."""
    right = gym.make("PASE-OpenStack-v4", scenario="memory-leak-test", start="incident")
    wrong = gym.make("PASE-OpenStack-v4", scenario="memory-leak-test", start="incident")
    right.reset(seed=0)
    wrong.reset(seed=0)
    node = right.unwrapped.ground_truth()[0]["node"]
    obs_r, rew_r, _, _, info_r = right.step(f"Diagnose(memory_leak, {node}); Wait(10)")
    obs_w, rew_w, _, _, info_w = wrong.step(f"Diagnose(disk_full, {node}); Wait(10)")
    assert rew_r == rew_w
    assert info_r["description"] == info_w["description"]
    for key in obs_r:
        assert (obs_r[key] == obs_w[key]).all()
    assert right.unwrapped.episode.report().diagnosis_correct is True
    assert wrong.unwrapped.episode.report().diagnosis_correct is False


READ_OFF_ONE_ALARM = {
    "disk_full",
    "memory_leak",
    "noisy_neighbour",
    "host_power_loss",
    "db_lock_contention",
    "queue_backlog",
}
"""Fault types an operator reads off one alarm on a real cloud too: a full disk (DiskFull),
a process whose memory climbs (HighMemory), an instance pegging its CPU (HighCPU on an
instance), a compute host that stopped answering (NodeDown on it), a database whose queries
wait (HighLatency on the database: lock waits are a DBA's first suspect), a broker whose
messages wait (HighLatency on the broker: a backlog)."""


def test_no_single_piece_of_the_first_alarm_names_a_fault_type() -> None:
    """Synonyms included: no log template, alarm or event is a giveaway (precision >= 0.9,
    recall >= 0.5) but for the fault types an operator reads off one alarm, at most a quarter
    of the test split's types, and no log template gives any type away but a full disk."""
    samples = first_alarms("test", episodes=240)
    hardness = fault_hardness(samples)
    given = {h.fault_type: h.giveaway for h in hardness if h.given_away}
    assert set(given) <= READ_OFF_ONE_ALARM, given
    assert len(given) <= len(hardness) // 4
    for fault, token in given.items():
        assert token is not None
        assert not token.token.startswith("log:") or fault == "disk_full", (fault, token)


def test_before_the_onset_every_test_scenario_shows_the_same_cloud() -> None:
    """The split's scenarios share one cloud and draw their workload per episode: for a given
    seed, what an agent sees before the onset (the inventory, the topology, the scene's cloud
    sentence) is the same whatever fault is coming."""
    for seed in SEEDS[:3]:
        seen: dict[str, set[object]] = {"cloud": set(), "nodes": set(), "edges": set()}
        for scenario in list_scenarios("test"):
            env = gym.make("PASE-OpenStack-v4", scenario=scenario)
            obs, info = env.reset(seed=seed)
            assert not env.unwrapped.current_episode().state.faults  # nothing has struck yet
            seen["cloud"].add(info["description"].split(" workload.")[0])
            seen["nodes"].add(obs["nodes"].tobytes() + obs["node_mask"].tobytes())
            seen["edges"].add(obs["edge_index"].tobytes() + obs["edge_type"].tobytes())
        assert all(len(v) == 1 for v in seen.values()), {k: len(v) for k, v in seen.items()}
