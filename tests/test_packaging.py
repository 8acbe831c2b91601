"""A wheel of the project installs and works on its own, away from the source tree.

The wheel is built from a clean copy of the repository (so that the build writes no ``build/``
or ``*.egg-info`` into the working tree and no stale build output leaks into the wheel),
installed with ``--no-deps`` into a fresh virtual environment that sees the test environment's
dependencies through a ``.pth`` line but not its editable ``pase_gym``, and used from a folder
outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
REPO_SCENARIOS = sorted(p.name for p in (REPO / "fault_scenarios").glob("*.yaml"))
NOT_SHIPPED = ("agents", "benchmarks", "leaderboard", "tests", "fault_scenarios")

PROBE = """
import importlib.util, json
import pase_gym
from pase_gym import list_scenarios, load_scenario
from pase_gym.episode import Episode, run_oracle
from pase_gym.scenarios import builtin_dir

episode = Episode("default", 0)
episode.reset()
run_oracle(episode)
print(json.dumps({
    "file": pase_gym.__file__,
    "builtin_dir": str(builtin_dir()),
    "scenarios": list_scenarios(),
    "default": load_scenario("default").name,
    "recovered": episode.recovered,
    "mttr": episode.mttr,
    "importable": {
        name: importlib.util.find_spec(name) is not None
        for name in ("agents", "benchmarks", "leaderboard", "tests")
    },
}))
"""


def _run(cmd: list[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=cwd, env=_clean_env(), timeout=600
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("build")
    src = work / "src"
    shutil.copytree(
        REPO,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            ".benchmarks",
        ),
    )
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)])
    (built,) = dist.glob("pase_gym-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv with the wheel installed; returns its interpreter."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        ).stdout.strip()
    )
    # The outer environment's dependencies, as a plain sys.path entry: .pth files inside it
    # (the editable pase_gym's finder among them) are not processed.
    outer = sysconfig.get_paths()["purelib"]
    (purelib / "_outer_site_packages.pth").write_text(outer + "\n", encoding="utf-8")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)])
    return python


def test_wheel_ships_the_package_and_every_built_in_scenario(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(
        n.rsplit("/", 1)[-1]
        for n in names
        if n.startswith("pase_gym/fault_scenarios/") and n.endswith(".yaml")
    )
    assert shipped == REPO_SCENARIOS
    assert "pase_gym/py.typed" in names
    assert "pase_gym/fault_scenarios/__init__.py" in names
    for module in ("cli", "episode", "errors", "scenarios/schema", "sim/transition"):
        assert f"pase_gym/{module}.py" in names
    # the shipped world model (the default verifier) and its header
    assert {"pase_gym/worldmodel/nswm.pt", "pase_gym/worldmodel/nswm.pt.json"} <= set(names)


def test_wheel_installs_no_other_top_level_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    for name in NOT_SHIPPED:
        assert name not in top
    assert {t for t in top if not t.endswith((".dist-info", ".data"))} == {"pase_gym"}


def test_wheel_declares_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
    assert "[console_scripts]" in text
    assert "pase-gym = pase_gym.cli:main" in text
    assert "pase-worldmodel = pase_gym.worldmodel.cli:main" in text


def test_installed_wheel_works_outside_the_repository(
    installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = _run([str(installed), "-c", PROBE], cwd=elsewhere)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    venv = installed.parent.parent
    assert Path(result["file"]).is_relative_to(venv), result["file"]
    assert Path(result["builtin_dir"]).is_relative_to(venv)
    assert len(result["scenarios"]) == len(REPO_SCENARIOS)
    assert sorted(f"{n}.yaml" for n in result["scenarios"]) == REPO_SCENARIOS
    assert result["default"] == "default"
    assert result["recovered"] is True
    assert isinstance(result["mttr"], int)
    assert result["importable"] == dict.fromkeys(
        ("agents", "benchmarks", "leaderboard", "tests"), False
    )


def test_installed_console_script_runs_the_demo(
    installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    script = installed.with_name("pase-gym")
    elsewhere = tmp_path_factory.mktemp("elsewhere-cli")
    proc = _run([str(script), "demo", "--json"], cwd=elsewhere)
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["scenario"] == "default"
    assert report["recovered"] is True
