"""Speed gates: a 2x slowdown of one benchmark fails; a machine twice as slow does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pase_gym.errors import ResultsError
from pase_gym.harness import speed
from pase_gym.harness.cli import main

ROOT = Path(__file__).resolve().parents[2]


def bench_json(path: Path, medians: dict[str, float]) -> Path:
    data = {"benchmarks": [{"name": n, "stats": {"median": m}} for n, m in medians.items()]}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


BASE = {speed.REFERENCE: 0.001, "test_tick_rate[200]": 0.002, "test_reset": 0.010}


def test_a_slower_machine_passes_and_a_slower_benchmark_fails(tmp_path: Path) -> None:
    baseline = speed.make_baseline(bench_json(tmp_path / "a.json", BASE))
    slow_machine = bench_json(tmp_path / "b.json", {k: 2.3 * v for k, v in BASE.items()})
    assert not [c for c in speed.compare(baseline, slow_machine) if c.regressed]
    injected = dict(BASE, **{"test_tick_rate[200]": 2 * BASE["test_tick_rate[200]"]})
    checks = speed.compare(baseline, bench_json(tmp_path / "c.json", injected))
    slower = [c for c in checks if c.regressed]
    assert [c.name for c in slower] == ["test_tick_rate[200]"]
    assert slower[0].slowdown == pytest.approx(2.0)


def test_a_run_without_the_reference_is_refused(tmp_path: Path) -> None:
    path = bench_json(tmp_path / "a.json", {"test_reset": 0.01})
    with pytest.raises(ResultsError, match="no test_reference_workload"):
        speed.make_baseline(path)
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(ResultsError, match="not a pytest-benchmark"):
        speed.medians(bad)


def test_the_cli_exits_1_on_a_slowdown_and_2_on_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = bench_json(tmp_path / "a.json", BASE)
    baseline = tmp_path / "speed.json"
    assert main(["speed-gate", "--results", str(run), "--write-baseline", str(baseline)]) == 0
    assert main(["speed-gate", "--results", str(run), "--baseline", str(baseline)]) == 0
    slow = bench_json(tmp_path / "s.json", dict(BASE, test_reset=0.030))
    assert main(["speed-gate", "--results", str(slow), "--baseline", str(baseline)]) == 1
    assert "| test_reset |" in capsys.readouterr().out
    argv = ["speed-gate", "--results", str(run), "--baseline", str(baseline), "--threshold", "1"]
    assert main(argv) == 2


@pytest.mark.slow
def test_an_injected_slowdown_of_real_code_is_caught(tmp_path: Path) -> None:
    """Measure the reference and one simulator benchmark twice, the second time with the
    simulator's evaluation made four times as slow (it runs four times), and gate the second
    run at the default 1.5x: the margin keeps a busy machine's noise from deciding it."""
    plugin = tmp_path / "slow_plugin.py"
    plugin.write_text(
        "import pase_gym.sim.dynamics as d\n"
        "_orig = d.evaluate\n"
        "def _slow(*a, **k):\n"
        "    for _ in range(3):\n"
        "        _orig(*a, **k)\n"
        "    return _orig(*a, **k)\n"
        "d.evaluate = _slow\n",
        encoding="utf-8",
    )

    def measure(out: Path, *extra: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                *extra,
                str(ROOT / "benchmarks" / "test_bench_reference.py"),
                str(ROOT / "benchmarks" / "test_bench_sim.py") + "::test_evaluate_core",
                "--benchmark-only",
                f"--benchmark-json={out}",
                "-k",
                "reference or 200]",
            ],
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )

    before, after = tmp_path / "before.json", tmp_path / "after.json"
    measure(before)
    measure(after, "-p", "slow_plugin")
    baseline = speed.make_baseline(before)
    checks = {c.name: c for c in speed.compare(baseline, after)}
    name = next(n for n in checks if n.startswith("test_evaluate_core"))
    assert checks[name].regressed, checks[name]


def test_renaming_a_slow_benchmark_does_not_escape_the_gate(tmp_path: Path) -> None:
    baseline = speed.make_baseline(bench_json(tmp_path / "a.json", BASE))
    renamed = {k: v for k, v in BASE.items() if k != "test_reset"}
    renamed["test_reset_v2"] = 10 * BASE["test_reset"]
    with pytest.raises(ResultsError, match=r"not in the run, e\.g\. test_reset"):
        speed.compare(baseline, bench_json(tmp_path / "b.json", renamed))
