"""The sandboxed side of an agent: ``python -m pase_gym.harness.sandbox_child`` (started by
:mod:`pase_gym.harness.sandbox`, never by hand).

Before the submission's code is imported, this process locks itself in (each step where the
machine allows it; what held is reported to the evaluator and recorded):

1. new mount, network and PID namespaces (as root): no network but a loopback that is down,
   the evaluator's processes invisible, every mount read-only, the files the evaluator names
   (the results file, secrets, the hidden split) replaced by an empty ``/dev/null`` or an empty
   file system, a private empty ``tmpfs`` as the working directory;
2. every capability dropped and ``no_new_privs`` set, so none of that can be undone;
3. resource limits: address space, processes, open files, file size, CPU time.

It then serves requests over two pipes: the evaluator sends pickles (it is trusted), this side
answers JSON only (the evaluator never unpickles what an agent wrote). Frames are a 4-byte
big-endian length and the payload.

The agent does not outlive the evaluator: a third pipe, on which the evaluator never writes,
ends when the evaluator's process does (a crash, a kill, Ctrl-C), and a watchdog then kills
the agent (from outside its PID namespace where there is one: the agent, PID 1 there, ignores
the signals it has no handler for, and may be in a long computation that never reads its
inbox); the agent also dies with the process that watches over it (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import resource
import select
import signal
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_PDEATHSIG = 1
CAP_VERSION_3 = 0x20080522
MAX_REPLY = 1_000_000


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc: Any, source: str | None, target: str, fstype: str | None, flags: int) -> None:
    enc = [None if v is None else v.encode() for v in (source, target, fstype)]
    _check(libc.mount(enc[0], enc[1], enc[2], flags, None), f"mount {target}")


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def lock_in(hide: list[str], workdir: str) -> dict[str, Any]:
    """Namespaces, read-only mounts, hidden files, a private working directory; returns what
    held. Runs as the parent of the agent's process (see :func:`main`)."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID), "unshare")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    for path in hide:  # a file reads as empty, a folder as an empty file system
        if os.path.isdir(path):
            _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY)
        elif os.path.exists(path):
            _mount(libc, "/dev/null", path, None, MS_BIND)
    for point in _mount_points():
        with contextlib.suppress(OSError):  # special file systems may refuse; they stay as is
            _mount(libc, None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    _mount(libc, "tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV)
    return {"namespaces": True, "read_only": True, "hidden": len(hide)}


def drop_privileges() -> bool:
    """No capabilities and no way to gain any (``no_new_privs``); ``False`` where refused."""
    libc = _libc()
    try:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        cap = 0
        while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            cap += 1
        header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)(0, 0, 0, 0, 0, 0)
        _check(libc.capset(header, data), "capset")
    except OSError:
        return False
    return True


def processes_of_this_user() -> int:
    """Processes (and threads' leaders) the user runs now, machine-wide: the kernel counts
    ``RLIMIT_NPROC`` against all of them, whatever the PID namespace."""
    uid = os.getuid()
    running = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    running += len(os.listdir(entry / "task"))
    return running


def set_limits(memory_mb: int, cpu_s: int, processes: int, running: int) -> None:
    """Address space, CPU seconds, processes (``processes`` above the ``running`` ones),
    open files and file size."""
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_NPROC, (running + processes, running + processes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024 * 1024, 64 * 1024 * 1024))


# ---- the request loop -----------------------------------------------------------------------
def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    (size,) = struct.unpack(">I", _read_exact(fd, 4))
    return pickle.loads(_read_exact(fd, size))  # from the evaluator: trusted


def _reply(fd: int, message: dict[str, Any]) -> None:
    payload = json.dumps(message, default=_plain).encode("utf-8")
    if len(payload) > MAX_REPLY:
        payload = json.dumps({"error": f"reply of {len(payload)} bytes is too long"}).encode()
    os.write(fd, struct.pack(">I", len(payload)) + payload)


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a {type(value).__name__} is not an action")


def _answer(action: Any) -> dict[str, Any]:
    from pase_gym.sim.plan import Call, Plan

    if isinstance(action, Plan | Call):
        return {"plan": str(action)}
    if isinstance(action, str):
        return {"plan": action}
    try:
        json.dumps(action, default=_plain)
    except (TypeError, ValueError) as exc:
        return {"invalid": str(exc)}
    return {"action": action}


def serve(inbox: int, outbox: int) -> None:
    """Answer the evaluator's requests until it says ``close`` or the pipe ends."""
    agent: Any = None
    while True:
        try:
            request = _receive(inbox)
        except EOFError:
            return
        kind = request[0]
        try:
            if kind == "init":
                from pase_gym.harness.agent import agent_name, load_agent

                _, spec, kwargs = request
                agent = load_agent(spec, **kwargs)
                name = agent_name(agent, spec)
                truth = bool(getattr(agent, "uses_ground_truth", False))
                _reply(outbox, {"ok": True, "name": name, "uses_ground_truth": truth})
            elif kind == "reset":
                agent.reset(int(request[1]))
                _reply(outbox, {"ok": True})
            elif kind == "act":
                from pase_gym.harness.agent import forget_feasibility, reported_feasibility

                forget_feasibility(agent)
                answer = _answer(agent.act(request[1], request[2]))
                score = reported_feasibility(agent)
                _reply(outbox, {"ok": True, **answer, "feasibility": score})
            elif kind == "close":
                return
        except (Exception, SystemExit) as exc:  # the agent's failure is reported, not fatal
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            _reply(outbox, {"error": text[-2000:]})


