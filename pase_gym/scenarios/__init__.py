"""Scenario files: loading, validation and the built-in catalogue.

``load_scenario("tiny-process-crash")`` loads a built-in scenario by name;
``load_scenario("path/to/file.yaml")`` loads a file; a mapping is accepted too. Every problem
raises :class:`~pase_gym.errors.ScenarioError` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pase_gym.errors import ScenarioError
from pase_gym.scenarios.reader import MAX_FILE_BYTES, read_yaml
from pase_gym.scenarios.schema import FaultSpecEntry, ScenarioSpec
from pase_gym.validation import first_problem

Scenario = ScenarioSpec

__all__ = [
    "MAX_FILE_BYTES",
    "FaultSpecEntry",
    "Scenario",
    "ScenarioSpec",
    "builtin_dir",
    "list_scenarios",
    "load_scenario",
    "parse_scenario",
]


def builtin_dir() -> Path:
    """The folder of the built-in scenario files (inside the installed package)."""
    return Path(str(resources.files("pase_gym.fault_scenarios")))


def list_scenarios(split: str | None = None) -> list[str]:
    """Names of the built-in scenarios, sorted, optionally only those of ``split``.

    Raises:
        ScenarioError: ``split`` is not train, test or unseen.
    """
    names = sorted(p.stem for p in builtin_dir().glob("*.yaml"))
    if split is None:
        return names
    if split not in ("train", "test", "unseen"):
        raise ScenarioError(
            f"expected a split (train, test, unseen), found {split!r}", source="list_scenarios"
        )
    return [n for n in names if load_scenario(n).split == split]


def parse_scenario(data: object, source: str = "<mapping>") -> ScenarioSpec:
    """Validate a scenario mapping (as read from YAML).

    Raises:
        ScenarioError: naming ``source`` and the first offending key.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(
            f"expected a mapping of scenario keys, found {type(data).__name__}", source=source
        )
    try:
        return ScenarioSpec.model_validate(dict(data))
    except ValidationError as exc:
        key, message = first_problem(exc, ScenarioSpec)
        raise ScenarioError(message, source=source, key=key) from None


def load_scenario(name_or_path: str | Path | Mapping[str, Any]) -> ScenarioSpec:
    """Load a built-in scenario by name, a scenario file by path, or a mapping.

    Raises:
        ScenarioError: unknown name, unreadable or malformed file, or invalid content.
    """
    if isinstance(name_or_path, Mapping):
        return parse_scenario(name_or_path)
    if not isinstance(name_or_path, str | Path):
        raise ScenarioError(
            f"expected a scenario name, a path or a mapping, found {type(name_or_path).__name__}",
            source="load_scenario",
        )
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = (
        isinstance(name_or_path, Path)
        or path.suffix in (".yaml", ".yml")
        or ("/" in text or "\\" in text)
    )
    if not looks_like_path:
        candidate = builtin_dir() / f"{text}.yaml"
        if not candidate.is_file():
            names = list_scenarios()
            raise ScenarioError(
                f"no built-in scenario of that name; expected one of {', '.join(names)} "
                "or a path to a .yaml file",
                source=text,
            )
        path = candidate
    elif path.is_dir():
        raise ScenarioError("is a directory; expected a scenario .yaml file", source=text)
    elif not path.is_file():
        raise ScenarioError("no such file", source=text)
    spec = parse_scenario(read_yaml(path), source=str(path))
    spec._source = str(path)
    return spec
