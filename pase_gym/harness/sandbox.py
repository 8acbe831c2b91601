"""Sandboxed agents: a submission runs in its own locked-in process and talks over a pipe.

:class:`SandboxedAgent` looks like any agent to the harness (``reset``, ``act``, ``name``) but
the submission's code lives in a child process (:mod:`pase_gym.harness.sandbox_child`) that
receives observations and ``info`` and answers plans. It never holds the env, the simulator or
the ground truth, so walking the stack or the garbage collector finds nothing, and patching
``pase_gym`` from inside ``act`` patches only its own copy. As root (as on our machines and CI)
the child also gets no network, a read-only file system with the results file replaced by an
empty one, a private empty working directory and no capabilities; everywhere it gets resource
limits (:class:`Limits`) and a clean environment (no secrets in its variables).

What the sandbox does with a misbehaving submission:

* an exception in ``act`` or ``reset``: reported like any agent error (the step is a
  penalised no-op; the episode goes on);
* too slow (a decision over ``Limits.decision_s``, an episode's decisions over
  ``Limits.episode_s``), dead (a crash, a memory or process bomb that killed it), or an answer
  that is not a short JSON message: :class:`SandboxError`; the process group is killed,
  the episode ends there, scored as failed with the reason, and the next episode starts a
  fresh process.

The evaluator reads only JSON from the child: it never unpickles what an agent wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pase_gym.env.actions import Rejected
from pase_gym.errors import AgentError, PlanError

logger = logging.getLogger(__name__)

MAX_REPLY = 1_000_000  # bytes an answer may take
STARTUP_S = 120.0  # importing torch and a model may take a while on a busy machine


@dataclass(frozen=True)
class Limits:
    """What a sandboxed agent may use."""

    decision_s: float = 60.0  # wall-clock seconds for one act()
    episode_s: float = 1800.0  # wall-clock seconds for all act() calls of an episode
    memory_mb: int = 8192  # address space
    processes: int = 256  # processes and threads beyond those running when it starts
    cpu_s: int = 6 * 3600  # CPU seconds over the process's life (a backstop)
    namespaces: bool = True  # namespaces and a read-only file system, where allowed (root)


def namespaces_available() -> bool:
    """Whether this machine lets the sandbox make its namespaces (root, and a kernel or
    container that allows ``unshare``); without them it is a resource-limited process only."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--mount", "--net", "--pid", "--fork", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class SandboxError(Exception):
    """The sandboxed agent was stopped: too slow, dead, or it broke the protocol."""


class AgentActError(Exception):
    """The agent's ``act`` or ``reset`` raised; the message is its exception, as text."""


def _absolute(spec: str) -> str:
    """A file spec with an absolute path (the child works in an empty directory)."""
    if spec.endswith(".py"):
        return str(Path(spec).resolve())
    if ".py:" in spec:
        path, _, cls = spec.rpartition(":")
        return f"{Path(path).resolve()}:{cls}"
    return spec


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


