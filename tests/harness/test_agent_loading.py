"""How agents are named and loaded: registry names, ``module:Class``, ``path.py[:Class]``."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pase_gym.errors import PaseGymError
from pase_gym.harness.agent import (
    REGISTRY,
    Agent,
    AgentError,
    agent_name,
    load_agent,
    resolve_agent_class,
)

MINIMAL = """
class Agent:
    name = "minimal"

    def reset(self, seed):
        self.seed = seed

    def act(self, observation, info):
        return "Wait(10)"


class Other:
    def reset(self, seed):
        pass

    def act(self, observation, info):
        return "Wait(5)"
"""


def write(tmp_path: Path, source: str, name: str = "my_agent.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


# -- what resolves -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["random", "oracle"])
def test_registry_names_resolve(name: str) -> None:
    assert name in REGISTRY
    agent = load_agent(name)
    assert isinstance(agent, Agent)
    assert agent_name(agent, name) == name
    assert resolve_agent_class(name).__name__ == "Agent"


def test_only_the_oracle_declares_ground_truth() -> None:
    assert load_agent("oracle").uses_ground_truth is True
    assert not getattr(load_agent("random"), "uses_ground_truth", False)


def test_registry_name_is_trimmed() -> None:
    assert agent_name(load_agent("  random "), "random") == "random"


def test_path_to_a_file_loads_its_agent_class(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    agent = load_agent(str(path))
    assert type(agent).__name__ == "Agent"
    assert agent.act({}, {}) == "Wait(10)"
    assert agent_name(agent, str(path)) == "minimal"


def test_path_with_class_name(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    agent = load_agent(f"{path}:Other")
    assert type(agent).__name__ == "Other"
    assert agent.act({}, {}) == "Wait(5)"
    # no name attribute: results are filed under the spec
    assert agent_name(agent, f"{path}:Other") == f"{path}:Other"


def test_a_file_can_import_its_siblings(tmp_path: Path) -> None:
    write(tmp_path, "PLAN = 'Wait(7)'\n", f"helper_{uuid.uuid4().hex}.py")
    helper = next(tmp_path.glob("helper_*.py")).stem
    path = write(
        tmp_path,
        f"""
        from {helper} import PLAN

        class Agent:
            def reset(self, seed):
                pass

            def act(self, observation, info):
                return PLAN
        """,
    )
    assert load_agent(str(path)).act({}, {}) == "Wait(7)"
    assert str(tmp_path) not in sys.path  # the folder is not left on the path


def test_module_colon_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"pase_test_agents_{uuid.uuid4().hex}"
    write(tmp_path, MINIMAL, f"{module}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert type(load_agent(f"{module}:Other")).__name__ == "Other"
        assert agent_name(load_agent(f"{module}:Agent"), "x") == "minimal"
    finally:
        sys.modules.pop(module, None)


def test_minimal_class_without_init_loads_and_ignores_device(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    agent = load_agent(str(path), device="cuda")
    assert not hasattr(agent, "device")


def test_device_is_passed_only_to_agents_that_accept_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        class Agent:
            def __init__(self, device="cpu"):
                self.device = device

            def reset(self, seed):
                pass

            def act(self, observation, info):
                return "Wait(10)"


        class Kw:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

            def reset(self, seed):
                pass

            def act(self, observation, info):
                return "Wait(10)"


        class Strict:
            def __init__(self):
                self.built = True

            def reset(self, seed):
                pass

            def act(self, observation, info):
                return "Wait(10)"
        """,
    )
    assert load_agent(str(path), device="cuda").device == "cuda"
    assert load_agent(str(path)).device == "cpu"
    assert load_agent(f"{path}:Kw", device="cuda").kwargs == {"device": "cuda"}
    assert load_agent(f"{path}:Strict", device="cuda").built is True


# -- what does not -----------------------------------------------------------------------------


def test_agent_error_is_a_value_error() -> None:
    assert issubclass(AgentError, ValueError)
    assert issubclass(AgentError, PaseGymError)


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec(spec: str) -> None:
    with pytest.raises(AgentError, match="expected an agent name"):
        load_agent(spec)


def test_non_string_spec() -> None:
    with pytest.raises(AgentError, match="expected an agent name"):
        load_agent(None)  # type: ignore[arg-type]


def test_unknown_name_lists_the_registry() -> None:
    with pytest.raises(AgentError, match="unknown agent 'rnadom'") as info:
        load_agent("rnadom")
    for name in REGISTRY:
        assert name in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.py"
    with pytest.raises(AgentError, match="agent file not found") as info:
        load_agent(str(path))
    assert str(path) in str(info.value)
    with pytest.raises(AgentError, match="agent file not found"):
        load_agent(f"{path}:Agent")


def test_file_that_raises_on_import_names_file_and_exception(tmp_path: Path) -> None:
    path = write(tmp_path, "import math\nX = 1 / 0\n", "broken.py")
    with pytest.raises(AgentError) as info:
        load_agent(str(path))
    message = str(info.value)
    assert str(path) in message
    assert "ZeroDivisionError" in message
    assert "division by zero" in message
    assert str(tmp_path) not in sys.path


def test_file_with_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "class Agent(:\n", "syntax.py")
    with pytest.raises(AgentError, match="SyntaxError") as info:
        load_agent(str(path))
    assert str(path) in str(info.value)


def test_missing_class(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(AgentError, match="no class 'Nope'"):
        load_agent(f"{path}:Nope")
    no_default = write(tmp_path, "class Mine:\n    pass\n", "no_default.py")
    with pytest.raises(AgentError, match="no class 'Agent'"):
        load_agent(str(no_default))


def test_name_that_is_not_a_class(tmp_path: Path) -> None:
    path = write(tmp_path, "def Agent():\n    return None\n", "func.py")
    with pytest.raises(AgentError, match="no class 'Agent'"):
        load_agent(str(path))


def test_missing_module() -> None:
    with pytest.raises(AgentError, match="cannot import module 'no_such_module_xyz'") as info:
        load_agent("no_such_module_xyz:Agent")
    assert "ModuleNotFoundError" in str(info.value)


def test_module_without_the_class() -> None:
    with pytest.raises(AgentError, match="no class 'Nope'"):
        load_agent("pase_gym.harness.agent:Nope")


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ("    def act(self, observation, info):\n        return 'Wait(1)'\n", "reset"),
        ("    def reset(self, seed):\n        pass\n", "act"),
        ("    act = 3\n    def reset(self, seed):\n        pass\n", "act"),
    ],
    ids=["no-reset", "no-act", "act-not-callable"],
)
def test_class_without_reset_or_act(tmp_path: Path, body: str, missing: str) -> None:
    path = write(tmp_path, "class Agent:\n" + body, "half.py")
    with pytest.raises(AgentError, match=rf"not an agent: it has no {missing}\(\) method"):
        load_agent(str(path))


def test_constructor_that_raises(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        class Agent:
            def __init__(self):
                raise RuntimeError("weights not found")

            def reset(self, seed):
                pass

            def act(self, observation, info):
                return "Wait(10)"
        """,
    )
    with pytest.raises(
        AgentError, match=r"constructing .* failed: RuntimeError: weights not found"
    ):
        load_agent(str(path))


def test_constructor_with_a_required_argument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        class Agent:
            def __init__(self, checkpoint):
                self.checkpoint = checkpoint

            def reset(self, seed):
                pass

            def act(self, observation, info):
                return "Wait(10)"
        """,
    )
    with pytest.raises(AgentError, match=r"constructing .* failed: TypeError"):
        load_agent(str(path), device="cpu")
