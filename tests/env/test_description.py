"""``info["description"]``: the scene description D_t that language-model agents read."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from pase_env_helpers import WAIT10

from pase_gym.env.describe import MAX_PROBE_CHARS
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.signals import ALARM_RULES
from pase_gym.wrappers import DiscretePlanAction

# five log lines in the components' own wording take up to ~1,000 of them; probe reports up to
# MAX_PROBE_CHARS more
MAX_CHARS = 2400 + MAX_PROBE_CHARS + len(" Probe results: .")
ALL_MET = "All service level objectives are met"
SHOWN = 6  # the description details the most alarmed nodes, up to this many
ALARM = "(?:" + "|".join(rule[3] for rule in ALARM_RULES) + ") "


def _alarmed(env: gym.Env, obs: dict[str, np.ndarray]) -> list[str]:
    state = env.unwrapped.episode.state
    return [state.name(int(i)) for i in np.flatnonzero(obs["alarms"].any(axis=1))]


@pytest.mark.parametrize("env_id", ["PASE-OpenStack-v4", "PASE-OpenStack-Tiny-v4"])
def test_description_states_the_tick(env_id: str) -> None:
    env = gym.make(env_id, start="incident")
    _, info = env.reset(seed=0)
    assert info["description"].startswith(f"t={info['tick']}s.")
    for _ in range(3):
        _, _, _, _, info = env.step(WAIT10)
        assert info["description"].startswith(f"t={info['tick']}s.")


@pytest.mark.parametrize("env_id", ["PASE-OpenStack-v4", "PASE-OpenStack-Tiny-v4"])
@pytest.mark.parametrize("seed", range(4))
def test_description_names_alarmed_nodes_and_their_hosts(env_id: str, seed: int) -> None:
    env = gym.make(env_id, start="incident")
    obs, info = env.reset(seed=seed)
    state = env.unwrapped.episode.state
    for _ in range(3):
        text = info["description"]
        alarmed = _alarmed(env, obs)
        assert info["alarms"] == int(obs["alarms"].sum())
        if alarmed:
            assert f"Alarms on {len(alarmed)} node(s)" in text
            # "nova-api-2: HighErrorRate 0.91, ..." for the most alarmed nodes
            named = [n for n in alarmed if re.search(rf"(?<![\w-]){re.escape(n)}: {ALARM}", text)]
            assert len(named) >= min(SHOWN, len(alarmed)), (alarmed, text)
            for name in named:
                host = state.name(int(state.host_of[state.topo.index[name]]))
                where = "" if host == name else f" on {re.escape(host)}"
                # "nova-api-2 (nova-api on controller-2; depends on ...)"
                context = rf"(?<![\w-]){re.escape(name)} \([\w-]+{where}[;)]"
                assert re.search(context, text), (name, host, text)
        else:
            assert "Alarms on" not in text
        obs, _, _, _, info = env.step(WAIT10)


@pytest.mark.parametrize("env_id", ["PASE-OpenStack-v4", "PASE-OpenStack-Tiny-v4"])
def test_description_says_all_slos_are_met_before_onset(env_id: str) -> None:
    env = gym.make(env_id)  # start="normal": the fault has not struck yet
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        onset = env.unwrapped.episode.onset
        assert info["tick"] < onset
        assert info["slo_ok"] and not obs["alarms"].any()
        assert ALL_MET in info["description"]
        assert "violate" not in info["description"]


def test_description_stays_short_on_the_default_cloud() -> None:
    env = DiscretePlanAction(gym.make("PASE-OpenStack-v4", start="incident"))
    rng = np.random.default_rng(0)
    longest = 0
    for seed in range(6):
        _, info = env.reset(seed=seed)
        longest = max(longest, len(info["description"]))
        for _ in range(6):  # random legal actions: they break things and raise many alarms
            legal = np.flatnonzero(env.action_masks())
            _, _, terminated, truncated, info = env.step(int(rng.choice(legal)))
            longest = max(longest, len(info["description"]))
            if terminated or truncated:
                break
    assert 0 < longest <= MAX_CHARS


def _body(text: str) -> str:
    """The description without its leading ``t=...s.`` clock."""
    return text.split(". ", 1)[1]


def test_description_changes_when_the_incident_changes() -> None:
    env = gym.make("PASE-OpenStack-v4")
    _, info = env.reset(seed=0)
    calm = info["description"]
    while info["slo_ok"]:  # wait for the fault to strike
        _, _, _, _, info = env.step(WAIT10)
    struck = info["description"]
    assert ALL_MET not in struck and "violate their SLO" in struck
    assert _body(struck) != _body(calm)
    # the oracle clears the fault: the description goes back to calm
    _, _, terminated, truncated, info = env.step(oracle_plan(env.unwrapped.episode.state))
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(WAIT10)
    assert terminated
    assert ALL_MET in info["description"]
    assert _body(info["description"]) != _body(struck)


def test_different_incidents_have_different_descriptions() -> None:
    env = gym.make("PASE-OpenStack-v4", start="incident")
    bodies: dict[str, str] = {}
    for seed in range(6):
        _, info = env.reset(seed=seed)
        fault = env.unwrapped.ground_truth()[0]
        bodies[f"{fault['fault_type']}@{fault['node']}"] = _body(info["description"])
    assert len(bodies) >= 3
    assert len(set(bodies.values())) == len(bodies)