def watch(lifeline: int, then: Callable[[], None]) -> threading.Thread:
    """Call ``then`` when the evaluator is gone: when ``lifeline`` (a pipe the evaluator holds
    open and never writes on) reaches its end. Runs in a daemon thread, which it returns."""

    def wait() -> None:
        try:
            while os.read(lifeline, 1):
                pass  # the evaluator writes nothing; a stray byte is not an ending
        except OSError:
            pass  # closed under us (only the agent's own code could): the same ending
        then()

    thread = threading.Thread(target=wait, name="pase-sandbox-lifeline", daemon=True)
    thread.start()
    return thread


def wait_for(pid: int, lifeline: int | None) -> int:
    """Wait for the agent's process ``pid`` to end and return its exit status (``128 + N``
    for a signal N); kill it first if ``lifeline`` ends (the evaluator is gone: SIGKILL from
    outside its PID namespace reaches its PID 1). No thread: a process that unshared its PID
    namespace cannot start one."""
    if lifeline is not None:
        try:
            exited: int | None = os.pidfd_open(pid)  # readable once the process has ended
        except (AttributeError, OSError):  # an older kernel: look every half second
            exited = None
        poller = select.poll()  # (not select(): the evaluator's fd numbers may pass 1024)
        poller.register(lifeline, select.POLLIN)
        if exited is not None:
            poller.register(exited, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll(500 if exited is None else None)}
            if lifeline in ready and not _alive(lifeline):
                os.kill(pid, signal.SIGKILL)
                break
            if exited is not None:
                if exited in ready:
                    break
            else:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return _exit_status(status)
        if exited is not None:
            os.close(exited)
    _, status = os.waitpid(pid, 0)
    return _exit_status(status)


def _exit_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code & 0xFF


def _alive(lifeline: int) -> bool:
    """Whether the lifeline that poll() found readable still holds (a stray byte)."""
    try:
        return bool(os.read(lifeline, 1))
    except OSError:
        return False


def _kill_self() -> None:
    """Kill this process and every process it started (its group: the evaluator starts it in a
    session of its own)."""
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _pid_namespace_unshared() -> bool:
    """Whether this process's children go to another PID namespace than its own (``unshare``
    succeeded even if the rest of :func:`lock_in` did not): then it cannot start a thread."""
    try:
        return os.readlink("/proc/self/ns/pid") != os.readlink("/proc/self/ns/pid_for_children")
    except OSError:
        return False


def _parent_pid() -> int:
    """The parent's PID as this machine's ``/proc`` numbers it (inside a new PID namespace
    ``os.getppid()`` says 0; read before the namespace's own ``/proc`` is mounted)."""
    stat = Path("/proc/self/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def main() -> int:
    """``python -m pase_gym.harness.sandbox_child CONFIG_JSON``."""
    config = json.loads(sys.argv[1])
    inbox, outbox = int(config["inbox"]), int(config["outbox"])
    lifeline = config.get("lifeline")
    held: dict[str, Any] = {"namespaces": False, "read_only": False, "hidden": 0}
    running = processes_of_this_user()  # counted while the machine's /proc is still visible
    if config.get("namespaces", True) and os.geteuid() == 0:
        try:
            held = lock_in(list(config.get("hide", [])), config["workdir"])
        except OSError as exc:
            held["error"] = str(exc)
    if held["namespaces"] or _pid_namespace_unshared():
        watcher = os.getpid()
        pid = os.fork()  # the agent runs as PID 1 of the new PID namespace
        if pid:
            os.close(inbox)
            os.close(outbox)
            return wait_for(pid, None if lifeline is None else int(lifeline))
        libc = _libc()
        # the agent dies with its watcher; a watcher gone before this line is caught below
        _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        if _parent_pid() != watcher:
            os._exit(1)
        if lifeline is not None:
            os.close(int(lifeline))
        if held["namespaces"]:
            _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV)  # our PID namespace's
    elif lifeline is not None:  # one process: the agent watches for the evaluator itself
        watch(int(lifeline), _kill_self)
    os.chdir(config["workdir"])
    held["capabilities_dropped"] = drop_privileges() if os.geteuid() == 0 else True
    set_limits(int(config["memory_mb"]), int(config["cpu_s"]), int(config["processes"]), running)
    os.environ["HOME"] = config["workdir"]
    sys.stdout = sys.stderr  # an agent's print() must not reach the pipe
    _reply(outbox, {"ok": True, "held": held})
    serve(inbox, outbox)
    return 0


if __name__ == "__main__":
    sys.exit(main())
