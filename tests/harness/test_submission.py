"""Submission folders and manifests are checked, key by key, before anything long runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pase_gym.errors import SubmissionError
from pase_gym.harness.cli import main
from pase_gym.harness.submission import MAX_FILES, validate_submission

ROOT = Path(__file__).resolve().parents[2]
MODEL = "model: {name: none, parameters: 0}"
GOOD = """\
name: my-agent
authors: [Ada Lovelace]
contact: ada@example.org
licence: Apache-2.0
agent: agent.py:Agent
model: {name: none, parameters: 0}
extras: [bench]
reads: text
description: Waits.
"""
AGENT = """\
class Agent:
    name = "my-agent"
    def reset(self, seed):
        pass
    def act(self, observation, info):
        return "Wait(10)"
"""


def folder(tmp_path: Path, manifest: str = GOOD, agent: str = AGENT) -> Path:
    sub = tmp_path / "my-agent"
    sub.mkdir(exist_ok=True)
    (sub / "manifest.yaml").write_text(manifest, encoding="utf-8")
    (sub / "agent.py").write_text(agent, encoding="utf-8")
    return sub


def error_of(path: Path, **kwargs: bool) -> str:
    with pytest.raises(SubmissionError) as info:
        validate_submission(path, **kwargs)
    return str(info.value)


def test_a_good_submission_validates_and_imports_in_the_sandbox(tmp_path: Path) -> None:
    sub = validate_submission(folder(tmp_path))
    assert sub.manifest.name == "my-agent" and sub.manifest.extras == ["bench"]
    assert sub.spec == f"{(tmp_path / 'my-agent' / 'agent.py').resolve()}:Agent"
    assert sub.files == 2


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (("contact: ada@example.org", "contact: ada"), "contact", "e-mail"),
        (("licence: Apache-2.0", "licence: 'do what you like!'"), "licence", "SPDX"),
        (("authors: [Ada Lovelace]", "authors: []"), "authors", "at least 1"),
        (("reads: text", "reads: vibes"), "reads", "'text', 'numbers' or 'both'"),
        (("extras: [bench]", "extras: [gpu]"), "extras.0", ""),
        (("name: my-agent", "name: My Agent"), "name", "pattern"),
        (
            (MODEL, "model: {name: x, parameters: -1}"),
            "model.parameters",
            "greater than or equal",
        ),
        (
            (MODEL, "model: {name: x, parameters: 1, size: 1}"),
            "model.size",
            "name, parameters",
        ),
        (("description: Waits.", "descriptn: Waits."), "descriptn", "unknown key"),
        (("reads: text\n", ""), "reads", "required key is missing"),
        (("name: my-agent", "name: 7"), "name", "string"),
    ],
)
def test_manifest_problems_name_the_file_and_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, message: str
) -> None:
    sub = folder(tmp_path, GOOD.replace(*change))
    error = error_of(sub, import_check=False)
    assert error.startswith(f"{sub / 'manifest.yaml'}: {key}: "), error
    assert message in error


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("../outside.py", "outside the submission folder"),
        ("/etc/passwd", "outside the submission folder"),
        ("missing.py", "expected a .py file in the folder"),
        ("agent.py:not a class", "expected a class name"),
        ("registry:nobody", "no reference agent"),
        ("registry:rule_based", "named after its agent"),
    ],
)
def test_the_agent_entry_stays_inside_the_folder(tmp_path: Path, agent: str, message: str) -> None:
    sub = folder(tmp_path, GOOD.replace("agent: agent.py:Agent", f"agent: '{agent}'"))
    assert message in error_of(sub, import_check=False)


def test_a_submission_may_not_take_a_reference_agents_name(tmp_path: Path) -> None:
    sub = folder(tmp_path, GOOD.replace("name: my-agent", "name: rule-based"))
    assert "is a reference agent's name" in error_of(sub, import_check=False)


def test_a_broken_import_is_found_in_the_sandbox(tmp_path: Path) -> None:
    sub = folder(tmp_path, agent="import not_a_module_anywhere\n" + AGENT)
    assert "not_a_module_anywhere" in error_of(sub)


def test_the_folder_is_bounded(tmp_path: Path) -> None:
    sub = folder(tmp_path)
    for i in range(MAX_FILES):
        (sub / f"f{i}.txt").write_text("x", encoding="utf-8")
    assert f"more than {MAX_FILES} files" in error_of(sub, import_check=False)


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    sub = folder(tmp_path)
    os.symlink("/etc", sub / "etc")
    assert "a link out of the submission folder" in error_of(sub, import_check=False)


def test_malformed_or_missing_manifests(tmp_path: Path) -> None:
    sub = folder(tmp_path, "name: [unclosed\n")
    assert "malformed YAML" in error_of(sub, import_check=False)
    (sub / "manifest.yaml").unlink()
    assert "no manifest" in error_of(sub, import_check=False)
    assert "not a folder" in error_of(tmp_path / "nothing-here")


@pytest.mark.parametrize(
    "entry", sorted(p.name for p in (ROOT / "leaderboard" / "submissions").iterdir())
)
def test_the_reference_entries_validate(entry: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "validate", str(ROOT / "leaderboard" / "submissions" / entry)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_the_cli_prints_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = folder(tmp_path, GOOD.replace("contact: ada@example.org", "contact: ada"))
    assert main(["submit", "validate", str(sub), "--no-import"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("pase-bench: error: ") and "contact" in err[-1]
