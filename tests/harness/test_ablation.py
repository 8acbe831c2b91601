"""Table 1 from records: rows in the paper's order, our numbers beside the paper's, the
adaptation column from stream rows, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pase_gym.harness.ablation import PAPER, VARIANTS, build, markdown, write
from pase_gym.harness.cli import main
from pase_gym.harness.metrics import summarise
from pase_gym.harness.records import RunStore

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "benchmarks" / "results" / "paper" / "results.jsonl"


def _renamed(tmp_path: Path) -> tuple[Path, list[dict]]:
    """Published records of two agents, filed under two variants' names."""
    names = {"gcn_fr": "pase_no_engine", "prober": "pase_full"}
    records = [
        {**r, "agent": names[r["agent"]]}
        for r in RunStore(PUBLISHED).load().values()
        if r["agent"] in names
    ]
    out = tmp_path / "t1.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out, records


def _stream(agent: str, safe: list[bool]) -> list[dict]:
    return [
        {
            "agent": agent,
            "stream": "deadlock",
            "position": i,
            "seed": i,
            "scenario": "s",
            "phase": "before" if i < 2 else "after",
            "recovered": s,
            "safe": s,
            "learns": True,
            "return": 0.0,
            "mttr": None,
        }
        for i, s in enumerate(safe)
    ]


def test_table1_rows_follow_the_paper_and_carry_our_numbers(tmp_path: Path) -> None:
    _, records = _renamed(tmp_path)
    rows = _stream("pase_full", [True, False, False, True, True, True, True, True])
    table = build(records, rows)
    assert list(table) == ["pase_full", "pase_no_engine"]  # the paper's order
    expected = summarise([r for r in records if r["agent"] == "pase_full"])["pase_full"]
    assert table["pase_full"]["detection_f1"]["mean"] == expected["detection_f1"].mean
    assert table["pase_full"]["seeds"] == [0, 1, 2, 3, 4]
    assert table["pase_full"]["adaptation_episodes"] == 5  # rolling 0.8 at the 5th
    assert "adaptation_episodes" not in table["pase_no_engine"]  # no stream: not run
    paths = write(records, rows, tmp_path / "out")
    text = paths[0].read_text()
    assert "| PASE (Full) (`pase_full`) | ours |" in text and "not run" in text
    # every row of the paper's table is there; those without records say so
    assert "| Fixed Prompt Template (`pase_fixed_template`) | ours | not run |" in text
    # a variant with a stream but no suite records still shows its adaptation
    streamed = markdown(records, [*rows, *_stream("pase_no_mpo", [True] * 8)])
    assert "(`pase_no_mpo`) | ours | not run | not run | not run | 1 | not run |" in streamed
    assert text.count("| ours |") == text.count("| paper |") == len(VARIANTS)
    assert "| | paper | 0.942 ± 0.021 | 72.3 ± 8.1 | 0.89 ± 0.05 | 15 ± 3 | — |" in text
    assert set(PAPER) == set(VARIANTS)


def test_the_table1_command_writes_both_files_and_rejects_foreign_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, _ = _renamed(tmp_path)
    adapt = tmp_path / "adapt.jsonl"
    adapt.write_text("".join(json.dumps(r) + "\n" for r in _stream("pase_full", [True] * 5)))
    out = tmp_path / "t1"
    args = ["table1", "--results", str(results), "--adapt", str(adapt), "--out", str(out)]
    assert main(args) == 0
    assert "| PASE (Full) (`pase_full`) | ours |" in capsys.readouterr().out
    assert json.loads((out / "table1.json").read_text())["pase_full"]["adaptation_episodes"] == 1
    assert main(["table1", "--results", str(PUBLISHED), "--out", str(out)]) == 2
    assert "no records of Table 1's agents" in capsys.readouterr().err
    # one file per variant is the same table; a record in two files is an error
    lines = results.read_text().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(lines[: len(lines) // 2]))
    second.write_text("".join(lines[len(lines) // 2 :]))
    one, split = tmp_path / "one", tmp_path / "split"
    assert main(["table1", "--results", str(results), "--out", str(one)]) == 0
    assert main(["table1", "--results", str(first), str(second), "--out", str(split)]) == 0
    assert (split / "table1.json").read_text() == (one / "table1.json").read_text()
    assert main(["table1", "--results", str(first), str(first), "--out", str(split)]) == 2
    assert "is also in" in capsys.readouterr().err