class SandboxedAgent:
    """An agent spec run in a locked-in child process (see the module docstring).

    Args:
        spec: ``path/to/agent.py[:Class]`` or ``module:Class`` (or a registry name).
        device: passed to the agent's constructor, as in-process.
        limits: the resource and time limits.
        hide: files the agent must not see (the results file, secrets): each reads as empty.

    Raises:
        AgentError: the agent cannot be imported or built, or it reads the ground truth (which
            only an in-process agent is handed).
    """

    isolation = "process"

    def __init__(
        self,
        spec: str,
        *,
        device: str = "cpu",
        limits: Limits | None = None,
        hide: Sequence[str | Path] = (),
    ) -> None:
        self.spec = _absolute(spec)
        self.device = device
        self.limits = limits or Limits()
        self.hide = [str(Path(p).resolve()) for p in hide]
        self.name = spec
        self.held: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._spent = 0.0
        self.last_feasibility: float | None = None  # the agent's F of its last plan
        self._start()

    # -- the process ------------------------------------------------------------------------
    def _start(self) -> None:
        self._workdir = tempfile.mkdtemp(prefix="pase-sandbox-")
        handle, log_name = tempfile.mkstemp(prefix="pase-sandbox-", suffix=".log")
        os.close(handle)
        self._log_path = Path(log_name)
        inbox_r, inbox_w = os.pipe()
        outbox_r, outbox_w = os.pipe()
        # nothing is ever written here: the child sees the end of this pipe when the evaluator
        # is gone (however it died) and stops the agent, which would otherwise run on
        lifeline_r, lifeline_w = os.pipe()
        config = {
            "inbox": inbox_r,
            "outbox": outbox_w,
            "lifeline": lifeline_r,
            "workdir": self._workdir,
            "hide": self.hide,
            **asdict(self.limits),
        }
        from pase_gym.devices import THREADS_ENV
        from pase_gym.harness.agent import AGENTS_ENV, agents_dir
        from pase_gym.llm.models import CACHE_ENV, default_cache_dir

        root = agents_dir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **({AGENTS_ENV: str(root.resolve())} if root is not None else {}),
            # converted models are read from the evaluator's cache (read-only in there)
            CACHE_ENV: str(default_cache_dir().resolve()),
            "LANG": "C.UTF-8",
            "HOME": self._workdir,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            # the agent's share of the cores (set per worker by pase-bench run --workers)
            **({THREADS_ENV: os.environ[THREADS_ENV]} if THREADS_ENV in os.environ else {}),
        }
        try:
            with self._log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "pase_gym.harness.sandbox_child", json.dumps(config)],
                    pass_fds=(inbox_r, outbox_w, lifeline_r),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    env=env,
                    cwd=self._workdir,
                    start_new_session=True,
                )
        except BaseException:  # nothing started: no pipe end may stay open
            for fd in (inbox_r, inbox_w, outbox_r, outbox_w, lifeline_r, lifeline_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        os.close(inbox_r)
        os.close(outbox_w)
        os.close(lifeline_r)
        self._to_child, self._from_child, self._lifeline = inbox_w, outbox_r, lifeline_w
        try:
            hello = self._read(STARTUP_S, "starting")
            self.held = dict(hello.get("held", {}))
            reply = self._request(("init", self.spec, {"device": self.device}), STARTUP_S, "init")
        except SandboxError as exc:
            self.close()
            raise AgentError(f"{self.spec!r} could not start in the sandbox: {exc}") from None
        if "error" in reply:
            self.close()
            raise AgentError(f"{self.spec!r} failed to load in the sandbox: {reply['error']}")
        if reply.get("uses_ground_truth"):
            self.close()
            raise AgentError(
                f"{self.spec!r} reads the ground truth, which only an in-process agent is "
                "handed: run it with --in-process (and its results say so)"
            )
        self.name = str(reply.get("name") or self.spec)
        if not self.held.get("namespaces"):
            logger.warning(
                "%s: the sandbox runs without namespaces here (%s): the agent is a separate "
                "process with resource limits, but it can reach the network and the file system",
                self.spec,
                self.held.get("error", "not root"),
            )

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()

    def close(self, *, graceful: bool = True) -> None:
        """Stop the child (asking it first when ``graceful``, then killing its process
        group) and remove its files."""
        proc = self._proc
        if graceful and proc is not None and proc.poll() is None:
            try:
                os.write(self._to_child, _frame(pickle.dumps(("close",))))
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        for name in ("_to_child", "_from_child", "_lifeline"):
            fd = getattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_child = self._from_child = self._lifeline = None  # type: ignore[assignment]
        self._proc = None
        shutil.rmtree(getattr(self, "_workdir", ""), ignore_errors=True)
        if getattr(self, "_log_path", None) is not None:
            self._log_path.unlink(missing_ok=True)

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        with contextlib.suppress(Exception):
            self.close()

    def _last_words(self) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""
        return f"; its last output: {text.splitlines()[-1][:300]}" if text else ""

    def _fail(self, reason: str) -> SandboxError:
        words = self._last_words()
        self.close(graceful=False)  # a stopped agent is not asked: it may not be listening
        return SandboxError(reason + words)

    # -- the protocol -----------------------------------------------------------------------
    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        chunks: list[bytes] = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"{what} took longer than its time limit")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                raise self._fail(f"{what} took longer than its time limit")
            chunk = os.read(self._from_child, min(n, 1 << 20))
            if not chunk:
                code = self._proc.wait() if self._proc is not None else None
                how = (
                    f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
                )
                raise self._fail(f"the agent's process died during {what} ({how})")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read(self, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        (size,) = struct.unpack(">I", self._read_exact(4, deadline, what))
        if size > MAX_REPLY:
            raise self._fail(f"{what}: an answer of {size} bytes (at most {MAX_REPLY})")
        try:
            message = json.loads(self._read_exact(size, deadline, what).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise self._fail(f"{what}: an answer that is not JSON") from None
        if not isinstance(message, dict):
            raise self._fail(f"{what}: an answer that is not a JSON object")
        return message

    def _request(self, message: tuple[Any, ...], timeout: float, what: str) -> dict[str, Any]:
        if self._proc is None:
            raise SandboxError("the agent's process is not running")
        try:
            os.write(self._to_child, _frame(pickle.dumps(message)))
        except OSError:
            raise self._fail(f"the agent's process is gone ({what})") from None
        return self._read(timeout, what)

    # -- the agent interface ----------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Start an episode (a fresh process if the last one was stopped)."""
        if self._proc is None:
            self._start()
        self._spent = 0.0
        reply = self._request(("reset", int(seed)), self.limits.decision_s, "reset()")
        if "error" in reply:
            raise AgentActError(str(reply["error"]))

    def act(self, observation: dict[str, Any], info: dict[str, Any]) -> Any:
        """The agent's answer: plan text, a structured action (plain JSON), or a
        :class:`~pase_gym.env.actions.Rejected` for an answer that is neither."""
        left = self.limits.episode_s - self._spent
        if left <= 0:
            raise self._fail(f"the episode's decisions took over {self.limits.episode_s:g} s")
        start = time.monotonic()
        try:
            reply = self._request(
                ("act", observation, info), min(self.limits.decision_s, left), "act()"
            )
        finally:
            self._spent += time.monotonic() - start
        if "error" in reply:
            raise AgentActError(str(reply["error"]))
        score = reply.get("feasibility")
        self.last_feasibility = float(score) if isinstance(score, float) else None
        if "plan" in reply and isinstance(reply["plan"], str):
            return reply["plan"]
        if "action" in reply:
            return reply["action"]
        return Rejected(PlanError("the agent's answer is not a plan", found=str(reply)[:80]))
