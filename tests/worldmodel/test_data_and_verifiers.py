"""The world model's data set, the learned verifiers, their files and the command line."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from pase_gym.env.core import episode_of
from pase_gym.errors import WorldModelError
from pase_gym.sim.oracle import oracle_plan
from pase_gym.sim.plan import Plan
from pase_gym.worldmodel.collect import SOURCES, collect, dry_run, read, to_frame, write
from pase_gym.worldmodel.view import Seen

torch = pytest.importorskip("torch")
pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from pase_gym.worldmodel.cli import main  # noqa: E402
from pase_gym.worldmodel.report import FIXED_SET, fixed_set_auc  # noqa: E402
from pase_gym.worldmodel.train import arrays_of, fit  # noqa: E402
from pase_gym.worldmodel.verifier import (  # noqa: E402
    SHIPPED,
    ExactVerifier,
    LearnedVerifier,
    SymbolicVerifier,
    Verifier,
    load_verifier,
    save,
)

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "worldmodel"
SMALL = ["process-crash-train", "host-power-loss-train"]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return collect("train", 5, 0, scenarios=SMALL, augment=False, progress=False)


def _scene(scenario: str = "process-crash-test", seed: int = 0) -> tuple[Any, Seen]:
    env = gym.make("PASE-OpenStack-v4", scenario=scenario, start="incident")
    obs, info = env.reset(seed=seed)
    return env, Seen.of(obs, info)


def test_a_recorded_dry_run_is_the_simulator_s_dry_run() -> None:
    """Reading the indicators after each call changes nothing: the outcome recorded is what
    ``simulate`` predicts, and the episode is left as it was."""
    env, seen = _scene()
    episode = episode_of(env)
    plan = Plan(oracle_plan(episode.state).steps)
    tick, log = episode.state.tick, len(episode.state.log)
    record = dry_run(episode, seen, plan)
    prediction = episode.simulate(plan)
    assert record["recovered"] == prediction.recovered is True
    assert record["harm"] == len(prediction.harmed)
    assert record["violations"] == len(prediction.violations)
    assert record["residual"] == prediction.residual
    assert len(record["per_call"]) == len(plan.steps)
    assert episode.state.tick == tick and len(episode.state.log) == log
    # the runbook moves the faulty node's indicators
    assert any(np.abs(c["dh_target"]).max() > 0 for c in record["per_call"])


def test_collection_is_seeded_and_mixes_good_and_bad_plans(rows: list[dict[str, Any]]) -> None:
    again = collect("train", 5, 0, scenarios=SMALL, augment=False, progress=False)
    assert [r["plan"] for r in rows] == [r["plan"] for r in again]
    assert [r["good"] for r in rows] == [r["good"] for r in again]
    assert {r["source"] for r in rows} == set(SOURCES)
    good = sum(r["good"] for r in rows)
    assert 0.05 * len(rows) < good < 0.6 * len(rows)
    assert {r["split"] for r in rows} == {"train"}


def test_agents_add_their_plans_without_moving_the_other_rows(
    rows: list[dict[str, Any]],
) -> None:
    from pase_gym.harness.agent import load_agent

    agents = {"rule_based": load_agent("rule_based")}
    mixed = collect("train", 5, 0, scenarios=SMALL, augment=False, agents=agents, progress=False)
    own = [r for r in mixed if r["source"].startswith("agent")]
    assert {r["source"] for r in own} == {"agent:rule_based", "agent-mutant:rule_based"}
    proposed = [r["plan"].split("; ") for r in own if r["source"].startswith("agent:")]
    assert proposed and all(any(not c.startswith("Wait(") for c in p) for p in proposed)
    rest = [r["plan"] for r in mixed if not r["source"].startswith("agent")]
    assert rest == [r["plan"] for r in rows]


def test_collection_keeps_to_its_split() -> None:
    with pytest.raises(WorldModelError, match="not in the train split"):
        collect("train", 1, scenarios=["default"], progress=False)
    with pytest.raises(WorldModelError, match="split"):
        collect("validation", 1, progress=False)


def test_the_data_set_round_trips_and_bad_files_are_typed_errors(
    rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = write(rows, tmp_path / "train.parquet")
    frame = read(path)
    assert len(frame) == len(rows)
    data = arrays_of(frame)
    assert data.good.tolist() == [r["good"] for r in rows]
    with pytest.raises(WorldModelError, match="no such data set"):
        read(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(WorldModelError, match="not a readable Parquet"):
        read(tmp_path / "junk.parquet")
    frame.drop(columns=["good"]).to_parquet(tmp_path / "old.parquet")
    with pytest.raises(WorldModelError, match="good"):
        read(tmp_path / "old.parquet")
    frame.attrs["version"] = 0
    frame.to_parquet(tmp_path / "v0.parquet")
    with pytest.raises(WorldModelError, match="version 1 expected, found 0"):
        read(tmp_path / "v0.parquet")


def test_training_is_seeded(rows: list[dict[str, Any]], torch_one_thread: None) -> None:
    data = arrays_of(to_frame(rows))
    a, record = fit(data, "mlp", True, seed=3, epochs=2, progress=False)
    b, _ = fit(data, "mlp", True, seed=3, epochs=2, progress=False)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert record["harm_penalty"] in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
    assert len(record["history"]) == 2


@pytest.mark.parametrize("architecture", ["lstm", "transformer"])
def test_every_architecture_trains_and_scores(
    architecture: str, rows: list[dict[str, Any]], tmp_path: Path, torch_one_thread: None
) -> None:
    data = arrays_of(to_frame(rows))
    model, _record = fit(data, architecture, False, epochs=1, progress=False)
    path = save(
        [model],
        tmp_path / "m.pt",
        {
            "name": architecture,
            "architecture": architecture,
            "symbolic": False,
            "fusion": False,
            "hidden": 64,
        },
    )
    verifier = load_verifier(path)
    _, seen = _scene()
    scores = verifier.score([seen, seen], ["Wait(10)", "Restart(keystone-1); Wait(5)"])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert (scores >= -2.0).all() and (scores <= 0.0).all()


def test_the_shipped_nswm_loads_and_is_small() -> None:
    assert SHIPPED.is_file() and SHIPPED.stat().st_size < 2_000_000
    verifier = load_verifier()
    assert verifier.name == "nswm" and verifier.fusion
    assert isinstance(verifier, Verifier) and isinstance(SymbolicVerifier(), Verifier)
    header = json.loads(SHIPPED.with_name(SHIPPED.name + ".json").read_text())
    assert header["command"].startswith("pase-worldmodel")


def test_the_shipped_nswm_reproduces_its_published_auc() -> None:
    published = json.loads((RESULTS / "fig6.json").read_text())["fixed_set"]
    assert published["scenarios"] == list(FIXED_SET["scenarios"])
    got = fixed_set_auc(load_verifier())
    assert got["plans"] == published["plans"] and got["good"] == published["good"]
    # the plans and labels are exact; CPU float rounding may differ across machines, which
    # can only swap near-ties
    assert got["auc"] == pytest.approx(published["auc"], abs=0.005)
    assert 0.5 < got["auc"] < 1.0  # a set the model ranks well, but not trivially
    assert got["mean_score"] == pytest.approx(published["mean_score"], abs=1e-4)


def test_a_visible_violation_ranks_below_every_clean_plan() -> None:
    env, seen = _scene("host-power-loss-test")
    episode = episode_of(env)
    runbook = Plan(oracle_plan(episode.state).steps)
    host = next(n for n in seen.names if n.startswith("compute-"))
    plans = [runbook, "Wait(10)", "Inspect(keystone-1)", f"Restart({host})", "Restart(nobody)"]
    scores = load_verifier().score([seen] * len(plans), plans, unknown="veto")
    assert scores[3] < scores[:3].min() and scores[4] < scores[:3].min()


def test_unknown_names_are_errors_unless_vetoed() -> None:
    _, seen = _scene()
    verifier = load_verifier()
    with pytest.raises(WorldModelError, match=r"plans\[1\] step 2 Restart\(nobody\)"):
        verifier.score([seen, seen], ["Wait(10)", "Wait(10); Restart(nobody)"])
    with pytest.raises(WorldModelError, match="unknown group 'nova'"):
        verifier.score([seen], ["ScaleOut(nova, 1)"])
    with pytest.raises(WorldModelError, match="expected a Seen"):
        verifier.score([{"metrics": 1}], ["Wait(10)"])  # type: ignore[list-item]
    with pytest.raises(WorldModelError, match="unknown: expected"):
        verifier.score([seen], ["Wait(10)"], unknown="ignore")


def test_the_nswm_prefers_the_runbook_to_restarting_everything() -> None:
    """The cheapest shortcut a planner could try: restart every process. The verifier must
    not rate it above the runbook."""
    env, seen = _scene("process-crash-test")
    episode = episode_of(env)
    runbook = Plan(oracle_plan(episode.state).steps)
    processes = [n for i, n in enumerate(seen.names) if seen.public_state().topo.is_process[i]][:16]
    everything = "; ".join(f"Restart({n})" for n in processes)
    scores = load_verifier().score([seen, seen], [runbook, everything])
    assert scores[0] > scores[1]
    exact = ExactVerifier(episode).score([seen, seen], [runbook, everything])
    assert exact[0] > exact[1]


def test_a_verifier_holds_no_simulator_state() -> None:
    """What a verifier is handed, and all it derives while scoring, pickles to arrays, names
    and the world model's own classes: no way back to the env or the simulator."""
    _, seen = _scene()
    load_verifier().score([seen, seen], ["Wait(10)", "Restart(keystone-1)"])
    assert seen.public_state() is not None  # derived and kept on the view
    blob = pickle.dumps(seen)
    modules = {m.decode() for m in re.findall(rb"pase_gym\.[\w.]+", blob)}
    assert modules and all(m.startswith("pase_gym.worldmodel") for m in modules), modules


