"""Reading a scenario file's YAML with bounds checked before anything is built.

YAML lets a few hundred bytes stand for an exponential amount of data (anchors and aliases
nested in each other: the "billion laughs"), and PyYAML silently keeps the last of two
duplicate keys. :func:`read_yaml` therefore reads in three stages:

1. the file's size (at most :data:`MAX_FILE_BYTES`) and its encoding (UTF-8);
2. the node graph PyYAML composes (aliases are shared nodes there, nothing is expanded yet):
   its size *as if* every alias were expanded (at most :data:`MAX_EXPANDED_NODES`), its depth
   (at most :data:`MAX_DEPTH`), no alias that contains itself, no duplicate key in a mapping
   (merge keys ``<<`` excepted: overriding a merged value is what they are for);
3. only then the Python objects are constructed (PyYAML's safe constructor: no tags that build
   arbitrary objects).

Every problem is a :class:`~pase_gym.errors.ScenarioError` naming the file and, where there is
one, the line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from pase_gym.errors import ScenarioError

MAX_FILE_BYTES = 1_000_000
"""Largest scenario file read (a real one is a few hundred bytes)."""

MAX_EXPANDED_NODES = 10_000
"""Most YAML nodes a file may stand for once its aliases are expanded."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and sequences (a scenario needs four levels)."""

MERGE_TAG = "tag:yaml.org,2002:merge"
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_keys(node: yaml.MappingNode, source: str) -> None:
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if key.tag == MERGE_TAG or not isinstance(key, yaml.ScalarNode):
            continue
        ident = (key.tag, key.value)
        if ident in seen:
            shown = key.value if len(key.value) <= 40 else key.value[:37] + "..."
            raise ScenarioError(
                f"duplicate key {shown!r} at {_where(key)} (YAML would keep only the last one)",
                source=source,
            )
        seen.add(ident)


def check_graph(root: yaml.Node, source: str) -> int:
    """Check the bounds of a composed YAML node graph; returns its expanded node count.

    The walk visits each distinct node once (memoised), so an alias bomb is measured in the
    time its few hundred bytes take to read, not in the time its expansion would.

    Raises:
        ScenarioError: too many nodes once expanded, too deep, a recursive alias or a
            duplicate key.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            visiting.discard(key)
            if size[key] > MAX_EXPANDED_NODES:
                raise ScenarioError(
                    f"the YAML stands for more than {MAX_EXPANDED_NODES} values once its "
                    f"aliases are expanded (at {_where(node)}); a scenario needs a few dozen",
                    source=source,
                )
            if depth[key] > MAX_DEPTH:
                raise ScenarioError(
                    f"the YAML is nested more than {MAX_DEPTH} levels deep (at {_where(node)})",
                    source=source,
                )
            continue
        if key in size:
            continue
        if key in visiting:
            raise ScenarioError(f"an alias contains itself (at {_where(node)})", source=source)
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, source)
        visiting.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)
    return size[id(root)]


def flow_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``text``, counted on the raw characters (quoted
    ones too: an over-estimate, never an under-estimate), in one vectorised pass."""
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    steps = np.isin(raw, _OPEN).astype(np.int64) - np.isin(raw, _CLOSE).astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


def parse_yaml(text: str, source: str) -> object:
    """The data of one YAML document, bounds checked before it is constructed.

    Raises:
        ScenarioError: malformed YAML, more than one document, or a bound exceeded.
    """
    # PyYAML scans deeply nested flow collections in quadratic time: refuse them unread
    if flow_depth(text) > 4 * MAX_DEPTH:
        raise ScenarioError(
            f"the YAML is nested more than {MAX_DEPTH} levels deep ([ and {{ brackets)",
            source=source,
        )
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        check_graph(root, source)
        return loader.construct_document(root)
    except RecursionError:
        raise ScenarioError(
            "the YAML is nested too deeply to be a scenario", source=source
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ScenarioError(f"malformed YAML at {where}: {exc.problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"malformed YAML: {exc}", source=source) from None
    finally:
        loader.dispose()


def read_yaml(path: Path) -> object:
    """Read and parse a scenario file with every bound checked (see the module docstring).

    Raises:
        ScenarioError: unreadable, too large, not UTF-8, malformed, or over a bound.
    """
    source = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror}", source=source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(f"file is larger than {MAX_FILE_BYTES} bytes", source=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError("expected UTF-8 text", source=source) from None
    return parse_yaml(text, source)


def read_mapping(path: Path, what: str) -> dict[str, object]:
    """A bounded YAML file (:func:`read_yaml`) that must hold a mapping of ``what`` keys.

    Raises:
        ScenarioError: unreadable, malformed, over a bound, or not a mapping.
    """
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"expected a mapping of {what} keys", source=str(path))
    return data
