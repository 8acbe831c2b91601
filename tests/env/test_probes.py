"""Probes through the env: a probe's report reaches the agent once, in ``info["probes"]``, the
description and the ``probed`` rows; probing is safe, costs simulated time and nothing else;
the service view hides what a probe shows."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.describe import MAX_PROBE_CHARS
from pase_gym.env.spaces import PRIMITIVE_NAMES
from pase_gym.sim.primitives import PRIMITIVES, PROBES, Safety
from pase_gym.sim.probes import TRACE_REQUESTS
from pase_gym.sim.state import IND


def _incident(scenario: str = "process-hang-test", seed: int = 1) -> tuple[gym.Env, str]:
    env = gym.make("PASE-OpenStack-v4", scenario=scenario, start="incident")
    env.reset(seed=seed)
    return env, env.unwrapped.ground_truth()[0]["node"]


def test_probes_are_safe_cheap_primitives_of_the_table() -> None:
    assert {"Inspect", "QueryLogs", "Trace"} == PROBES
    # Trace accepts exactly the request types the simulator's event chains define
    assert PRIMITIVES["Trace"].params[0].choices == TRACE_REQUESTS
    for name in PROBES:
        spec = PRIMITIVES[name]
        assert spec.safety is Safety.SAFE and spec.duration > 0 and spec.cost <= 0.1
        assert name in PRIMITIVE_NAMES  # the structured action space offers them


def test_an_inspect_report_reaches_the_agent_once() -> None:
    env, root = _incident()
    obs, _, _, _, info = env.step(f"Inspect({root})")
    assert len(info["probes"]) == 1
    report = info["probes"][0]
    assert report["probe"] == "Inspect" and report["node"] == root
    assert any("state D" in line for line in report["lines"])
    assert f"Probe results: Inspect({root})" in info["description"]
    slot = info["slot_names"].index(root)
    assert obs["probed"][slot, -1] == 1.0
    assert np.count_nonzero(obs["probed"][:, -1]) == 1
    latency = report["metrics"][IND["latency"]]
    assert obs["probed"][slot, IND["latency"]] == pytest.approx(latency, abs=1e-3)
    assert info["harmed"] == [] and info["violations"] == []
    obs, _, _, _, info = env.step("Wait(10)")
    assert info["probes"] == [] and "Probe results" not in info["description"]
    assert not obs["probed"].any()


def test_the_service_view_hides_what_inspect_shows() -> None:
    env, root = _incident()
    obs, _, _, _, info = env.step(f"Inspect({root})")
    slot = info["slot_names"].index(root)
    own = np.asarray(info["probes"][0]["metrics"])
    assert not obs["metrics"][slot, [IND["cpu"], IND["memory"]]].any()  # hidden by default
    assert own[IND["memory"]] > 0  # the probe reads them
    # the hung replica's own latency is its service's mean in the default view, not its own
    assert obs["metrics"][slot, IND["latency"]] < own[IND["latency"]]
    node_view = gym.make(
        "PASE-OpenStack-v4", scenario="process-hang-test", start="incident", view="node"
    )
    shown, _ = node_view.reset(seed=1)
    assert shown["metrics"][slot, IND["memory"]] > 0  # the node view shows it without a probe
    with pytest.raises(ValueError, match="view must be one of"):
        gym.make("PASE-OpenStack-v4", view="processes")


def test_probing_costs_time_and_the_incident_penalty_but_harms_nothing() -> None:
    env, root = _incident()
    tick = env.unwrapped.current_episode().state.tick
    _, reward, _, _, info = env.step(f"Inspect({root}); QueryLogs({root}, 120)")
    assert info["tick"] - tick >= 5 + 2  # both probes, then the monitoring
    assert -2.0 < reward < 0.0  # the open incident's seconds and 0.15 of cost
    assert [p["probe"] for p in info["probes"]] == ["Inspect", "QueryLogs"]


def test_the_description_keeps_its_probe_section_short() -> None:
    env, _ = _incident("cascading-timeout-test", 0)
    names = [n for n in env.unwrapped.node_names() if not n.startswith(("instance", "volume"))]
    plan = "; ".join(f"Inspect({n})" for n in names[:12])
    _, _, _, _, info = env.step(plan)
    assert len(info["probes"]) == 12  # every report is in info
    section = info["description"].split("Probe results: ", 1)[1].split(". Recent logs: ")[0]
    assert len(section) <= MAX_PROBE_CHARS and section.endswith("...")


def test_a_trace_shows_where_requests_fail_not_why() -> None:
    # a crashed libvirt on one compute host: boots fail at that host's nova-compute, and the
    # trace names that replica (the hop), not libvirt (the cause)
    env = gym.make("PASE-OpenStack-Test-v4", start="incident")
    env.reset(seed=0)
    truth = env.unwrapped.ground_truth()[0]
    assert truth["node"].startswith("libvirt-")
    host = truth["node"].split("-")[-1]
    _, _, _, _, info = env.step("Trace(boot); Trace(network)")
    boot, network = info["probes"]
    assert boot["probe"] == "Trace" and boot["request"] == "boot" and "node" not in boot
    assert boot["lines"][0].startswith("boot requests completing: ")
    assert any(f"nova-compute-{host} error rate" in line for line in boot["lines"][2:])
    assert not any(truth["node"] in line for line in boot["lines"])
    assert network["lines"][2:] == ["no hop fails"]
    assert "Probe results: Trace(boot)" in info["description"]
    assert not info["harmed"] and not info["violations"]


def test_a_trace_changes_nothing_but_the_clock() -> None:
    def after(plan: str) -> tuple[np.ndarray, int]:
        env = gym.make("PASE-OpenStack-v4", scenario="cascading-timeout-test", start="incident")
        env.reset(seed=2)
        env.step(plan)
        state = env.unwrapped.current_episode().state
        return state.health.copy(), state.tick

    waited, tick = after("Wait(3)")
    traced, tick_traced = after("Trace(volume)")
    assert tick == tick_traced
    assert np.array_equal(waited, traced)


def test_a_trace_of_an_unknown_request_is_a_typed_plan_error() -> None:
    env, _ = _incident()
    _, reward, _, _, info = env.step("Trace(compute)")
    assert info["plan_error"] and "boot" in info["plan_error"] and "Trace" in info["plan_error"]
    assert reward < 0
