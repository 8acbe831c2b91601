"""``PASE-OpenStack-Replay-v4``: real rows of Failure-Dataset-OpenStack as the env's events.

The data set is GPL-3.0 and lives outside the repository (``../shared/data/...``); the tests
that read it are skipped without it. Registration and the missing-data errors are tested
without it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import pase_gym  # noqa: F401  (registers the ids)
from pase_gym.datasets import ENV_VAR, DatasetError, load_all
from pase_gym.datasets.splits import unique_rows
from pase_gym.env import REPLAY_ENTRY_POINT
from pase_gym.env.replay import ReplayEnv, parse_campaigns
from pase_gym.env.replay_classes import (
    NO_FAILURE,
    best_answer,
    diagnosis_class,
    expressible_classes,
    replay_topology,
    role_class_table,
)
from pase_gym.fidelity.scripts import campaign_classes
from pase_gym.harness.cli import main as bench_main
from pase_gym.harness.metrics import macro_f1
from pase_gym.harness.replay import run_agent, score
from pase_gym.sim.plan import Plan, parse_plan
from pase_gym.sim.roles import ROLE_NAMES

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO.parent / "shared" / "data" / "failure-dataset-openstack"
REPLAY_ID = "PASE-OpenStack-Replay-v4"
TEST_SIDE_UNIQUE = {"DEPL": 216, "NET": 82, "STO": 65}  # docs/fidelity.md's evaluation rows

requires_data = pytest.mark.skipif(
    not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file(),
    reason=f"Failure-Dataset-OpenStack (GPL-3.0, not shipped) is not at {DATA_ROOT}",
)


@pytest.fixture(scope="module")
def dataset():
    if not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file():
        pytest.skip(f"Failure-Dataset-OpenStack is not at {DATA_ROOT}")
    return load_all(DATA_ROOT)


@pytest.fixture(scope="module")
def env() -> ReplayEnv:
    if not (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file():
        pytest.skip(f"Failure-Dataset-OpenStack is not at {DATA_ROOT}")
    return ReplayEnv(root=str(DATA_ROOT), max_steps=1)


# ---- registration and errors, without the data ------------------------------------------------
_REGISTER = """
import json, sys
import gymnasium as gym
import pase_gym
spec = gym.spec("PASE-OpenStack-Replay-v4")
replay = ("pase_gym.datasets", "pase_gym.fidelity", "pase_gym.env.replay")
loaded = sorted(m for m in sys.modules if m.startswith(replay))
print(json.dumps({"entry_point": spec.entry_point, "loaded": loaded}))
"""


def test_the_id_registers_without_the_data(tmp_path: Path) -> None:
    env = {"PATH": "", ENV_VAR: str(tmp_path / "no-data-here"), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", _REGISTER],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["entry_point"] == REPLAY_ENTRY_POINT
    assert result["loaded"] == [], "registering imported the data set's modules"


def test_a_missing_data_folder_is_the_loaders_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="not shipped with pase-gym") as info:
        gym.make(REPLAY_ID, root=str(missing))
    assert info.value.path == missing
    monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(DatasetError, match=ENV_VAR):
        gym.make(REPLAY_ID)


def test_a_malformed_data_folder_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "DEPL").mkdir()
    (tmp_path / "DEPL" / "SEQ.tsv").write_text("a\tb\n1\tx\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        ReplayEnv(root=str(tmp_path))
    assert info.value.path is not None and info.value.path.parent.name == "DEPL"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"campaigns": "MARS"}, "unknown campaign"),
        ({"campaigns": "DEPL,DEPL"}, "distinct campaigns"),
        ({"order": "backwards"}, "order"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_bad_arguments_fail_before_the_data_is_read(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        ReplayEnv(root="/no/such/folder", **kwargs)


def test_campaigns_argument_forms() -> None:
    assert parse_campaigns("all") == ("DEPL", "NET", "STO")
    assert parse_campaigns(None) == ("DEPL", "NET", "STO")
    assert parse_campaigns("sto,net") == ("NET", "STO")
    assert parse_campaigns(["storage"]) == ("STO",)


# ---- the class mapping -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("campaign", "node", "expected"),
    [
        ("DEPL", "nova-api-1", "instance_failure"),  # the boot chain's first role
        ("DEPL", "nova-compute-1", "instance_failure"),
        ("DEPL", "cinder-volume-1", "volume_failure"),  # volume-create comes before the boot
        ("DEPL", "neutron-server-1", "network_failure"),  # the first step is the network
        # an asynchronous agent: the API answers, the router is never plugged, SSH fails
        ("DEPL", "l3-agent-1", "ssh_failure"),
        ("DEPL", "dhcp-agent-1", "ssh_failure"),
        ("DEPL", "instance-1", "ssh_failure"),  # only the SSH check asks the instances
        ("DEPL", "mysql-1", "network_failure"),  # everything depends on it: the first step
        ("DEPL", "compute-1", "instance_failure"),  # its nova-compute serves the boot
        ("NET", "l3-agent-1", "ssh_failure"),  # the router step degrades, SSH fails
        ("STO", "dhcp-agent-1", NO_FAILURE),  # no SSH check finds the missing lease
        ("NET", "ovs-agent-1", "instance_failure"),
        ("NET", "cinder-api-1", NO_FAILURE),  # NET's script has no volume step
        ("STO", "neutron-server-1", "instance_failure"),  # q-plugin_get_ports in the boot
        ("STO", "l3-agent-1", NO_FAILURE),  # STO's clean-up deletes no routers
        ("STO", "instance-1", NO_FAILURE),  # STO has no SSH check
        ("STO", "cinder-api-1", "volume_failure"),
        ("DEPL", None, NO_FAILURE),  # no diagnosis
    ],
)
def test_diagnosis_class_on_concrete_roles(campaign: str, node: str | None, expected: str) -> None:
    assert diagnosis_class(campaign, node) == expected


def test_every_mapped_class_is_one_the_campaign_can_have() -> None:
    topo = replay_topology()
    for campaign in ("DEPL", "NET", "STO"):
        classes = set(campaign_classes(campaign))
        assert {diagnosis_class(campaign, n) for n in topo.names} <= classes
        assert expressible_classes(campaign) <= classes
    # a place cannot say "late": the clean-up needs no role an earlier step does not
    assert "cleanup_failure" not in expressible_classes("DEPL")
    assert best_answer("STO", "cleanup_failure") == NO_FAILURE
    assert best_answer("NET", "ssh_failure") == "ssh_failure"
    with pytest.raises(KeyError):
        diagnosis_class("DEPL", "nova-api-99")


def test_replicas_of_a_role_map_alike_and_the_docs_table_is_the_code() -> None:
    topo = replay_topology()
    table = role_class_table()
    for i, name in enumerate(topo.names):
        role = ROLE_NAMES[int(topo.role[i])]
        for campaign in ("DEPL", "NET", "STO"):
            assert diagnosis_class(campaign, name) == table[role][campaign], name
    docs = (REPO / "docs" / "fidelity.md").read_text(encoding="utf-8")
    rows = dict(
        (m[0], (m[1], m[2], m[3]))
        for m in re.findall(r"^\| `([a-z0-9-]+)` \| (\w+) \| (\w+) \| (\w+) \|$", docs, re.M)
    )
    assert rows == {r: (v["DEPL"], v["NET"], v["STO"]) for r, v in table.items()}


# ---- the env on the real data ------------------------------------------------------------------
@requires_data
def test_the_id_passes_the_gymnasium_checker_without_warnings() -> None:
    env = gym.make(REPLAY_ID, root=str(DATA_ROOT), campaigns="NET", render_mode="ansi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    spec = gym.spec(REPLAY_ID)
    assert gym.envs.registration.EnvSpec.from_json(spec.to_json()) == spec


@requires_data
def test_the_observation_and_action_spaces_are_the_tiny_envs(env: ReplayEnv) -> None:
    tiny = gym.make("PASE-OpenStack-Tiny-v4")
    assert env.observation_space == tiny.observation_space
    assert env.action_space == tiny.action_space
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    _, tiny_info = tiny.reset(seed=0)
    assert set(info) == set(tiny_info)
    assert info["slot_names"] == tiny_info["slot_names"]


@requires_data
def test_a_full_pass_visits_every_unique_row_once_with_the_loaders_labels(
    env: ReplayEnv, dataset
) -> None:
    seen: list[int] = []
    for k in range(env.rows.size):
        env.reset(seed=0) if k == 0 else env.reset()
        _, reward, terminated, truncated, info = env.step("Wait(10)")
        assert truncated and not terminated  # max_steps=1: no diagnosis, the budget ends it
        assert info["true_class"] == str(dataset.labels[info["row"]])
        assert info["campaign"] == str(dataset.campaign[info["row"]])
        assert info["predicted_class"] == NO_FAILURE
        assert reward == float(info["true_class"] == NO_FAILURE)
        seen.append(info["row"])
    assert len(seen) == len(set(seen))
    for campaign in ("DEPL", "NET", "STO"):
        rows = dataset.rows_of(campaign)
        expected = {
            (dataset.X[r].tobytes(), str(dataset.labels[r])) for r in rows
        }  # every distinct (counts, label) pair of the loader
        got = [(dataset.X[r].tobytes(), str(dataset.labels[r])) for r in seen if r in set(rows)]
        assert len(got) == len(set(got)) == len(expected)
        assert set(got) == expected
    # the next reset starts a new pass in the same order
    env.reset()
    assert env.ground_truth()["row"] == seen[0]


@requires_data
def test_shuffled_passes_are_seeded_permutations(dataset) -> None:
    env = ReplayEnv(root=str(DATA_ROOT), campaigns="STO", order="shuffle")

    def one_pass(seed: int) -> list[int]:
        rows = []
        for k in range(env.rows.size):
            env.reset(seed=seed) if k == 0 else env.reset()
            rows.append(env.ground_truth()["row"])
        return rows

    a, b, c = one_pass(3), one_pass(3), one_pass(4)
    assert a == b != c
    assert sorted(a) == sorted(c) == sorted(env.rows.tolist())


@requires_data
def test_split_sides_are_the_calibrations_and_disjoint(dataset) -> None:
    test = ReplayEnv(root=str(DATA_ROOT), split="test")
    train = ReplayEnv(root=str(DATA_ROOT), split="train")
    every = ReplayEnv(root=str(DATA_ROOT), split="all")
    counts = {c: int(np.sum(dataset.campaign[test.rows] == c)) for c in TEST_SIDE_UNIQUE}
    assert counts == TEST_SIDE_UNIQUE
    assert not set(test.rows.tolist()) & set(train.rows.tolist())
    assert test.rows.size + train.rows.size == every.rows.size
    all_rows = ReplayEnv(root=str(DATA_ROOT), campaigns="NET", rows="all")
    assert all_rows.rows.tolist() == dataset.rows_of("NET").tolist()
    positions, _ = unique_rows(dataset.X[all_rows.rows], dataset.labels[all_rows.rows])
    assert ReplayEnv(root=str(DATA_ROOT), campaigns="NET").rows.size == positions.size


@requires_data
def test_nothing_the_agent_sees_before_the_end_depends_on_the_label(
    env: ReplayEnv, dataset
) -> None:
    """Rows with equal counts and different labels look exactly alike until the episode ends."""
    x = dataset.X[env.rows]
    twins = None
    for i in range(env.rows.size):
        same = np.flatnonzero((x == x[i]).all(axis=1))
        labels = {str(dataset.labels[env.rows[j]]) for j in same}
        if len(labels) > 1:
            twins = same[:2]
            break
    assert twins is not None, "the data set has identical rows with different labels"
    frames = []
    for k in twins.tolist():
        obs, info = env.reset(options={"row": k})
        assert not {"true_class", "row", "campaign", "predicted_class"} & set(info)
        frames.append((obs, info))
    (obs_a, info_a), (obs_b, info_b) = frames
    assert all(np.array_equal(obs_a[key], obs_b[key]) for key in obs_a)
    assert info_a == info_b


@requires_data
def test_error_events_raise_error_rate_alarms_and_healthy_rows_raise_none(
    env: ReplayEnv, dataset
) -> None:
    column = dataset.columns.index("cinderclient_POST_500")
    rows = env.rows
    with_error = next(
        k
        for k in range(rows.size)
        if dataset.campaign[rows[k]] == "DEPL" and dataset.X[rows[k], column] > 0
    )
    obs, info = env.reset(options={"row": with_error})
    names = replay_topology().names
    alarmed = {names[i] for i in np.flatnonzero(obs["alarms"].any(axis=1))}
    assert "cinder-api-1" in alarmed
    assert "HighErrorRate" in info["description"] and not info["slo_ok"]
    assert "error events seen: " in info["description"]
    errors = [j for j, c in enumerate(dataset.columns) if c.endswith(("_ERROR", "_500"))]
    clean = next(
        k
        for k in range(rows.size)
        if dataset.labels[rows[k]] == NO_FAILURE and not dataset.X[rows[k], errors].any()
    )
    obs, info = env.reset(options={"row": clean})
    assert obs["alarms"].sum() == 0 and info["slo_ok"]
    assert "no alarms" in info["description"]


@requires_data
def test_a_diagnosis_ends_the_episode_with_its_mapped_class(env: ReplayEnv, dataset) -> None:
    k = int(np.flatnonzero(dataset.campaign[env.rows] == "DEPL")[0])
    env.reset(options={"row": k})
    _, reward, terminated, truncated, info = env.step(
        parse_plan("Diagnose(process_crash, cinder-volume-1); Restart(cinder-volume-1)")
    )
    assert terminated and not truncated
    assert info["predicted_class"] == "volume_failure"
    assert reward == float(info["true_class"] == "volume_failure")
    with pytest.raises(gym.error.ResetNeeded):
        env.step("Wait(10)")
    # a diagnosis of a node the cloud lacks, or a malformed plan, is a no-op step
    long = ReplayEnv(root=str(DATA_ROOT), campaigns="NET", max_steps=3)
    long.reset(seed=0)
    _, _, terminated, truncated, info = long.step("Diagnose(process_crash, nova-api-9)")
    assert not terminated and not truncated and "unknown node" in info["plan_error"]
    _, _, terminated, truncated, info = long.step("Restart(")
    assert not terminated and not truncated and info["plan_error"]
    _, _, terminated, truncated, info = long.step("Wait(10)")
    assert truncated and info["predicted_class"] == NO_FAILURE


# ---- the metric can tell a perfect agent from one that never diagnoses ---------------------------
class _LabelReader:
    """Cheats: reads the replayed row's label and diagnoses a node of that class."""

    def __init__(self, env: ReplayEnv) -> None:
        self.env = env
        self.names = replay_topology().names

    def reset(self, seed: int) -> None:
        pass

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Plan | str:
        truth = self.env.ground_truth()
        for node in self.names:
            if truth["class"] != NO_FAILURE and (
                diagnosis_class(truth["campaign"], node) == truth["class"]
            ):
                return f"Diagnose(process_crash, {node})"
        return "Wait(10)"


