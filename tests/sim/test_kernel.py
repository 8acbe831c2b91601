"""The fused kernel (numba) gives the numpy path's results to the bit, on every built-in
scenario's states; the path is chosen as documented."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import pase_gym  # noqa: F401  (registers the ids)
import pase_gym.sim.dynamics as dynamics
import pase_gym.sim.kernel as kernel_module
from pase_gym.episode import Episode
from pase_gym.scenarios import list_scenarios
from pase_gym.sim.kernel import KERNEL_ENV, KernelError, fused_kernel
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.state import SimState

OUTPUTS = ("err", "lat", "load", "util", "retry_err", "role_err", "works", "slo_ok_nodes")
DERIVED = ("alive", "cap_eff", "cfg_cap", "host_alive", "reach_ok", "routable", "works")


@pytest.fixture(scope="module")
def fused() -> Any:
    pytest.importorskip("numba")
    kernel_module._reset_choice()
    kernel = fused_kernel()
    if kernel is None:
        pytest.skip("the fused kernel is off here (PASE_GYM_KERNEL, or its self-check failed)")
    return kernel


def _states() -> list[SimState]:
    """States of every built-in scenario: before, during and after its incident."""
    out = []
    for name in list_scenarios():
        episode = Episode(name, 1)
        episode.reset()
        out.append(episode.state.copy())
        episode.step(oracle_plan(episode.state))
        out.append(episode.state.copy())
        episode.wait(30)
        out.append(episode.state.copy())
    return out


def _evaluate(state: SimState, kernel: Any, seed: int | None) -> SimState:
    copy = state.copy()
    rng = None if seed is None else np.random.default_rng(seed)
    original = dynamics.fused_kernel
    dynamics.fused_kernel = lambda: kernel  # type: ignore[assignment]
    try:
        dynamics.evaluate(copy, rng)
    finally:
        dynamics.fused_kernel = original  # type: ignore[assignment]
    return copy


@pytest.mark.parametrize("seed", [None, 3])
def test_the_fused_kernel_is_the_numpy_path_to_the_bit(fused: Any, seed: int | None) -> None:
    states = _states()
    assert len(states) > 60
    incidents = 0
    for k, state in enumerate(states):
        a, b = _evaluate(state, None, seed), _evaluate(state, fused, seed)
        for key in OUTPUTS:
            x, y = getattr(a, key), getattr(b, key)
            assert x.dtype == y.dtype and np.array_equal(x, y), (k, key)
        for key in DERIVED:
            assert np.array_equal(getattr(a.derived, key), getattr(b.derived, key)), (k, key)
        assert a.slo_ok is b.slo_ok and isinstance(b.slo_ok, bool), k
        assert np.array_equal(a.health, b.health) and len(a.history) == len(b.history), k
        incidents += not a.slo_ok
    assert incidents > 10  # the states include broken clouds, not only healthy ones


def test_an_env_runs_the_same_trajectory_on_either_path(
    fused: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> list[bytes]:
        env = gym.make("PASE-OpenStack-Train-v4")
        obs, _ = env.reset(seed=2)
        seen = [obs["metrics"].tobytes()]
        for _ in range(6):
            state = env.unwrapped.current_episode().state  # type: ignore[attr-defined]
            obs, reward, terminated, truncated, _ = env.step(oracle_plan(state) or "Wait(10)")
            seen += [
                obs["metrics"].tobytes(),
                obs["window"].tobytes(),
                np.float64(reward).tobytes(),
            ]
            if terminated or truncated:
                obs, _ = env.reset()
        return seen

    monkeypatch.setattr(dynamics, "fused_kernel", lambda: None)
    plain = run()
    monkeypatch.setattr(dynamics, "fused_kernel", lambda: fused)
    assert run() == plain


def test_the_path_is_chosen_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KERNEL_ENV, "numpy")
    kernel_module._reset_choice()
    assert fused_kernel() is None and kernel_module.kernel_name() == "numpy"
    monkeypatch.setenv(KERNEL_ENV, "fastest")
    kernel_module._reset_choice()
    with pytest.raises(KernelError, match="auto, numpy or numba"):
        fused_kernel()

    def missing() -> Any:
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(kernel_module, "_compile", missing)
    monkeypatch.setenv(KERNEL_ENV, "numba")
    kernel_module._reset_choice()
    with pytest.raises(KernelError, match="install the 'fast' extra"):
        fused_kernel()
    monkeypatch.setenv(KERNEL_ENV, "auto")
    kernel_module._reset_choice()
    assert fused_kernel() is None  # auto falls back to numpy
    kernel_module._reset_choice()


def test_the_kernel_takes_numpys_own_exp_and_log1p(
    fused: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where numpy's vectorised exp or log1p differ from the C library's in the last bit (they
    do on processors with AVX-512), the fused kernel still gives the numpy path's results: it
    calls numpy's functions. Here both are nudged by one ulp; compiled math would miss it."""
    exp, log1p = np.exp, np.log1p

    def nudged_exp(x: Any, out: Any = None) -> Any:
        return np.nextafter(exp(x, out=out), np.inf, out=out)

    def nudged_log1p(x: Any, out: Any = None) -> Any:
        return np.nextafter(log1p(x, out=out), -np.inf, out=out)

    states = [s for s in _states() if not s.slo_ok][:6]
    assert states
    plain = [_evaluate(state, None, 3).err for state in states]
    monkeypatch.setattr(np, "exp", nudged_exp)
    monkeypatch.setattr(np, "log1p", nudged_log1p)
    moved = 0
    for state, before in zip(states, plain, strict=True):
        a, b = _evaluate(state, None, 3), _evaluate(state, fused, 3)
        assert np.array_equal(a.err, b.err) and np.array_equal(a.lat, b.lat)
        moved += not np.array_equal(a.err, before)
    assert moved  # the nudge reached the results: the comparison above could fail


def test_the_uncompiled_parts_are_the_same_arithmetic() -> None:
    """The kernel's parts run as plain Python (no numba) give the same results too."""
    plain = kernel_module.plain_kernels()
    for state in _states()[1:12:5]:
        a, b = _evaluate(state, None, 5), _evaluate(state, plain, 5)
        for key in OUTPUTS:
            assert np.array_equal(getattr(a, key), getattr(b, key)), key
        assert a.slo_ok is b.slo_ok
