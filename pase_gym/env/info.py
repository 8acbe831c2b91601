"""The step's ``info``: a plain ``dict`` whose costly entries are computed when first read.

The scene description (text for language-model agents) takes a tenth of a step to write, and
most learners never read it. :class:`LazyInfo` holds such an entry as a function of what was
observed at the step (its inputs are snapshots, so reading it later gives the same text) and
calls it on first access, through any of ``dict``'s ways in: ``info[key]``, ``get``, iteration
over ``items()``/``values()``, ``dict(info)``, ``{**info}``, ``copy``, pickling, ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

_MISSING = object()


class Lazy:
    """A value of a :class:`LazyInfo` entry, computed by ``compute()`` on first read (a
    ``Lazy`` is never handed out: reading the entry gives what ``compute`` returns)."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[], Any]) -> None:
        self.compute = compute


class LazyInfo(dict[str, Any]):
    """A ``dict`` some of whose values are computed on first read (then kept): those given
    as :class:`Lazy`."""

    def __init__(self, entries: dict[str, Any]) -> None:
        super().__init__(entries)

    def _value(self, key: str, value: Any) -> Any:
        if isinstance(value, Lazy):
            value = value.compute()
            super().__setitem__(key, value)
        return value

    def pending(self) -> list[str]:
        """The keys whose values have not been computed yet."""
        return [k for k, v in super().items() if isinstance(v, Lazy)]

    def resolve(self) -> LazyInfo:
        """Compute every pending value now (and return ``self``)."""
        for key in self.pending():
            self._value(key, super().__getitem__(key))
        return self

    def __getitem__(self, key: str) -> Any:
        return self._value(key, super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key, _MISSING)
        return default if value is _MISSING else self._value(key, value)

    def __iter__(self) -> Iterator[str]:
        # Overridden so that dict(info) and {**info} go through __getitem__.
        return iter(list(super().keys()))

    def items(self) -> Any:
        return self.resolve()._plain().items()

    def values(self) -> Any:
        return self.resolve()._plain().values()

    def _plain(self) -> dict[str, Any]:
        return dict(super().items())

    def copy(self) -> dict[str, Any]:
        return self.resolve()._plain()

    def pop(self, key: str, *default: Any) -> Any:
        value = super().pop(key, *default)
        return self._value(key, value) if isinstance(value, Lazy) else value

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        return key, value.compute() if isinstance(value, Lazy) else value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        super().__setitem__(key, default)
        return default

    def __eq__(self, other: object) -> bool:
        return self.resolve()._plain() == (
            other.resolve()._plain() if isinstance(other, LazyInfo) else other
        )

    __hash__ = None

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.copy() | other

    def __repr__(self) -> str:
        return repr(self.resolve()._plain())

    def __reduce__(self) -> Any:
        # pickled (subprocess vector envs, Ray) as the plain dict it stands for
        return (dict, (self.resolve()._plain(),))
