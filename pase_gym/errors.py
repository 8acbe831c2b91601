"""The one module of exceptions that user-facing validation raises.

Every error says where the problem is, what was expected and what was found, so that a user
can fix a plan, a scenario file or a command line without reading a traceback. Every class
lives here; the modules that raise one re-export it under its old name for convenience.
"""

from __future__ import annotations

from pathlib import Path


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


class ResultsError(PaseGymError, ValueError):
    """A results file cannot be read, or a record in it is malformed."""


class SuiteError(PaseGymError, ValueError):
    """A suite file or suite name is broken."""


class AgentError(PaseGymError, ValueError):
    """An agent spec cannot be resolved, or the object it names is not an agent."""


class ConstraintError(PaseGymError, ValueError):
    """The constraint cannot be built (e.g. no node names) or the vocabulary cannot spell a plan."""


class ModelError(PaseGymError, RuntimeError):
    """A language model cannot be loaded."""


class ModelNotInstalledError(ModelError):
    """The wheel carrying the model (or transformers itself) is not installed."""


class ModelPathError(ModelError, FileNotFoundError):
    """A local model path does not exist or holds no loadable causal LM."""


class FinetuneError(PaseGymError, ValueError):
    """Fine-tuning cannot run as asked (no demonstrations, bad settings, a broken adapter)."""


class DatasetError(PaseGymError, ValueError):
    """The data set is missing or malformed, or a request on it cannot be met.

    Attributes:
        path: the file or folder concerned, or ``None`` when the problem is not in a file.
        line: 1-based line number in ``path`` (the header is line 1), or ``None``.
        column: 1-based column number in ``path``, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        self.column = column
        where = [] if path is None else [str(path)]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class EnvCheckError(PaseGymError, AssertionError):
    """An env (or a scenario run on it) fails one of the conformance checks."""


class DeviceError(PaseGymError, ValueError):
    """A torch device is misspelt, or names CUDA (or a CUDA index) that torch does not see."""


class SubmissionError(PaseGymError, ValueError):
    """A leaderboard submission's folder or manifest is invalid (names the file and the key)."""


class WorldModelError(PaseGymError, ValueError):
    """A verifier's input (an observation, a plan, a weights file, a data set) is not what it
    expects; the message says what was expected and where."""