class _Waiter:
    def reset(self, seed: int) -> None:
        pass

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> str:
        return "Wait(10)"


@requires_data
def test_a_label_reading_agent_scores_perfectly_and_a_waiting_one_scores_the_floor() -> None:
    env = ReplayEnv(root=str(DATA_ROOT), split="test", max_steps=2)
    cheat = run_agent(_LabelReader(env), env, progress=False)
    waiter = run_agent(_Waiter(), env, progress=False)
    assert [r["true"] for r in cheat] == [r["true"] for r in waiter]
    for campaign in ("DEPL", "NET", "STO"):
        best = score([r for r in cheat if r["campaign"] == campaign])
        floor = score([r for r in waiter if r["campaign"] == campaign])
        truth = [r["true"] for r in waiter if r["campaign"] == campaign]
        # every class of NET is expressible: the cheat is perfect; DEPL and STO have
        # cleanup failures, which no diagnosis expresses: the cheat reaches the ceiling
        assert best["macro_f1"] == best["ceiling"]
        if campaign == "NET":
            assert best["macro_f1"] == 1.0
        else:
            assert 0.5 < best["macro_f1"] < 1.0
        # the waiting agent gets exactly the no_failure-only score
        n, n_nf, k = len(truth), truth.count(NO_FAILURE), len(set(truth))
        assert floor["macro_f1"] == floor["no_failure_floor"]
        assert floor["macro_f1"] == pytest.approx(2 * n_nf / (n_nf + n) / k, abs=1e-4)
        assert floor["macro_f1"] == pytest.approx(macro_f1(truth, [NO_FAILURE] * n), abs=1e-4)
        assert floor["diagnosed_share"] == 0.0
        diagnosable = [t != NO_FAILURE and t in expressible_classes(campaign) for t in truth]
        assert best["diagnosed_share"] == pytest.approx(np.mean(diagnosable), abs=1e-4)
        assert best["macro_f1"] > floor["macro_f1"] + 0.4


