"""Data flows one way: no import cycle between the modules or the subpackages of pase_gym.

Every ``import`` counts, wherever it is written (module level, inside a function, under
``TYPE_CHECKING``): a cycle hidden behind a function-level import is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pase_gym"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, package: str, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        names = [base, *(f"{base}.{a.name}" for a in node.names)]
    else:
        return []
    return [n for n in names if n in modules]


def import_graph() -> nx.DiGraph:
    """Module -> module it imports, for every module of the package."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _imported(node, package, set(files)):
                if target != name:
                    graph.add_edge(name, target)
    return graph


def _unit(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<package>"


def test_the_graph_sees_the_modules() -> None:
    graph = import_graph()
    assert graph.has_edge("pase_gym.sim.transition", "pase_gym.sim.dynamics")
    assert graph.has_edge("pase_gym.sim.oracle", "pase_gym.sim.faults")
    assert graph.number_of_nodes() > 60


def test_no_module_imports_itself_back() -> None:
    cycles = sorted(nx.simple_cycles(import_graph()), key=len)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_no_subpackage_imports_itself_back() -> None:
    units = nx.DiGraph()
    for a, b in import_graph().edges():
        if _unit(a) != _unit(b) and "<package>" not in (_unit(a), _unit(b)):
            units.add_edge(_unit(a), _unit(b))
    cycles = list(nx.simple_cycles(units))
    assert not cycles, f"subpackage cycles: {cycles}"


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("sim", "env"),
        ("sim", "harness"),
        ("sim", "scenarios"),
        ("scenarios", "env"),
        ("datasets", "env"),
        ("datasets", "harness"),
        ("env", "harness"),
        ("sim", "worldmodel"),
        ("env", "worldmodel"),
        ("harness", "worldmodel"),
        ("worldmodel", "llm"),
    ],
)
def test_the_core_does_not_import_the_layers_above_it(low: str, high: str) -> None:
    offending = [(a, b) for a, b in import_graph().edges() if _unit(a) == low and _unit(b) == high]
    assert not offending, f"{low} must not import {high}: {offending}"
