"""The agent interface of the benchmark, and how agents are found.

An agent is any object with ``reset(seed)`` and ``act(observation, info) -> plan`` (a
:class:`~pase_gym.sim.plan.Plan`, plan text or a structured action), and optionally
``train(...)``. The harness hands it the env's observation and ``info`` only. An agent that
verifies its plans may set ``last_feasibility`` in ``act()`` to the score ``F`` it gave the plan
it returns: the records keep it beside the plan's real outcome (the ``feasibility_auc``
metric). An agent that adapts may define ``learn(feedback)``: an adaptation stream
(:mod:`pase_gym.harness.adaptation`, ``pase-bench adapt``) hands it each episode's outcome and
return after the episode, never the fault. An agent that
declares ``uses_ground_truth = True`` (the oracle, nothing else) is handed a callable that
returns the injected faults, and its results are labelled as such.

Agents are named by the registry (``random``, ``rule_based``, ``gcn_fr``, ``oracle``), by
``module:Class``, or by ``path/to/file.py[:Class]`` — the same way a leaderboard submission is
loaded. Reference agents live in the repository's ``agents/`` folder, each shaped exactly like
a submission (``agents/<name>/agent.py`` defining ``Agent``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import math
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pase_gym.errors import AgentError

REGISTRY = (
    "random",
    "rule_based",
    "prober",
    "gcn_fr",
    "detr_fd",
    "ifshm",
    "pase",
    "pase_full",
    "oracle",
)
AGENTS_ENV = "PASE_GYM_AGENTS_DIR"


@runtime_checkable
class Agent(Protocol):
    """What the harness needs of an agent."""

    def reset(self, seed: int) -> None:
        """Start a new episode (seed every source of randomness from ``seed``)."""

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Any:
        """The next plan: a ``Plan``, plan text or a structured action."""


GroundTruth = Callable[[], list[dict[str, Any]]]


def reported_feasibility(agent: Any) -> float | None:
    """The feasibility ``F`` an agent gave the plan ``act()`` just returned (its optional
    ``last_feasibility``), when it is a finite number; anything else counts as none."""
    value = getattr(agent, "last_feasibility", None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def forget_feasibility(agent: Any) -> None:
    """Clear an agent's ``last_feasibility`` before it acts, so that a score it does not renew
    is not counted again (an agent that will not take the attribute keeps its own)."""
    if getattr(agent, "last_feasibility", None) is not None:
        with contextlib.suppress(AttributeError, TypeError):
            agent.last_feasibility = None


def agents_dir() -> Path | None:
    """Where the reference agents live: ``$PASE_GYM_AGENTS_DIR``, ``./agents`` (a checkout
    you work in), else the copy installed with the package (``pase_gym.agents``)."""
    candidates = []
    if os.environ.get(AGENTS_ENV):
        candidates.append(Path(os.environ[AGENTS_ENV]))
    candidates.append(Path.cwd() / "agents")
    candidates.append(Path(str(resources.files("pase_gym.agents"))))
    for c in candidates:
        if (c / "random" / "agent.py").is_file():
            return c
    return None


def _load_file(path: Path, cls_name: str | None, spec: str) -> type:
    if not path.is_file():
        raise AgentError(f"agent file not found: {path} (from {spec!r})")
    module_name = f"pase_gym_agent_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise AgentError(f"cannot import {path} (from {spec!r})")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # a broken submission must not take the harness down
        raise AgentError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(path.parent))
    return _pick_class(module, cls_name, spec)


def sibling(here: str | Path, name: str) -> Any:
    """``<name>.py`` beside ``here`` (an agent's file or folder), imported once under the
    private name ``_pase_<folder>_<name>``: agents are loaded by path, not as packages, so an
    agent's ``agent.py``, its ``train.py`` and its tests share its other modules this way (and
    a saved object names its classes by that name)."""
    folder = Path(here)
    if folder.suffix == ".py":
        folder = folder.parent
    key = f"_pase_{folder.name}_{name}"
    if key not in sys.modules:
        loader_spec = importlib.util.spec_from_file_location(key, folder / f"{name}.py")
        if loader_spec is None or loader_spec.loader is None:
            raise AgentError(f"cannot import {folder / (name + '.py')}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[key] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]


def _pick_class(module: Any, cls_name: str | None, spec: str) -> type:
    name = cls_name or "Agent"
    obj = getattr(module, name, None)
    if obj is None or not inspect.isclass(obj):
        raise AgentError(f"{spec!r}: no class {name!r} in {getattr(module, '__name__', module)}")
    return obj


def resolve_agent_class(spec: str) -> type:
    """The class an agent spec names.

    Raises:
        AgentError: unknown name, missing file or module, or no such class.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise AgentError(f"expected an agent name, 'module:Class' or a path, found {spec!r}")
    spec = spec.strip()
    if spec in REGISTRY:
        root = agents_dir()
        if root is None:
            raise AgentError(
                f"the reference agent {spec!r} lives in the repository's agents/ folder, which "
                f"was not found; run from the repository or set {AGENTS_ENV}"
            )
        return _load_file(root / spec / "agent.py", None, spec)
    if spec.endswith(".py"):
        return _load_file(Path(spec), None, spec)
    if ".py:" in spec:
        path, _, cls_name = spec.rpartition(":")
        return _load_file(Path(path), cls_name, spec)
    if ":" in spec:
        module_name, _, cls_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise AgentError(
                f"cannot import module {module_name!r} (from {spec!r}): {type(exc).__name__}: {exc}"
            ) from None
        return _pick_class(module, cls_name, spec)
    raise AgentError(
        f"unknown agent {spec!r}: expected one of {', '.join(REGISTRY)}, 'module:Class' or "
        "'path/to/agent.py[:Class]'"
    )


def load_agent(spec: str, **kwargs: Any) -> Agent:
    """Instantiate the agent ``spec`` names (keyword arguments its constructor accepts only).

    Raises:
        AgentError: the spec does not resolve, construction fails, or the object lacks
            ``reset``/``act``.
    """
    cls = resolve_agent_class(spec)
    try:
        params = inspect.signature(cls).parameters
        accepted = {
            k: v
            for k, v in kwargs.items()
            if k in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        }
        agent = cls(**accepted)
    except Exception as exc:
        raise AgentError(f"constructing {spec!r} failed: {type(exc).__name__}: {exc}") from None
    for method in ("reset", "act"):
        if not callable(getattr(agent, method, None)):
            raise AgentError(f"{spec!r} is not an agent: it has no {method}() method")
    return agent


def agent_name(agent: Any, spec: str) -> str:
    """The name results are filed under (``agent.name`` if it has one, else the spec)."""
    name = getattr(agent, "name", None)
    return str(name) if name else spec
