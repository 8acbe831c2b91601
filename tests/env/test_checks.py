"""The shipped conformance checks (``pase-gym check-env``): they pass on every id and fail,
naming the check and the problem, on an env that breaks the contract."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from pase_gym.cli import main
from pase_gym.env import SIM_ENV_IDS
from pase_gym.env.checks import CHECKS, run_checks
from pase_gym.env.core import PaseOpenStackEnv
from pase_gym.errors import EnvCheckError


@pytest.mark.parametrize("env_id", SIM_ENV_IDS)
def test_every_registered_id_passes_every_check(env_id: str) -> None:
    results = run_checks(env_id, seed=3)
    assert [r.name for r in results] == [c.__name__.removeprefix("check_") for c in CHECKS]
    assert [r.message for r in results if not r.ok] == []


class _ForgetfulEnv(PaseOpenStackEnv):
    """Ignores the seed it is reset with: not reproducible."""

    draws = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        _ForgetfulEnv.draws += 1
        return super().reset(seed=1000 + _ForgetfulEnv.draws, options=options)


class _NumpyFlagsEnv(PaseOpenStackEnv):
    """Returns numpy bools for terminated/truncated: breaks the step contract."""

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, np.bool_(terminated), np.bool_(truncated), info


@pytest.fixture
def broken_ids() -> Any:
    ids = {"PASE-Test-Forgetful-v0": _ForgetfulEnv, "PASE-Test-NumpyFlags-v0": _NumpyFlagsEnv}
    for env_id, cls in ids.items():
        gym.register(env_id, entry_point=cls, kwargs={"scenario": "tiny-mix-train"})
    yield list(ids)
    for env_id in ids:
        del gym.registry[env_id]


def test_a_broken_env_fails_the_check_it_breaks(broken_ids: list[str]) -> None:
    forgetful = {r.name: r for r in run_checks(broken_ids[0], names=("determinism", "spaces"))}
    assert forgetful["spaces"].ok
    assert not forgetful["determinism"].ok
    assert "diverged" in forgetful["determinism"].message
    flags = {r.name: r for r in run_checks(broken_ids[1], names=("step_contract",))}
    assert not flags["step_contract"].ok
    assert "bools" in flags["step_contract"].message


def test_the_command_line_reports_each_check_and_exits_by_outcome(
    broken_ids: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-env", "PASE-OpenStack-Tiny-v4"]) == 0
    assert "9 of 9 checks passed" in capsys.readouterr().out
    assert main(["check-env", broken_ids[1]]) == 1
    out = capsys.readouterr().out
    assert "FAIL step_contract: terminated and truncated must be bools" in out
    assert main(["check-env", "PASE-Nope-v0"]) == 2
    assert "cannot make 'PASE-Nope-v0'" in capsys.readouterr().err


def test_an_unknown_id_is_a_typed_error() -> None:
    with pytest.raises(EnvCheckError, match="expected one of PASE-OpenStack-v4"):
        run_checks("PASE-Nope-v0")
