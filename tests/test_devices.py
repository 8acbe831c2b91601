"""``pase_gym.devices``: one rule for ``auto|cpu|cuda|cuda:N`` everywhere a model runs."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from pase_gym.devices import check_device, device_option, resolve_device
from pase_gym.errors import DeviceError, PaseGymError


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch):
    """Set what torch reports about CUDA: ``cuda(n)`` pretends ``n`` devices (0: none)."""
    torch = pytest.importorskip("torch")

    def pretend(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return pretend


def test_cpu_is_cpu_even_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now fails
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == "cpu"
    with pytest.raises(DeviceError, match="torch is not installed"):
        resolve_device("cuda")


def test_auto_picks_cuda_only_when_torch_sees_it(cuda) -> None:
    cuda(0)
    assert resolve_device("auto") == "cpu"
    assert resolve_device() == "cpu"
    cuda(1)
    assert resolve_device("auto") == "cuda"


def test_an_explicit_cuda_request_without_cuda_is_a_typed_error(cuda) -> None:
    cuda(0)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match="no CUDA device") as err:
            resolve_device(device)
        assert isinstance(err.value, PaseGymError) and isinstance(err.value, ValueError)


def test_cuda_indices_must_exist(cuda) -> None:
    cuda(2)
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(DeviceError, match=r"sees 2 CUDA device\(s\)"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("bad", ["tpu", "CPU", "gpu", "cuda:", "cuda:x", "cuda:-1", " cpu", ""])
def test_a_misspelt_device_is_a_typed_error_naming_the_choices(bad: str) -> None:
    with pytest.raises(DeviceError, match=r"unknown device .*expected auto .*cuda:N"):
        resolve_device(bad)
    with pytest.raises(DeviceError):
        check_device(bad)


def test_the_argparse_type_checks_the_spelling_only() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", type=device_option, default="auto")
    assert parser.parse_args(["--device", "cuda:3"]).device == "cuda:3"  # not resolved yet
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "tpu"])


def test_the_module_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; import pase_gym.devices as d; "
        "print(d.resolve_device('auto'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cpu"


# -- CPU threads -------------------------------------------------------------------------------


def test_threads_come_from_the_agent_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pase_gym.devices import DEFAULT_THREADS, THREADS_ENV, cpu_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert cpu_threads() == DEFAULT_THREADS == 2
    monkeypatch.setenv(THREADS_ENV, "3")
    assert cpu_threads() == 3
    assert cpu_threads(1) == 1  # the agent's own number wins


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", "\u00b2"])
def test_a_bad_thread_count_in_the_environment_is_an_error(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    from pase_gym.devices import THREADS_ENV, cpu_threads

    monkeypatch.setenv(THREADS_ENV, text)
    with pytest.raises(DeviceError, match="PASE_GYM_THREADS must be a positive integer"):
        cpu_threads()


@pytest.mark.parametrize("bad", [0, -2, True, 1.5])
def test_a_bad_thread_count_from_the_agent_is_an_error(bad: object) -> None:
    from pase_gym.devices import cpu_threads

    with pytest.raises(DeviceError, match="threads must be a positive integer"):
        cpu_threads(bad)  # type: ignore[arg-type]


def test_a_bad_thread_count_stops_a_run_before_any_episode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pase_gym.devices import THREADS_ENV
    from pase_gym.harness.runner import run_suite
    from pase_gym.harness.suites import load_suite

    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(DeviceError, match="PASE_GYM_THREADS"):
        run_suite(["random"], load_suite("smoke"), tmp_path / "r.jsonl", progress=False)
    assert not (tmp_path / "r.jsonl").exists()


def test_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from pase_gym.devices import worker_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    # each worker's share of the cores, never more than the default of one worker alone
    assert [worker_threads(n) for n in (1, 2, 3, 4, 5, 8, 16)] == [2, 2, 2, 2, 1, 1, 1]
