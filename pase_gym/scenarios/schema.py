"""The scenario schema: what a scenario file may say, validated with pydantic.

A scenario is declarative data: the cloud (size and layout seed), the workload, the fault
schedule, the split it belongs to, the recovery hold time and the budget. Structural checks are
the schema's; checks that need the catalogue (fault types, their splits, roles) are the
validators below; checks that need the built topology (a named node exists and the fault can
strike it) happen when an episode is built.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from pase_gym.sim.faults import FAMILIES, FAULT_MODELS, FAULTS
from pase_gym.sim.roles import PROFILE_ALIASES, PROFILES, ROLES
from pase_gym.sim.topology import MAX_NODES, MIN_NODES, SIZE_PRESETS


class _Strict(BaseModel):
    # every number finite: nan and inf are refused wherever a float is read
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


MAX_SEED = 2**32 - 1


def _short(value: object) -> str:
    """A bounded rendering of a found value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...>"


class TopologySpec(_Strict):
    """The cloud: a size (node count or preset) and the seed of its layout."""

    nodes: int | str = "small"
    seed: int = Field(0, ge=0, le=MAX_SEED)

    @field_validator("nodes", mode="before")
    @classmethod
    def _size(cls, v: object) -> int | str:
        expected = f"a node count in [{MIN_NODES}, {MAX_NODES}] or one of {', '.join(SIZE_PRESETS)}"
        if isinstance(v, str) and v in SIZE_PRESETS:
            return v
        if isinstance(v, int) and not isinstance(v, bool) and MIN_NODES <= v <= MAX_NODES:
            return v
        raise ValueError(f"expected {expected}, found {_short(v)}")


class WorkloadSpec(_Strict):
    """The request mix: a profile (deployment/network/storage, or DEPL/NET/STO), or a list of
    profiles to draw one from per episode (so that the workload does not name the scenario),
    and the intensity."""

    profile: str | list[str] = "deployment"
    intensity: float = Field(1.0, gt=0.0, le=1.5)

    @field_validator("profile")
    @classmethod
    def _profile(cls, v: str | list[str]) -> str | list[str]:
        items = [v] if isinstance(v, str) else v
        if not items:
            raise ValueError("expected a profile or a non-empty list of profiles, found []")
        for item in items:
            if item not in PROFILES and item not in PROFILE_ALIASES:
                choices = ", ".join([*PROFILES, *PROFILE_ALIASES])
                raise ValueError(f"expected one of {choices}, found {_short(item)}")
        return v

    def profiles(self) -> list[str]:
        """The profiles an episode may draw from."""
        return [self.profile] if isinstance(self.profile, str) else list(self.profile)


