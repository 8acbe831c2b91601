"""The leaderboard (pase_gym.harness.board): the Markdown and the site show exactly the numbers
of the result files, rank by safe success, escape what submissions write, and refuse results
without a valid signature when the evaluator's key is given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pase_gym.errors import ResultsError
from pase_gym.harness.board import collect, index_html, markdown, sign, signature_ok, write_board
from pase_gym.harness.cli import main
from pase_gym.harness.metrics import summarise

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "benchmarks" / "results" / "paper" / "results.jsonl"
KEY = b"an evaluator key of enough bytes"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """The published records of three reference agents."""
    keep = {"random", "rule_based", "oracle"}
    lines = [
        line for line in PUBLISHED.read_text().splitlines() if json.loads(line)["agent"] in keep
    ]
    path = tmp_path / "paper.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_board_shows_the_files_numbers_ranked_by_safe_success(results: Path) -> None:
    board = collect([results], ROOT / "leaderboard" / "submissions")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    truth = summarise(records)
    order = [e.agent for e in board.entries]
    assert order == sorted(truth, key=lambda a: -(truth[a]["safe_success"].mean or 0.0))
    md = markdown(board)
    for entry in board.entries:
        mean = truth[entry.agent]["safe_success"].mean
        assert f"| {entry.submission} | {mean:.2f} [" in md
        page_values = re.findall(r"data-value='([^']*)'", index_html(board))
        assert f"{mean:.6g}" in page_values
    # the reference entries are matched to their submission folders through the manifests
    assert {e.submission for e in board.entries} == {"random", "rule-based", "oracle"}
    assert "reads the ground truth" in md.split("| oracle |")[1].splitlines()[0]


def test_the_site_has_a_sortable_table_and_a_page_per_agent(results: Path, tmp_path: Path) -> None:
    board = collect([results], ROOT / "leaderboard" / "submissions")
    written = write_board(board, tmp_path / "site")
    names = {p.name for p in written}
    assert {"board.md", "index.html"} <= names
    assert len(names) == 2 + len(board.entries)
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count("onclick='sortBy(this)'") >= 7 and "filterRows" in index
    for entry_page in names - {"board.md", "index.html"}:
        page = (tmp_path / "site" / entry_page).read_text()
        assert "safe success by fault family" in page and f"href='{entry_page}'" in index


def test_what_a_submission_writes_is_escaped(results: Path, tmp_path: Path) -> None:
    folder = tmp_path / "subs" / "evil"
    folder.mkdir(parents=True)
    (folder / "manifest.yaml").write_text(
        "name: evil\nauthors: ['<img src=x onerror=alert(1)>']\ncontact: a@b.org\n"
        "licence: MIT\nagent: registry:random\nmodel: {name: none, parameters: 0}\n"
        'reads: numbers\ndescription: "</td><script>alert(1)</script>"\n'
    )
    board = collect([results], tmp_path / "subs")
    (entry,) = [e for e in board.entries if e.agent == "random"]
    assert entry.submission == "evil"
    written = write_board(board, tmp_path / "site")
    page = next(p for p in written if p.name.startswith("agent-evil")).read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page


def test_signatures_are_checked_when_the_key_is_given(results: Path) -> None:
    with pytest.raises(ResultsError, match="no valid signature"):
        collect([results], None, KEY)
    sign(results, KEY, verified=3)
    assert signature_ok(results, KEY)
    assert not signature_ok(results, b"another key of sixteen bytes or more")
    board = collect([results], None, KEY)
    assert board.keyed and all(e.signed for e in board.entries)
    # one changed byte, e.g. a better MTTR, breaks the signature
    text = results.read_text()
    results.write_text(text.replace('"mttr": 1', '"mttr": 0', 1))
    assert results.read_text() != text
    assert not signature_ok(results, KEY)
    with pytest.raises(ResultsError, match=re.escape(str(results))):
        collect([results], None, KEY)


def test_the_command_refuses_a_signed_build_without_the_key(
    results: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PASE_GYM_HIDDEN_KEY", raising=False)
    monkeypatch.delenv("PASE_GYM_HIDDEN_KEY_FILE", raising=False)
    out = tmp_path / "site"
    assert (
        main(["leaderboard", "build", "--results", str(results), "--out", str(out), "--signed"])
        == 2
    )
    assert "key" in capsys.readouterr().err
    assert not out.exists()
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(out)]) == 0
    assert (out / "index.html").is_file()


def test_verify_signs_a_file_only_when_its_records_reproduce(results: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY.decode())
    one = tmp_path / "one.jsonl"
    line = next(x for x in results.read_text().splitlines() if json.loads(x)["agent"] == "random")
    one.write_text(line + "\n")
    args = ["verify", "--results", str(one), "--quiet", "--sign", "--key-file", str(key_file)]
    assert main(args) == 0
    assert signature_ok(one, KEY)
    record = json.loads(line)
    record["cost"] = float(record["cost"]) / 2  # a forged, self-consistent improvement
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps(record) + "\n")
    assert main([*args[:2], str(forged), *args[3:]]) == 1
    assert not (tmp_path / "forged.jsonl.sig").exists()


def test_the_committed_board_is_in_step_with_the_published_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """leaderboard/site is rebuilt with the command in leaderboard/README.md whenever the
    published results move."""
    monkeypatch.chdir(ROOT)  # the committed build names its sources relative to the root
    sources = [Path("benchmarks") / "results" / s / "results.jsonl" for s in ("paper", "unseen")]
    board = collect(sources, Path("leaderboard") / "submissions")
    written = write_board(board, tmp_path / "site")
    committed = ROOT / "leaderboard" / "site"
    for path in written:
        assert (committed / path.name).read_text() == path.read_text(), path.name
    assert {p.name for p in committed.iterdir()} == {p.name for p in written}


def test_the_board_shows_public_and_hidden_columns_side_by_side(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results on the hidden split (drawn from the evaluator's key) get their own columns,
    named as such, beside the public suite's; the numbers are the hidden file's own."""
    from pase_gym.harness import hidden
    from pase_gym.harness.runner import run_suite
    from pase_gym.harness.suites import SuiteSpec, load_suite

    monkeypatch.setenv(hidden.KEY_ENV, KEY.decode())
    monkeypatch.delenv(hidden.KEY_FILE_ENV, raising=False)
    suite = load_suite("hidden")
    few = SuiteSpec(name="hidden", scenarios=suite.scenario_sources()[:4], seeds=1)
    hidden_file = tmp_path / "hidden.jsonl"
    run_suite(["rule_based", "oracle"], few, hidden_file, progress=False)
    board = collect([results, hidden_file], ROOT / "leaderboard" / "submissions")
    assert board.suites[:2] == ["paper", "hidden"]
    md = markdown(board)
    header = md.splitlines()[0]
    assert "safe success (paper)" in header and "safe success (hidden)" in header
    hidden_records = [json.loads(line) for line in hidden_file.read_text().splitlines()]
    truth = summarise(hidden_records)
    oracle_row = next(
        line for line in md.splitlines() if line.startswith("| ") and "| oracle |" in line
    )
    cells = [c.strip() for c in oracle_row.split("|")]
    column = [c.strip() for c in header.split("|")].index("safe success (hidden)")
    assert cells[column].startswith(f"{truth['oracle']['safe_success'].mean:.2f}")
    random_row = next(line for line in md.splitlines() if "| random |" in line)
    assert [c.strip() for c in random_row.split("|")][column] in ("—", "-", "n/a", "")
