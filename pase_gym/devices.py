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
"""

from __future__ import annotations

import argparse
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
