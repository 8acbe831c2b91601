"""Reports: the paper's table on hand-made records, and the tidy DataFrame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pase_gym.harness import report as report_module
from pase_gym.harness.metrics import METRICS, OPTIONAL, summarise
from pase_gym.harness.report import BASELINE, load_results, markdown_table, write_report
from pase_gym.harness.runner import RunStore, run_suite
from pase_gym.harness.suites import load_suite

COLUMNS = [
    "Model",
    "Fault Detection (F1)",
    "Average Recovery Time (s)",
    "MTTR vs rule-based",
    "Safe success",
    "Recovered",
    "Unrecovered",
    "Safety score",
    "Plan steps",
    "Cost",
    "Localization",
    "Compute (ms/decision)",
]


def rec(agent: str, seed: int, scenario: str = "s1", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": f"{agent}|t|{scenario}|{seed}",
        "agent": agent,
        "uses_ground_truth": False,
        "scenario": scenario,
        "seed": seed,
        "fault_types": ["process_crash"],
        "fault_nodes": ["nova-api-1"],
        "families": ["process"],
        "diagnosis": "process_crash",
        "diagnosed_node": "nova-api-1",
        "recovered": True,
        "mttr": 10.0,
        "executed_calls": 2,
        "safe_calls": 2,
        "harmed": 0,
        "cost": 1.5,
        "plan_steps": 2,
        "decisions": 4,
        "compute_s": 0.004,
    }
    base.update(overrides)
    return base


def hand_made() -> list[dict[str, Any]]:
    return [
        rec(BASELINE, 0, mttr=90.0),
        rec(BASELINE, 1, mttr=110.0),  # baseline MTTR: mean 100 over seeds
        rec("oracle", 0, mttr=20.0, uses_ground_truth=True),
        rec("oracle", 1, mttr=30.0, uses_ground_truth=True),  # 25: -75%
        rec("mine", 0, mttr=120.0),
        rec("mine", 1, mttr=120.0, diagnosis=None, harmed=4, safe_calls=1),  # 120: +20%
        rec("random", 0, recovered=False, mttr=None, diagnosis=None),
        rec("random", 1, recovered=False, mttr=None, diagnosis=None),  # no MTTR at all
    ]


def main_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells and rows (by Model cell) of the first Markdown table in ``text``."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    split = [[c.strip() for c in line.strip().strip("|").split("|")] for line in rows]
    header = split[0]
    body: dict[str, list[str]] = {}
    for cells in split[2:]:
        if cells[0] == "Model":
            break  # the second table (confidence intervals) starts
        body[cells[0]] = cells
    return header, body


# -- the table ---------------------------------------------------------------------------------


def test_table_has_the_papers_columns_and_one_row_per_agent() -> None:
    header, body = main_table(markdown_table(hand_made()))
    assert header == COLUMNS
    assert sorted(body) == sorted([BASELINE, "oracle (ground truth)", "mine", "random"])
    assert all(len(cells) == len(COLUMNS) for cells in body.values())


def test_only_the_ground_truth_agent_is_labelled() -> None:
    text = markdown_table(hand_made())
    _, body = main_table(text)
    assert "oracle (ground truth)" in body
    assert [name for name in body if "ground truth" in name] == ["oracle (ground truth)"]
    assert "oracle" not in body  # no unlabelled row for it


def test_mttr_change_against_the_baseline_agent() -> None:
    _, body = main_table(markdown_table(hand_made()))
    change = COLUMNS.index("MTTR vs rule-based")
    mttr = COLUMNS.index("Average Recovery Time (s)")
    assert body["oracle (ground truth)"][change] == "-75%"
    assert body["mine"][change] == "+20%"
    assert body[BASELINE][change] == "—"  # the baseline itself
    assert body["random"][change] == "—"  # nothing recovered: no MTTR to compare
    assert body[BASELINE][mttr] == "100.0 ± 14.1"  # mean ± sample std over seeds
    assert body["mine"][mttr] == "120.0 ± 0.0"
    assert body["random"][mttr] == "n/a"


def test_other_cells_on_hand_made_records() -> None:
    _, body = main_table(markdown_table(hand_made()))
    col = {name: COLUMNS.index(name) for name in COLUMNS}
    assert body["random"][col["Safe success"]] == "0.00 ± 0.00"
    assert body["random"][col["Recovered"]] == "0.00 ± 0.00"
    assert body[BASELINE][col["Safe success"]] == "1.00 ± 0.00"
    assert body["random"][col["Unrecovered"]] == "1.0 ± 0.0"
    assert body["random"][col["Fault Detection (F1)"]] == "0.00 ± 0.00"
    assert body["mine"][col["Fault Detection (F1)"]] == "0.50 ± 0.71"  # seeds: 1.0 and 0.0
    assert body[BASELINE][col["Compute (ms/decision)"]] == "1.000 ± 0.000"
    # "mine" recovered both episodes but harmed healthy nodes in one: not a safe success
    assert body["mine"][col["Recovered"]] == "1.00 ± 0.00"
    assert body["mine"][col["Safe success"]] == "0.50 ± 0.71"


def test_no_baseline_means_no_change_column_values() -> None:
    records = [r for r in hand_made() if r["agent"] != BASELINE]
    _, body = main_table(markdown_table(records))
    change = COLUMNS.index("MTTR vs rule-based")
    assert {cells[change] for cells in body.values()} == {"—"}


def test_table_states_its_size_and_title_and_gives_intervals() -> None:
    text = markdown_table(hand_made(), title="suite t")
    assert text.startswith("### suite t\n")
    assert "1 scenarios x 2 seeds per agent" in text
    ci_header = next(line for line in text.splitlines() if line.startswith("| Model | detection"))
    assert [c.strip() for c in ci_header.strip("|").split("|")][1:] == [
        n for n in METRICS if n != "compute_ms" and n not in OPTIONAL
    ]
    ci_row = next(line for line in text.splitlines() if line.startswith(f"| {BASELINE} | ["))
    # MTTR over seeds [90, 110]: a t-interval would be 100 ± 127.06 (below zero); the
    # bootstrap of the mean of two seeds lies between them
    cells = [c.strip() for c in ci_row.strip("|").split("|")]
    assert cells[1 + [n for n in METRICS if n != "compute_ms"].index("mttr")] == "[90.00, 110.00]"


def test_one_seed_shows_means_only() -> None:
    _, body = main_table(markdown_table([rec("mine", 0, mttr=42.0)]))
    assert body["mine"][COLUMNS.index("Average Recovery Time (s)")] == "42.0"


def test_write_report_without_figures(tmp_path: Path) -> None:
    path = write_report(hand_made(), tmp_path / "out", "t", figures=False)
    assert path == tmp_path / "out" / "report.md"
    assert path.read_text(encoding="utf-8") == markdown_table(hand_made(), "t")
    assert not list((tmp_path / "out").glob("*.png"))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert sorted(summary) == sorted([BASELINE, "oracle", "mine", "random"])
    assert summary[BASELINE]["mttr"]["mean"] == pytest.approx(100.0)
    assert summary[BASELINE]["mttr"]["n"] == 2
    assert summary["random"]["mttr"] == {
        "mean": None,
        "std": None,
        "ci95": None,
        "n": 0,
        "ci95_low": None,
        "ci95_high": None,
    }
    assert summary["random"]["unrecovered"]["mean"] == 1.0


# -- the DataFrame -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    suite_file = folder / "t.yaml"
    suite_file.write_text("name: t\nscenarios: [process-crash-train, cpu-hog-train]\nseeds: 2\n")
    out = folder / "t.jsonl"
    run_suite(["random", "oracle"], load_suite(str(suite_file)), out, progress=False)
    return out


def test_load_results_one_row_per_episode(results: Path) -> None:
    pd = pytest.importorskip("pandas")
    df = load_results(results)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 2 * 2 * 2
    assert df["key"].is_unique
    records = RunStore(results).load()
    assert set(df["key"]) == set(records)
    expected = (set(next(iter(records.values()))) - {"versions"}) | {
        "fault_type",
        "family",
        "pase_gym_version",
    }
    assert set(df.columns) == expected
    for column in ("agent", "scenario", "seed", "recovered", "mttr", "diagnosis", "compute_s"):
        assert column in df.columns
    # sorted by agent, scenario, seed
    order = list(zip(df["agent"], df["scenario"], df["seed"], strict=True))
    assert order == sorted(order)
    for _, row in df.iterrows():
        rec_ = records[row["key"]]
        assert row["fault_type"] == rec_["fault_types"][0]
        assert row["family"] == rec_["families"][0]
        assert row["pase_gym_version"] == rec_["versions"]["pase_gym"]
        assert bool(row["recovered"]) == rec_["recovered"]
    oracle = df[df["agent"] == "oracle"]
    assert oracle["uses_ground_truth"].all()
    assert oracle["recovered"].all()
    assert not df[df["agent"] == "random"]["uses_ground_truth"].any()


def test_load_results_of_an_empty_file_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    assert len(load_results(path)) == 0


def test_load_results_of_a_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "typo.jsonl"
    with pytest.raises((FileNotFoundError, ValueError), match=r"typo\.jsonl"):
        load_results(path)


def test_agents_run_on_fewer_seeds_are_named_in_the_size_line() -> None:
    records = [rec("full", s) for s in range(3)] + [rec("short", 0)]
    first = markdown_table(records).splitlines()[0]
    assert "x 3 seeds per agent (fewer for short: 1)" in first
    assert "fewer" not in markdown_table(records[:3]).splitlines()[0]


# -- figures a reader can trust ------------------------------------------------------------------
def _crowded() -> list[dict[str, Any]]:
    """Eight agents with long names; two seeds each, one with a wild MTTR spread."""
    records = []
    for k in range(8):
        name = f"a_rather_long_agent_name_{k}"
        for seed, mttr in ((0, 5.0), (1, 400.0 if k == 0 else 60.0)):
            records.append(rec(name, seed, mttr=mttr, harmed=seed % 2, safe_calls=1 + seed % 2))
            records.append(rec(name, seed, "s2", mttr=30.0, families=["network"]))
    return records


def _boxes(fig: Any, artists: Any) -> list[Any]:
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists if a.get_text()]


@pytest.mark.parametrize("fname", ["mttr.png", "detection_f1.png", "success_by_family.png"])
def test_figures_have_no_colliding_labels_and_keep_legends_off_the_bars(fname: str) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    figures = dict(report_module.build_figures(_crowded()))
    fig = figures.pop(fname)
    try:
        ax = fig.axes[0]
        fig.canvas.draw()
        ticks = _boxes(fig, ax.get_xticklabels())
        assert len(ticks) >= 2
        for i, a in enumerate(ticks):
            for b in ticks[i + 1 :]:
                assert not a.overlaps(b), f"{fname}: tick labels overlap"
        legend = ax.get_legend()
        if legend is not None:
            renderer = fig.canvas.get_renderer()
            assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    finally:
        plt.close(fig)
        for other in figures.values():
            plt.close(other)


def test_figure_intervals_stay_inside_each_metrics_range() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    figures = dict(report_module.build_figures(_crowded()))
    try:
        for fname, metric in (("mttr.png", "mttr"), ("detection_f1.png", "detection_f1")):
            ax = figures[fname].axes[0]
            low, high = METRICS[metric].low, METRICS[metric].high
            for artist in [*ax.lines, *ax.collections]:  # error-bar caps and stems
                if hasattr(artist, "get_segments"):
                    segments = artist.get_segments()
                    ys = np.concatenate([np.asarray(s)[:, 1] for s in segments] or [[]])
                else:
                    ys = np.asarray(artist.get_ydata(), dtype=float)
                if ys.size:
                    assert ys.min() >= (low or 0.0) - 1e-9, f"{fname}: an interval below the range"
                    if high is not None:
                        assert ys.max() <= high + 1e-9, f"{fname}: an interval above the range"
            assert ax.get_ylim()[0] >= (low or 0.0)
    finally:
        for fig in figures.values():
            plt.close(fig)
    # a two-seed agent whose MTTR was 5 s and 400 s: a t-interval would run below zero
    agg = summarise(_crowded())["a_rather_long_agent_name_0"]["mttr"]
    assert agg.mean is not None and agg.ci95 is not None and agg.mean - agg.ci95 < 0
    assert agg.low is not None and agg.low >= 0.0 and agg.high is not None
