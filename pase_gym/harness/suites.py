"""Benchmark suites: which scenarios, how many seeds.

Suites are YAML files in the repository's ``benchmarks/suites/`` (``smoke``, ``paper``,
``unseen``) or any path:

```yaml
name: paper
description: the test split, 5 seeds (the Table 2 analogue)
split: test          # every built-in scenario of a split, or
scenarios: [...]     # an explicit list of names or paths
seeds: 5
```
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pase_gym.errors import ScenarioError, SuiteError
from pase_gym.scenarios import ScenarioSpec, list_scenarios, load_scenario
from pase_gym.scenarios.reader import read_mapping
from pase_gym.validation import first_problem

SUITES_ENV = "PASE_GYM_SUITES_DIR"
HIDDEN = "hidden"  # the suite drawn from the board's key (pase_gym.harness.hidden)


class SuiteSpec(BaseModel):
    """A suite file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    split: Literal["train", "test", "unseen"] | None = None
    scenarios: list[str] | None = None
    seeds: int = Field(5, ge=1, le=1000, strict=True)

    @model_validator(mode="after")
    def _one_source(self) -> SuiteSpec:
        if (self.split is None) == (self.scenarios is None):
            raise ValueError("give exactly one of split or scenarios")
        if self.scenarios is not None and not self.scenarios:
            raise ValueError("scenarios must not be empty")
        return self

    def scenario_sources(self) -> list[str]:
        """The suite's scenarios as it names them: built-in names or file paths."""
        return list_scenarios(self.split) if self.split else list(self.scenarios or [])

    def scenario_specs(self) -> list[ScenarioSpec]:
        """The suite's scenarios, validated (ScenarioError names the broken one)."""
        return [load_scenario(n) for n in self.scenario_sources()]


def suites_dir() -> Path | None:
    """``$PASE_GYM_SUITES_DIR``, ``./benchmarks/suites`` (a checkout you work in), else the
    built-in suites installed with the package (``pase_gym.suites``)."""
    candidates = []
    if os.environ.get(SUITES_ENV):
        candidates.append(Path(os.environ[SUITES_ENV]))
    candidates.append(Path.cwd() / "benchmarks" / "suites")
    candidates.append(Path(str(resources.files("pase_gym.suites"))))
    return next((c for c in candidates if c.is_dir()), None)


def list_suites() -> list[str]:
    """Names of the suites in :func:`suites_dir`, and ``hidden`` (it needs the board's key)."""
    root = suites_dir()
    return [*(sorted(p.stem for p in root.glob("*.yaml")) if root else []), HIDDEN]


def hidden_suite() -> SuiteSpec:
    """The hidden split as a suite (:mod:`pase_gym.harness.hidden`; needs the key).

    Raises:
        SuiteError: no key is configured.
    """
    from pase_gym.harness.hidden import SCENARIOS, SEEDS, hidden_folder

    folder = hidden_folder()
    paths = [str(folder / f"hidden-{i:02d}.yaml") for i in range(SCENARIOS)]
    return SuiteSpec(
        name=HIDDEN,
        description="scenarios drawn from the board's secret key (not in the package)",
        scenarios=paths,
        seeds=SEEDS,
    )


def load_suite(name_or_path: str) -> SuiteSpec:
    """Load a suite by name or path.

    Raises:
        SuiteError: unknown name, unreadable or malformed file, invalid content.
    """
    if name_or_path == HIDDEN:
        return hidden_suite()
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        root = suites_dir()
        if root is None or not (root / f"{name_or_path}.yaml").is_file():
            raise SuiteError(
                f"unknown suite {name_or_path!r}; expected one of "
                f"{', '.join(list_suites()) or '(none found)'} or a .yaml path"
            )
        path = root / f"{name_or_path}.yaml"
    try:
        data = read_mapping(path, "suite")  # bounded like a scenario file
    except ScenarioError as exc:
        raise SuiteError(str(exc)) from None
    try:
        return SuiteSpec.model_validate(data)
    except ValidationError as exc:
        key, message = first_problem(exc, SuiteSpec)
        raise SuiteError(f"{path}: {key}: {message}") from None
