"""Train the `pase` agent's LoRA adapter: the plan synthesis engine on the oracle's plans for
train-split incidents.

    python agents/pase/train.py [--out agents/pase/adapter] [--steps 100] [--seed 0]
                                [--device auto|cpu|cuda|cuda:N] [...]

This is where the `pase` agent's training lives, as ``train.py`` does for every learned agent
in ``agents/``. It runs :mod:`pase_gym.llm.finetune` (every option of
``python -m pase_gym.llm.finetune --help`` is accepted) with the shipped adapter's settings
as defaults and ``--out`` defaulting to the ``adapter/`` folder beside this file. About 25
minutes on 2 CPU cores; see this folder's README for what it trains on and whether a rerun
reproduces the shipped adapter.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pase_gym.llm.finetune import main as finetune

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "adapter"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fine-tuning command, writing to ``adapter/`` beside this file unless ``--out``
    says otherwise; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--out" or a.startswith("--out=") for a in arguments):
        arguments = ["--out", str(DEFAULT_OUT), *arguments]
    return finetune(arguments)


if __name__ == "__main__":
    sys.exit(main())