def test_bad_weights_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(WorldModelError, match="weights file"):
        load_verifier(tmp_path / "none.pt")
    header = json.loads(SHIPPED.with_name(SHIPPED.name + ".json").read_text())
    (tmp_path / "m.pt").write_bytes(SHIPPED.read_bytes())
    (tmp_path / "m.pt.json").write_text(json.dumps({**header, "call_dim": 3}))
    with pytest.raises(WorldModelError, match="other features or another version"):
        load_verifier(tmp_path / "m.pt")
    (tmp_path / "m.pt.json").write_text(json.dumps(header))
    (tmp_path / "m.pt").write_bytes(b"garbage")
    with pytest.raises(WorldModelError, match="do not load"):
        load_verifier(tmp_path / "m.pt")
    with pytest.raises(WorldModelError, match="at least one model"):
        LearnedVerifier([], fusion=False, name="x")


def test_the_command_line_reports_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--variants", "gpt", "--data", str(tmp_path / "x.parquet")]) == 2
    assert "expected 'all' or a comma list" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "x.parquet")]) == 2
    assert "no such data set" in capsys.readouterr().err
    assert main(["report", "--models", str(tmp_path)]) == 2
    assert "nswm.pt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["collect", "--episodes", "0"])
    assert exit_info.value.code == 2


def test_the_readme_example_runs() -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    part = text.split("## The world model (PASE's Neural-Symbolic World Model)", 1)[1]
    (snippet,) = re.findall(r"^```python\n(.*?)^```", part.split("\n## ", 1)[0], re.M | re.S)
    namespace: dict[str, Any] = {"__name__": "readme_world_model"}
    exec(compile(snippet, "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert scores.shape == (3,) and ((scores >= -4.0) & (scores <= 0.0)).all()
