"""The verifier's view of a scene, and the symbolic layer's checks against the simulator."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from pase_gym.env.core import episode_of
from pase_gym.errors import WorldModelError
from pase_gym.sim.plan import Call, Plan, parse_plan
from pase_gym.sim.primitives import PRIMITIVES, ParamType
from pase_gym.sim.transition import check_call
from pase_gym.worldmodel.collect import Budget, candidate_plans
from pase_gym.worldmodel.features import CALL_DIM, SCENE_DIM, encode
from pase_gym.worldmodel.plans import MAX_CALLS
from pase_gym.worldmodel.symbolic import (
    INTERRUPTS,
    call_flags,
    call_violations,
    interrupted,
    plan_call_flags,
)
from pase_gym.worldmodel.verifier import SymbolicVerifier
from pase_gym.worldmodel.view import GROUPS, Seen

SCENARIOS = (
    "default",
    "process-hang-test",
    "host-power-loss-test",
    "cpu-memory-deadlock-unseen",
    "db-replica-failure-test",
)


def _scene(scenario: str = "default", seed: int = 0) -> tuple[Any, Seen]:
    env = gym.make("PASE-OpenStack-v4", scenario=scenario, start="incident")
    obs, info = env.reset(seed=seed)
    return env, Seen.of(obs, info)


def test_the_public_view_reads_the_topology_an_operator_knows() -> None:
    env, seen = _scene()
    topo = episode_of(env).topology
    assert seen.n == topo.n
    assert (seen.role == topo.role).all()
    assert topo.groups == GROUPS
    public = seen.public_state()
    assert (public.topo.group_of == topo.group_of).all()
    assert (public.topo.standby_capable == topo.standby_capable).all()
    assert public.topo.slots_per_host == topo.slots_per_host
    hosted = topo.host_of != np.arange(topo.n)
    shown = seen.host_of != np.arange(topo.n)
    # every runs_on edge is read; tenant networks sit on a network node without one
    assert (seen.host_of[shown] == topo.host_of[shown]).all()
    assert shown.sum() >= 0.9 * hosted.sum()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o, i: o.pop("metrics"), "missing metrics"),
        (lambda o, i: o.__setitem__("metrics", o["metrics"][:, :3]), "(N, 8)"),
        (lambda o, i: o.__setitem__("alarms", o["alarms"][:-1]), "alarms"),
        (lambda o, i: o["metrics"].__setitem__((0, 0), np.nan), "finite"),
        (lambda o, i: i.__setitem__("slot_names", ["a"] * 10_000), "row names"),
        (lambda o, i: i.pop("slot_names"), "slot_names"),
    ],
)
def test_a_malformed_observation_is_a_typed_error(change: Any, message: str) -> None:
    env = gym.make("PASE-OpenStack-v4", start="incident")
    obs, info = env.reset(seed=0)
    obs, info = {k: np.array(v) for k, v in obs.items()}, dict(info)
    change(obs, info)
    with pytest.raises(WorldModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Seen.of(obs, info)


def test_not_an_observation_at_all() -> None:
    with pytest.raises(WorldModelError, match="mapping of arrays"):
        Seen.checked([1, 2, 3], ["a"])  # type: ignore[arg-type]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_symbolic_layer_flags_only_what_truly_fails(scenario: str) -> None:
    """Soundness: a call flagged as violating on what is shown violates in the simulator too,
    a single call on the state as observed and a plan's calls along the plan (the public
    state follows the typed effects of the calls before)."""
    flagged_calls = flagged_plans = 0
    for seed in range(3):
        env, seen = _scene(scenario, seed)
        episode = episode_of(env)
        rng = np.random.default_rng(seed)
        for _, plan in candidate_plans(episode.state, seen, rng, Budget(4, 4, 4)):
            for call in plan.steps:
                public = call_violations(seen, call)
                if public:
                    flagged_calls += 1
                    assert check_call(episode.state, call), f"{call} flagged: {public}"
            if plan_call_flags(seen, plan.steps)[:, 0].any():
                flagged_plans += 1
                assert episode.simulate(plan).violations, f"{plan} flagged, violates nothing"
    assert flagged_calls > 0 and flagged_plans > 0, "nothing flagged: the check was not exercised"


def test_a_scale_out_provisions_what_a_later_call_uses() -> None:
    _env, seen = _scene("host-power-loss-test")
    spare = next(
        seen.names[i]
        for i in range(seen.n)
        if seen.names[i].startswith("compute-") and not seen.active[i]
    )
    instance = next(n for n in seen.names if n.startswith("instance-"))
    alone = plan_call_flags(seen, (Call("Migrate", (instance, spare)),))
    after = plan_call_flags(
        seen, (Call("ScaleOut", ("compute", 1)), Call("Migrate", (instance, spare)))
    )
    assert alone[0, 0] == 1.0  # the spare host is not provisioned yet
    assert after[1, 0] == 0.0


def test_visible_violations_are_flagged() -> None:
    _, seen = _scene()
    host = next(n for n in seen.names if n.startswith("compute-"))
    for text in (f"Restart({host})", "Restart(no-such-node)", "ScaleOut(mysql, 1)"):
        call = parse_plan(text).steps[0]
        assert call_violations(seen, call), text
        assert call_flags(seen, call)[0] == 1.0


def test_the_interrupts_table_is_the_transition_s() -> None:
    """On a cloud before its fault strikes, a call harms a healthy node exactly when the
    table says the call interrupts its target."""
    env = gym.make("PASE-OpenStack-v4", start="normal")
    obs, info = env.reset(seed=0)
    seen = Seen.of(obs, info)
    episode = episode_of(env)
    checked: dict[str, int] = {}
    for name, spec in PRIMITIVES.items():
        if name in ("Wait",) or not spec.params:
            continue
        for row in np.flatnonzero(seen.looks_healthy):
            if checked.get(name, 0) >= 4:
                break
            args: list[Any] = []
            for param in spec.params:
                if param.type is ParamType.NODE:
                    args.append(seen.names[int(row)] if not args else _peer(seen, row))
                elif param.type is ParamType.GROUP:
                    args.append(GROUPS[9])  # nova-api: scalable
                elif param.type is ParamType.INT:
                    args.append(param.lo if name != "Throttle" else 50)
                else:
                    args.append(param.choices[0])
            call = Call(name, tuple(args))
            if check_call(episode.state, call):
                continue
            prediction = episode.simulate(Plan((call,)))
            rows = interrupted(seen, call)
            expected = bool(rows.size) and bool(seen.looks_healthy[rows].any())
            assert bool(prediction.harmed) == expected, (call, prediction.harmed)
            checked[name] = checked.get(name, 0) + 1
    assert {"Restart", "KillProcess", "Isolate", "Drain", "ScaleIn", "FlushQueue"} <= set(checked)
    assert {"Rollback", "CleanDisk", "ResizeResource", "Inspect", "Failover"} <= set(checked)
    assert set(INTERRUPTS) <= set(checked) | {"Migrate", "Throttle"}


def _peer(seen: Seen, row: int) -> str:
    same = np.flatnonzero((seen.role == seen.role[row]) & seen.active)
    others = same[same != row]
    return seen.names[int(others[0])] if others.size else seen.names[int(row)]


def test_encoding_shapes_and_errors() -> None:
    _, seen = _scene()
    batch = encode([seen, seen], ["Restart(nova-api-1); Wait(10)", Plan(())])
    assert batch.scene.shape == (2, SCENE_DIM)
    assert batch.calls.shape == (2, 2, CALL_DIM)
    assert batch.mask.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    with pytest.raises(WorldModelError, match="one observation per plan"):
        encode([seen], ["Wait(10)", "Wait(10)"])
    with pytest.raises(WorldModelError, match="plan:"):
        encode([seen], ["Reboot(nova-api-1)"])
    with pytest.raises(WorldModelError, match=f"at most {MAX_CALLS}"):
        encode([seen], ["; ".join(["Wait(1)"] * (MAX_CALLS + 1))])


def test_symbolic_verifier_ranks_a_visible_violation_below_the_runbook() -> None:
    from pase_gym.sim.oracle import oracle_plan

    env, seen = _scene("process-crash-test")
    runbook = Plan(oracle_plan(episode_of(env).state).steps)
    verifier = SymbolicVerifier()
    scores = verifier.score([seen, seen], [runbook, "Restart(no-such-node)"], unknown="veto")
    assert scores[0] > scores[1]
