"""The one module of exceptions that user-facing validation raises.

Every error says where the problem is, what was expected and what was found, so that a user
can fix a plan, a scenario file or a command line without reading a traceback.
"""

from __future__ import annotations


class PaseGymError(Exception):
    """Base class of every error pase-gym raises on purpose."""


class PlanError(PaseGymError, ValueError):
    """A recovery plan is malformed or does not fit the primitive library.

    Attributes:
        position: 0-based character offset in the plan text (or step index for structured
            plans) where the problem was found, or ``None`` when it concerns the whole plan.
        expected: what the parser or validator expected there.
        found: what it found instead.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.position = position
        self.expected = expected
        self.found = found
        parts = [message]
        if position is not None:
            parts.append(f"at position {position}")
        if expected is not None:
            parts.append(f"expected {expected}")
        if found is not None:
            parts.append(f"found {found}")
        super().__init__(": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else message)


class ScenarioError(PaseGymError, ValueError):
    """A scenario file or scenario mapping is broken.

    Attributes:
        source: the file (or ``"<mapping>"``) the scenario came from.
        key: dotted path of the offending key, e.g. ``faults.0.onset``, or ``None``.
    """

    def __init__(self, message: str, *, source: str = "<mapping>", key: str | None = None) -> None:
        self.source = source
        self.key = key
        where = source if key is None else f"{source}: {key}"
        super().__init__(f"{where}: {message}")


class TopologyError(PaseGymError, ValueError):
    """A topology request (size, profile, node name) cannot be satisfied."""


class SimulationError(PaseGymError, RuntimeError):
    """The simulator was asked to do something its state does not allow (a bug or misuse)."""
