"""What every pase-gym command line shares: exit codes, logging set-up, typed errors as one line.

Each command builds its own ``argparse`` parser and handler; :func:`run_cli` parses the
arguments, sets up logging once, runs the handler and turns a
:class:`~pase_gym.errors.PaseGymError` (bad input: a plan, a scenario, a suite, a data set, an
agent) into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from pase_gym.errors import PaseGymError

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and its check failed (not recovered, a failed check)
EXIT_USAGE = 2  # bad input: the message says where and what was expected

Handler = Callable[[argparse.Namespace], int]


def run_cli(
    parser: argparse.ArgumentParser,
    handler: Handler | None,
    argv: Sequence[str] | None = None,
    *,
    default: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` with ``parser`` and run the handler; returns the exit status.

    Args:
        parser: the command's parser; with sub-commands, each sets ``func`` as its handler.
        handler: the handler of a parser without sub-commands (``None``: use ``args.func``).
        argv: the arguments (``sys.argv[1:]`` when ``None``).
        default: the sub-command to run when none is given (its arguments follow).
    """
    prog = parser.prog
    logging.basicConfig(level=logging.WARNING, format=f"{prog}: %(message)s")
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    if default is not None and getattr(args, "command", None) is None:
        args = parser.parse_args([*default, *arguments])
    run = handler or getattr(args, "func", None)
    if run is None:
        parser.error("a command is required")
    try:
        return int(run(args))
    except PaseGymError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def at_least(low: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected at least {low}, found {value}")
        return value

    return parse
