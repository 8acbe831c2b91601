"""The primitive table is the one source: effects, masks and the flat action space follow it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the env ids)
from pase_gym.env.core import episode_of
from pase_gym.episode import Episode
from pase_gym.sim.observe import observe
from pase_gym.sim.plan import Call, parse_plan
from pase_gym.sim.primitives import PRIMITIVES, PROBES, ParamType
from pase_gym.sim.transition import EFFECTS, check_call, execute_call
from pase_gym.wrappers import DiscretePlanAction, action_table


def test_every_primitive_has_an_effect_and_every_effect_a_primitive() -> None:
    assert set(EFFECTS) == set(PRIMITIVES)


def test_the_discrete_table_offers_every_primitive_it_can_fill() -> None:
    node, group, waits = action_table()
    offered = {name for name, _ in (*node, *group)}
    # every primitive aimed at a node or a group whose extra parameters have presets (or a
    # picker) is offered; Wait has its own block; Trace aims at a request type, not a node
    assert offered == set(PRIMITIVES) - {"Wait", "Reroute", "Trace"}
    assert waits == PRIMITIVES["Wait"].params[0].presets
    for name, extra in (*node, *group):
        params = [p for p in PRIMITIVES[name].params[1:] if p.type is not ParamType.NODE]
        assert [v in p.presets for p, v in zip(params, extra, strict=True)] == [True] * len(extra)


def _state_arrays(state: object) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in vars(state).items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("name", sorted(set(PRIMITIVES) - {"Wait", "Reroute"} - PROBES))
def test_each_primitive_changes_the_state_where_its_preconditions_hold(name: str) -> None:
    # the all-in-one tiny cloud has one compute host: nowhere to migrate to
    env_id = "PASE-OpenStack-v4" if name == "Migrate" else "PASE-OpenStack-Tiny-v4"
    env = DiscretePlanAction(gym.make(env_id))
    env.reset(seed=0)
    state = episode_of(env).state
    mask = env.action_masks()
    candidates = [
        a
        for a in np.flatnonzero(mask)
        if env.decode(int(a)).steps[0].name == name
        and not check_call(state, env.decode(int(a)).steps[0])
    ]
    assert candidates, f"no slot of the tiny cloud lets {name} run"
    call: Call = env.decode(int(candidates[0])).steps[0]
    copy = state.copy()
    before = _state_arrays(copy)
    heard: list[str] = []

    class Listener:  # a fault that only listens
        active = True
        node = 0
        onset = 0

        def on_effect(self, state: object, effect: str, node: int, **kw: object) -> None:
            heard.append(effect)

        def __getattr__(self, attr: str) -> object:  # the rest of the fault interface: no-ops
            return lambda *a, **k: None

    copy.faults.append(Listener())  # type: ignore[arg-type]
    outcome = execute_call(copy, call, np.random.default_rng(0))
    after = _state_arrays(copy)
    changed = [k for k in before if k in after and not np.array_equal(before[k], after[k])]
    assert outcome.executed
    assert heard, f"{call} told the faults nothing"
    assert changed or name in ("Rollback", "RenewCertificate", "FlushCache"), (
        f"{call} changed nothing"
    )


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_a_probe_changes_nothing_but_the_clock_and_reports(probe: str) -> None:
    """A probe is read-only: the cloud runs exactly as under a Wait of the same length (no
    random draw, no effect on a fault), and its report comes with the next observation."""
    episode = Episode("process-hang-test", 1)
    episode.reset()
    root = episode.ground_truth()[0]["node"]
    text = {"Inspect": f"Inspect({root})", "QueryLogs": f"QueryLogs({root}, 60)"}
    call = parse_plan(text.get(probe, "Trace(boot)"))
    probed, waited = episode.state.copy(), episode.state.copy()
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    ticks = execute_call(probed, call.steps[0], rng_a).end - episode.state.tick
    execute_call(waited, parse_plan(f"Wait({ticks})").steps[0], rng_b)
    a, b = _state_arrays(probed), _state_arrays(waited)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert rng_a.random() == rng_b.random()
    assert [f.phase for f in probed.faults] == [f.phase for f in waited.faults]
    assert len(probed.probes) == 1 and not waited.probes
    report = probed.probes[0]
    assert report.probe == probe and report.lines
    assert (report.request, report.node) == (("boot", "") if probe == "Trace" else (None, root))
    obs = observe(probed, np.random.default_rng(0))
    assert obs.probes == [report] and probed.probes == []  # handed out once


def test_inspect_reports_the_faulty_node_and_nothing_on_a_healthy_one() -> None:
    episode = Episode("process-hang-test", 1)
    episode.reset()
    root = episode.ground_truth()[0]["node"]
    healthy = next(n for n in episode.topology.names if n.startswith("glance-api"))
    episode.step(f"Inspect({root}); Inspect({healthy})")
    faulty, fine = episode.observe().probes
    assert any("state D" in line for line in faulty.lines)
    assert not any("state D" in line for line in fine.lines)
    assert faulty.metrics is not None and faulty.metrics.shape == (8,)
    assert any(line.startswith("replicas as their clients see them") for line in faulty.lines)
