"""Which torch device a model runs on: one rule for every agent and training command.

A device is spelt ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``N`` a CUDA device index):

* ``auto``: ``cuda`` when torch sees a CUDA device, else ``cpu`` (also ``cpu`` when torch is
  not installed);
* ``cpu``: always ``cpu`` (torch is not even imported);
* ``cuda`` / ``cuda:N``: returned as given when torch sees CUDA (and, for ``cuda:N``, at least
  ``N + 1`` devices); otherwise a :class:`~pase_gym.errors.DeviceError`: an explicit request
  for a GPU never falls back to the CPU silently;
* any other spelling: a :class:`~pase_gym.errors.DeviceError`.

torch is imported inside :func:`resolve_device` only, so this module imports without it.

How many CPU threads a model agent gives torch: :func:`cpu_threads` (the agent's own
``threads`` when given, else ``PASE_GYM_THREADS``, else 2). ``pase-bench run --workers N``
(N > 1, local processes) sets ``PASE_GYM_THREADS`` in each worker to the machine's cores
divided by ``N``, at most 2 (unless you set it), so that N model agents side by side do not
ask for more threads than there are cores:
two torch processes of two threads each on two cores ran a language model's forward pass ~30
times slower than one alone.
"""

from __future__ import annotations

import argparse
import os
import re

from pase_gym.errors import DeviceError

#: What the ``--device`` options of the command lines accept.
DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"

_SPELLING = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(device: str) -> str:
    """``device`` if it is spelt ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (torch not needed).

    Raises:
        DeviceError: any other spelling.
    """
    if not isinstance(device, str) or _SPELLING.fullmatch(device) is None:
        raise DeviceError(f"unknown device {device!r}: expected {DEVICE_HELP}")
    return device


#: The environment variable that sets a model agent's torch CPU threads (see :func:`cpu_threads`).
THREADS_ENV = "PASE_GYM_THREADS"
#: Threads when neither the agent nor the environment says.
DEFAULT_THREADS = 2


def cpu_threads(requested: int | None = None) -> int:
    """The torch CPU threads to use: ``requested`` when given, else ``PASE_GYM_THREADS``,
    else :data:`DEFAULT_THREADS`.

    Raises:
        DeviceError: ``requested`` or the variable is not a positive integer.
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise DeviceError(f"threads must be a positive integer, found {requested!r}")
        return requested
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return DEFAULT_THREADS
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise DeviceError(f"{THREADS_ENV} must be a positive integer, found {text!r}")
    return int(text)


def worker_threads(workers: int) -> int:
    """Each of ``workers`` processes' share of this machine's cores: at least 1, at most
    :data:`DEFAULT_THREADS` (so that a machine with the cores runs every worker's agents
    exactly as one worker runs them)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(DEFAULT_THREADS, cores // max(1, workers)))


def resolve_device(device: str = "auto") -> str:
    """The torch device to use for ``device`` (see the module docstring for the rule).

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        DeviceError: a misspelt device, or CUDA (or that CUDA index) asked for where torch
            sees none.
    """
    check_device(device)
    if device == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        if device == "auto":
            return "cpu"
        raise DeviceError(
            f"device {device!r} requested but torch is not installed "
            "(install the LLM or RL extra: pip install 'pase-gym[llm]')"
        ) from None
    available = bool(torch.cuda.is_available())
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise DeviceError(f"device {device!r} requested but torch sees no CUDA device")
    _, _, index = device.partition(":")
    count = int(torch.cuda.device_count())
    if index and int(index) >= count:
        raise DeviceError(
            f"device {device!r} requested but torch sees {count} CUDA device(s) "
            f"(cuda:0..cuda:{count - 1})"
        )
    return device


def device_option(text: str) -> str:
    """An ``argparse`` type for ``--device``: the spelling is checked when the arguments are
    parsed (whether CUDA is there is checked when the device is resolved)."""
    try:
        return check_device(text)
    except DeviceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
