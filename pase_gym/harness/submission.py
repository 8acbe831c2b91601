"""A leaderboard submission: a folder with the agent's code and a ``manifest.yaml`` that says
who and what.

```yaml
name: my-agent                   # how the board files it (a slug; not a reference agent's name)
authors: [Ada Lovelace]
contact: ada@example.org
licence: Apache-2.0              # an SPDX identifier
agent: agent.py:Agent            # a file inside the folder (and the class), or registry:NAME
model: {name: SmolLM2-135M, parameters: 135000000}   # or {name: none, parameters: 0}
extras: [llm]                    # pase-gym extras it needs: llm, rl, bench
reads: text                      # text (the scene description), numbers (the arrays), or both
description: One paragraph on what it does.
```

:func:`validate_submission` checks, before anything long runs, in this order: the folder
(at most :data:`MAX_FILES` files and :data:`MAX_BYTES` in all, no link leading out of it), the
manifest (bounded YAML; every key typed, no unknown key; errors name the file and the key),
the agent file inside the folder, and an import check in the sandbox (the submission's code is
never imported in the evaluator's process). Every problem is a
:class:`~pase_gym.errors.SubmissionError` naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pase_gym.errors import ScenarioError, SubmissionError
from pase_gym.harness.agent import REGISTRY
from pase_gym.scenarios.reader import read_mapping
from pase_gym.validation import first_problem

MANIFEST = "manifest.yaml"
MAX_FILES = 200
MAX_BYTES = 50 * 1024 * 1024  # code, config and small weights; large weights stay outside
EXTRAS = ("llm", "rl", "bench")
_SPDX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*( (AND|OR|WITH) [A-Za-z0-9][A-Za-z0-9.+-]*)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ModelInfo(BaseModel):
    """The model inside the agent, if any."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=100)
    parameters: int = Field(ge=0, le=10**13)


class Manifest(BaseModel):
    """A submission's ``manifest.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    authors: list[str] = Field(min_length=1, max_length=50)
    contact: str = Field(max_length=200)
    licence: str = Field(max_length=100)
    agent: str = Field(min_length=1, max_length=200)
    model: ModelInfo
    extras: list[Literal["llm", "rl", "bench"]] = Field(default_factory=list)
    reads: Literal["text", "numbers", "both"]
    description: str = Field("", max_length=4000)

    @field_validator("contact")
    @classmethod
    def _contact(cls, v: str) -> str:
        if not _EMAIL.match(v):
            raise ValueError(f"expected an e-mail address, found {v[:60]!r}")
        return v

    @field_validator("licence")
    @classmethod
    def _licence(cls, v: str) -> str:
        if not _SPDX.match(v):
            raise ValueError(f"expected an SPDX licence identifier (e.g. MIT), found {v[:60]!r}")
        return v

    @field_validator("authors")
    @classmethod
    def _authors(cls, v: list[str]) -> list[str]:
        if any(not a.strip() or len(a) > 200 for a in v):
            raise ValueError("expected authors' names (1 to 200 characters each)")
        return v


@dataclass(frozen=True)
class Submission:
    """A validated submission: its folder, manifest and the agent spec the harness loads."""

    folder: Path
    manifest: Manifest
    spec: str  # path/to/agent.py:Class, or a registry name for a reference entry
    files: int
    size: int


def load_manifest(folder: Path) -> Manifest:
    """The folder's manifest, validated.

    Raises:
        SubmissionError: missing, malformed or invalid, naming the file and the key.
    """
    path = folder / MANIFEST
    if not path.is_file():
        raise SubmissionError(f"{path}: no manifest (expected {MANIFEST} in the folder)")
    try:
        data = read_mapping(path, "manifest")
    except ScenarioError as exc:
        raise SubmissionError(str(exc)) from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        key, message = first_problem(exc, Manifest)
        raise SubmissionError(f"{path}: {key}: {message}") from None


def _inventory(folder: Path) -> tuple[int, int]:
    files = size = 0
    root = folder.resolve()
    for item in folder.rglob("*"):
        if item.is_symlink() and not item.resolve().is_relative_to(root):
            raise SubmissionError(f"{item}: a link out of the submission folder")
        if item.is_file():
            files += 1
            size += item.stat().st_size
            if files > MAX_FILES:
                raise SubmissionError(f"{folder}: more than {MAX_FILES} files")
            if size > MAX_BYTES:
                raise SubmissionError(
                    f"{folder}: more than {MAX_BYTES // (1024 * 1024)} MB in all (keep large "
                    "weights out of the submission)"
                )
    return files, size


def agent_spec(folder: Path, manifest: Manifest) -> str:
    """The spec the harness loads for ``manifest.agent``.

    Raises:
        SubmissionError: a file outside the folder, a missing file, an unknown reference
            agent, or a submission that takes a reference agent's name.
    """
    where = f"{folder / MANIFEST}: agent"
    entry = manifest.agent
    if entry.startswith("registry:"):
        name = entry.removeprefix("registry:")
        if name not in REGISTRY:
            raise SubmissionError(f"{where}: no reference agent {name!r} ({', '.join(REGISTRY)})")
        if manifest.name.replace("-", "_") != name:
            raise SubmissionError(f"{where}: a registry entry must be named after its agent")
        return name
    if manifest.name.replace("-", "_") in REGISTRY:
        raise SubmissionError(
            f"{folder / MANIFEST}: name: {manifest.name!r} is a reference agent's name"
        )
    file, _, cls = entry.partition(":")
    path = (folder / file).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise SubmissionError(f"{where}: {file!r} is outside the submission folder")
    if path.suffix != ".py" or not path.is_file():
        raise SubmissionError(f"{where}: expected a .py file in the folder, found {file!r}")
    if cls and not cls.isidentifier():
        raise SubmissionError(f"{where}: expected a class name after ':', found {cls!r}")
    return f"{path}:{cls}" if cls else str(path)


def validate_submission(folder: str | Path, *, import_check: bool = True) -> Submission:
    """Check a submission folder before anything long runs (see the module docstring).

    Raises:
        SubmissionError: the first problem found, naming the file and the key.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a folder (expected a submission folder)")
    files, size = _inventory(folder)
    manifest = load_manifest(folder)
    spec = agent_spec(folder, manifest)
    if import_check and spec not in REGISTRY:
        from pase_gym.errors import AgentError
        from pase_gym.harness.sandbox import SandboxedAgent

        try:
            SandboxedAgent(spec).close()
        except AgentError as exc:
            raise SubmissionError(f"{folder / MANIFEST}: agent: {exc}") from None
    return Submission(folder, manifest, spec, files, size)