# ---- the command -----------------------------------------------------------------------------
@requires_data
def test_bench_replay_writes_the_report_and_leaves_the_oracle_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "replay"
    argv = ["replay", "--agents", "rule_based,oracle", "--campaigns", "NET", "--data"]
    code = bench_main([*argv, str(DATA_ROOT), "--out", str(out), "--quiet"])
    assert code == 0
    report = json.loads((out / "replay.json").read_text(encoding="utf-8"))
    assert set(report["results"]) == {"rule_based"}
    assert "ground truth" in report["excluded"]["oracle"]
    assert "oracle" in caplog.text and "ground truth" in caplog.text
    net = report["results"]["rule_based"]["NET"]
    assert net["rows"] == TEST_SIDE_UNIQUE["NET"]
    assert 0.0 <= net["macro_f1"] <= 1.0 and net["ci95"][0] <= net["macro_f1"] <= net["ci95"][1]
    assert sum(map(sum, net["confusion"]["counts"])) == net["rows"]
    md = (out / "replay.md").read_text(encoding="utf-8")
    assert "| rule_based |" in md and "Left out: `oracle`" in md
    assert "| rule_based |" in capsys.readouterr().out


def test_bench_replay_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    assert bench_main(["replay", "--data", str(missing), "--out", str(tmp_path)]) == 2
    assert "not shipped with pase-gym" in capsys.readouterr().err
    if (DATA_ROOT / "DEPL" / "SEQ.tsv").is_file():
        code = bench_main(["replay", "--agents", "oracle", "--data", str(DATA_ROOT)])
        assert code == 2
        assert "no agent to score" in capsys.readouterr().err


def test_the_readme_table_is_the_stored_report() -> None:
    stored = json.loads(
        (REPO / "benchmarks" / "fidelity" / "replay" / "replay.json").read_text(encoding="utf-8")
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for agent, per in stored["results"].items():
        cells = " | ".join(f"{per[c]['macro_f1']:.2f}" for c in stored["meta"]["campaigns"])
        assert f"| {agent} | {cells} |" in readme, agent
    assert stored["meta"]["command"] in " ".join(readme.split())
    docs = (REPO / "docs" / "fidelity.md").read_text(encoding="utf-8")
    assert stored["meta"]["command"] in " ".join(docs.split())
