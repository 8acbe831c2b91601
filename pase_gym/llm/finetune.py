"""``python -m pase_gym.llm.finetune``: LoRA fine-tuning of the Plan Synthesis Engine on the
oracle's plans for simulated train-split incidents.

The command collects the demonstrations (:mod:`pase_gym.llm.demonstrations`: train split only,
never the test split), trains LoRA adapters on SmolLM2 or a local model
(:mod:`pase_gym.llm.training`) and writes them with a ``training.json`` of how they were made
(:mod:`pase_gym.llm.adapters`). A progress bar on stderr shows the steps with the current loss,
and the loss is logged at step 1, every 10th step and the last. About 35 minutes on 2 shared
CPU cores at the defaults::

    python -m pase_gym.llm.finetune --out agents/pase/adapter

PASE's own adapter is trained by ``python agents/pase/train.py``, which runs this command with
the shipped adapter's settings. torch, transformers and peft are imported when it runs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Sequence

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from pase_gym.devices import DEVICE_HELP, device_option
from pase_gym.llm.adapters import save_adapter
from pase_gym.llm.demonstrations import collect_demonstrations
from pase_gym.llm.training import TrainConfig, train_lora

logger = logging.getLogger(__name__)

PROG = "python -m pase_gym.llm.finetune"
LOG_EVERY = 10  # steps between two loss lines in the log


def seed_list(text: str) -> list[int]:
    """An ``argparse`` type: seeds as a range ``0-15`` or a list ``0,1,2``."""
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seeds as '0-15' or '0,1,2', found {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments (the defaults are the shipped adapter's settings)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="LoRA fine-tuning of the plan synthesis engine on the oracle's plans "
        "for train-split incidents.",
    )
    parser.add_argument("--out", required=True, help="adapter folder to write")
    parser.add_argument("--model", default="smollm2", help="'smollm2' or a local HF model path")
    parser.add_argument("--seeds", type=seed_list, default=list(range(16)), help="env seeds")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--rank", type=int, default=TrainConfig.rank)
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation and order")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", type=device_option, default="cpu", help=DEVICE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Collect train-split demonstrations, train LoRA adapters on SmolLM2 (or ``--model
    PATH``), save them with their training record; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from pase_gym.llm.models import load_model

    t0 = time.perf_counter()
    demos = collect_demonstrations("train", args.seeds)
    logger.info(
        "%d demonstrations from %d train scenarios in %.1f s",
        len(demos),
        len({d.scenario for d in demos}),
        time.perf_counter() - t0,
    )
    model, tokenizer = load_model(args.model, device=args.device)
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        rank=args.rank,
        seed=args.seed,
        threads=args.threads,
    )
    with (
        logging_redirect_tqdm(),
        tqdm(total=config.steps, desc="train", unit="step", file=sys.stderr) as bar,
    ):

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if step == 1 or step % LOG_EVERY == 0 or step == steps:
                logger.info("step %d/%d  loss %.4f", step, steps, loss)

        model, result = train_lora(model, tokenizer, demos, config, progress)
    meta = {
        "base_model": args.model,
        "command": f"{PROG} {shlex.join(arguments)}".strip(),
        "split": "train",
        "seeds": args.seeds,
        "scenarios": sorted({d.scenario for d in demos}),
        **result.as_dict(),
    }
    out = save_adapter(model, args.out, meta)
    logger.info(
        "trained %d adapter parameters in %.0f s (final loss %.4f); wrote %s",
        result.trainable_params,
        result.seconds,
        result.losses[-1],
        out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