class FaultSpecEntry(_Strict):
    """One scheduled fault.

    ``type`` is a fault type or a list to draw from per episode; ``node`` pins the target,
    ``role`` restricts the drawn target to one role; ``onset`` is a tick or a ``[lo, hi]``
    range drawn per episode; each of ``params`` is a value or a ``[lo, hi]`` range drawn
    (uniformly) per episode.
    """

    type: str | list[str]
    node: str | None = None
    role: str | None = None
    onset: int | tuple[int, int] = 30
    params: dict[str, float | tuple[float, float]] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _types(cls, v: str | list[str]) -> str | list[str]:
        names = [v] if isinstance(v, str) else v
        if not names:
            raise ValueError("expected at least one fault type, found an empty list")
        for name in names:
            if name not in FAULTS:
                raise ValueError(
                    f"expected a fault type ({', '.join(FAULTS)}), found {_short(name)}"
                )
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and v not in ROLES:
            raise ValueError(f"expected a role ({', '.join(ROLES)}), found {_short(v)}")
        return v

    @field_validator("onset")
    @classmethod
    def _onset(cls, v: int | tuple[int, int]) -> int | tuple[int, int]:
        lo, hi = (v, v) if isinstance(v, int) else v
        if lo < 1 or hi < lo:
            raise ValueError(
                f"expected a tick >= 1 or a range [lo, hi] with 1 <= lo <= hi, found {v}"
            )
        return v

    @model_validator(mode="after")
    def _pinned(self) -> FaultSpecEntry:
        if self.node is not None and self.role is not None:
            raise ValueError("give either node or role, not both")
        return self

    @model_validator(mode="after")
    def _params(self) -> FaultSpecEntry:
        # each parameter is declared by the entry's fault types, with a documented range
        declared = {t: FAULT_MODELS[t].PARAMS for t in self.types()}
        for name, value in self.params.items():
            owners = {t: params[name] for t, params in declared.items() if name in params}
            if not owners:
                known = sorted({n for params in declared.values() for n in params})
                expected = ", ".join(known) if known else "none (these fault types take none)"
                raise ValueError(
                    f"@params.{name}@ unknown parameter for {', '.join(self.types())}; "
                    f"expected {expected}"
                )
            lo, hi = (value, value) if isinstance(value, (int, float)) else value
            if hi < lo:
                raise ValueError(f"@params.{name}@ expected a range [lo, hi] with lo <= hi")
            for fault_type, spec in owners.items():
                if not (spec.lo <= lo and hi <= spec.hi):
                    raise ValueError(
                        f"@params.{name}@ {fault_type}'s {name} ({spec.doc}) must be in "
                        f"[{spec.lo:g}, {spec.hi:g}], found {_range(value)}"
                    )
        return self

    def types(self) -> list[str]:
        """The fault types this entry may draw from."""
        return [self.type] if isinstance(self.type, str) else list(self.type)

    def latest_onset(self) -> int:
        """The latest tick the fault may start."""
        return self.onset if isinstance(self.onset, int) else self.onset[1]


def _range(value: float | tuple[float, float]) -> str:
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return f"[{value[0]:g}, {value[1]:g}]"


class RecoverySpec(_Strict):
    """When an incident counts as recovered."""

    hold: int = Field(60, ge=1, le=3600)


class ReferenceSpec(_Strict):
    """What the oracle achieves on this scenario for one seed (checked by the test suite)."""

    seed: int = Field(0, ge=0, le=MAX_SEED)
    plan: str = Field(max_length=20_000)
    mttr: int = Field(ge=0, le=100_000)


class ScenarioSpec(_Strict):
    """A whole scenario file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)
    description: str = Field("", max_length=4_000)
    split: Literal["train", "test", "unseen"]
    topology: TopologySpec = TopologySpec()
    workload: WorkloadSpec = WorkloadSpec()
    faults: list[FaultSpecEntry] = Field(min_length=1, max_length=8)
    recovery: RecoverySpec = RecoverySpec()
    budget: int = Field(600, ge=10, le=100_000)
    reference: ReferenceSpec | None = None
    _source: str = PrivateAttr(default="<mapping>")

    @property
    def source(self) -> str:
        """The file this scenario was read from (``<mapping>`` when built in code)."""
        return self._source

    def __eq__(self, other: object) -> bool:
        # where a scenario was read from does not make it a different scenario
        return isinstance(other, ScenarioSpec) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(self.model_dump_json())

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioSpec:
        for i, fault in enumerate(self.faults):
            for name in fault.types():
                splits = FAMILIES[FAULTS[name].family].splits
                if self.split not in splits:
                    raise ValueError(
                        f"@faults.{i}.type@ {name} belongs to family "
                        f"{FAULTS[name].family!r}, which appears in {'/'.join(splits)}, not "
                        f"in split {self.split!r}"
                    )
            if fault.latest_onset() >= self.budget:
                raise ValueError(
                    f"@faults.{i}.onset@ onset {fault.latest_onset()} is not before the "
                    f"budget {self.budget}"
                )
        return self


def schema_json() -> dict[str, Any]:
    """The JSON schema of a scenario file (for editors and docs)."""
    return ScenarioSpec.model_json_schema()
