"""LoRA fine-tuning of the Plan Synthesis Engine on the oracle's plans for simulated incidents.

Demonstrations come from the **train split** only: each is what an agent sees at the moment an
incident first raises an alarm (``info["description"]`` and the node vocabulary) paired with
the oracle's ground-truth plan for it (:func:`~pase_gym.sim.oracle.oracle_plan`), collected
through the env exactly as the harness runs an agent (start healthy, ``Wait(10)`` until the
first alarm). :func:`train_lora` adds LoRA adapters (peft) to a causal LM and trains them with
the loss on the plan tokens only, under the ``compact`` prompt template; :func:`save_adapter`
writes the adapter with a ``training.json`` of how it was made, :func:`load_adapter` puts it
back on a base model.

Command line (progress on stderr; about 35 minutes on 2 shared CPU cores at the defaults)::

    python -m pase_gym.llm.finetune --out agents/pase/adapter

torch, transformers and peft are imported inside the functions only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pase_gym.errors import FinetuneError
from pase_gym.llm.prompts import COMPACT_VERSION, PROMPT_VERSION, build_prompt

logger = logging.getLogger(__name__)

ADAPTER_META = "training.json"
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
MAX_WAIT_STEPS = 120  # monitoring steps before giving up on an incident that never alarms


@dataclass(frozen=True)
class Demonstration:
    """One training example: what the agent saw at the first alarm and the oracle's plan."""

    scenario: str
    seed: int
    description: str
    node_names: tuple[str, ...]
    plan: str


def collect_demonstrations(
    split: str = "train",
    seeds: Iterable[int] = range(8),
    scenarios: Sequence[str] | None = None,
) -> list[Demonstration]:
    """The oracle's plans for the incidents of a split's scenarios, one per (scenario, seed).

    Args:
        split: which split's scenarios (``train`` for training; never the test split).
        seeds: env seeds per scenario.
        scenarios: scenario names (default: every built-in scenario of ``split``).
    """
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids)
    from pase_gym.env.core import episode_of
    from pase_gym.scenarios import list_scenarios
    from pase_gym.sim.oracle import oracle_plan

    names = list(scenarios) if scenarios is not None else list_scenarios(split)
    seeds = list(seeds)
    out: list[Demonstration] = []
    for name in names:
        env = gym.make("PASE-OpenStack-v0", scenario=name)
        try:
            for seed in seeds:
                _, info = env.reset(seed=seed)
                for _ in range(MAX_WAIT_STEPS):
                    if info["alarms"]:
                        break
                    _, _, terminated, truncated, info = env.step("Wait(10)")
                    if terminated or truncated:
                        break
                if not info["alarms"]:
                    logger.warning("%s seed %d raised no alarm; skipped", name, seed)
                    continue
                plan = oracle_plan(episode_of(env).state)
                if not plan.steps:
                    continue
                out.append(
                    Demonstration(
                        name, seed, info["description"], tuple(info["slot_names"]), str(plan)
                    )
                )
        finally:
            env.close()
    return out


@dataclass
class TrainConfig:
    """Settings of one LoRA run (all recorded in the adapter's ``training.json``)."""

    steps: int = 100
    batch_size: int = 8
    lr: float = 2e-3
    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] = DEFAULT_TARGETS
    template: str = "compact"
    top_layers: int | None = 10
    warmup: int = 10
    seed: int = 0
    threads: int | None = None


@dataclass
class TrainResult:
    """What a run did: the loss per step, the seconds of the steps and of computing the frozen
    lower-layer states beforehand (``prepare_seconds``), and the adapter's size."""

    config: TrainConfig
    n_examples: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    prepare_seconds: float = 0.0
    trainable_params: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"]["targets"] = list(self.config.targets)
        return out


def encode_examples(
    tokenizer: Any, demos: Sequence[Demonstration], template: str = "compact"
) -> list[tuple[list[int], list[int]]]:
    """``(input_ids, labels)`` per demonstration: the prompt (labels ``-100``) then the plan
    and the end-of-sequence token (the loss is on these only)."""
    if tokenizer.eos_token is None:
        raise FinetuneError("the tokenizer has no end-of-sequence token")
    add_special = not getattr(tokenizer, "chat_template", None)
    out = []
    for d in demos:
        prompt = build_prompt(tokenizer, d.description, d.node_names, template=template)
        p_ids = tokenizer(prompt, add_special_tokens=add_special)["input_ids"]
        t_ids = tokenizer(d.plan, add_special_tokens=False)["input_ids"]
        t_ids = [*t_ids, int(tokenizer.eos_token_id)]
        out.append(([*p_ids, *t_ids], [-100] * len(p_ids) + t_ids))
    return out


def _batch(examples: Sequence[tuple[list[int], list[int]]], pad: int, device: Any) -> Any:
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (x, y) in enumerate(examples):
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def add_lora(model: Any, config: TrainConfig) -> Any:
    """``model`` wrapped with fresh LoRA adapters (peft), only those trainable."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise FinetuneError(
            "peft is not installed; install the LLM extra: pip install 'pase-gym[llm]'"
        ) from None
    layers = None
    if config.top_layers is not None:
        n = _n_layers(model)
        if not 1 <= config.top_layers <= n:
            raise FinetuneError(f"top_layers must be in 1..{n}, found {config.top_layers}")
        layers = list(range(n - config.top_layers, n))
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.targets),
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _decoder(model: Any) -> Any:
    """The decoder stack (``.layers``, ``.norm``) of a (peft-wrapped) HF causal LM."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", None)
    if inner is None or not hasattr(inner, "layers"):
        raise FinetuneError(
            f"{type(base).__name__} has no decoder layer stack (.model.layers); "
            "train with top_layers=None"
        )
    return inner


def _n_layers(model: Any) -> int:
    return len(_decoder(model).layers)


class _StopForwardError(Exception):
    """Raised by a hook to end a forward pass early."""


def _lower_states(
    model: Any, examples: Sequence[tuple[list[int], list[int]]], cut: int
) -> list[Any]:
    """Per example, the hidden states entering decoder layer ``cut`` (frozen: no adapter
    below it), computed once without gradients in right-padded batches of 8."""
    import torch

    layers = _decoder(model).layers
    box: list[Any] = []

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        box.append(args[0] if args else kwargs["hidden_states"])
        raise _StopForwardError

    handle = layers[cut].register_forward_pre_hook(hook, with_kwargs=True)
    device = next(model.parameters()).device
    out: list[Any] = []
    try:
        with torch.no_grad():
            for i in range(0, len(examples), 8):
                chunk = examples[i : i + 8]
                ids, _, mask = _batch(chunk, 0, device)
                box.clear()
                with contextlib.suppress(_StopForwardError):
                    model(input_ids=ids, attention_mask=mask, use_cache=False)
                for row, (x, _) in enumerate(chunk):
                    out.append(box[0][row, : len(x)].clone())
    finally:
        handle.remove()
    return out


def _top_loss(model: Any, states: Sequence[Any], labels: Sequence[list[int]], cut: int) -> Any:
    """Cross-entropy of the plan tokens, running only decoder layers ``cut..`` on the cached
    lower states and the output head only where a token is predicted."""
    import torch

    inner = _decoder(model)
    head = model.get_base_model().get_output_embeddings()
    width = max(len(s) for s in states)
    hidden = states[0].new_zeros((len(states), width, states[0].shape[-1]))
    mask = torch.zeros((len(states), width), dtype=torch.long, device=hidden.device)
    rows, cols, targets = [], [], []
    for r, (h, y) in enumerate(zip(states, labels, strict=True)):
        hidden[r, : len(h)] = h
        mask[r, : len(h)] = 1
        for j in range(1, len(y)):
            if y[j] != -100:
                rows.append(r)
                cols.append(j - 1)  # position j-1 predicts token j
                targets.append(y[j])
    full = inner.layers
    inner.layers = torch.nn.ModuleList(list(full)[cut:])
    try:
        last = inner(inputs_embeds=hidden, attention_mask=mask, use_cache=False).last_hidden_state
    finally:
        inner.layers = full
    logits = head(last[rows, cols]).float()
    target = torch.tensor(targets, device=logits.device)
    return torch.nn.functional.cross_entropy(logits, target)


def train_lora(
    model: Any,
    tokenizer: Any,
    demos: Sequence[Demonstration],
    config: TrainConfig | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Any, TrainResult]:
    """Train LoRA adapters on ``demos``; returns the peft-wrapped model (in eval mode) and the
    run's record.

    Batches are drawn by a seeded shuffle (epochs over the demonstrations); the learning rate
    warms up linearly then follows a cosine to zero; AdamW on the adapter weights only.
    ``progress(step, steps, loss)`` is called after every step.

    With ``config.top_layers = k`` (the default, 10) the adapters sit in the top ``k`` decoder
    layers only: the hidden states entering them are computed once per example without
    gradients, and each step runs just the top layers and the output head at the plan's
    positions (the same loss as a full forward pass, several times cheaper on a CPU).
    ``top_layers=None`` puts adapters in every layer and runs the whole model per step.
    """
    import torch

    config = config or TrainConfig()
    if not demos:
        raise FinetuneError("no demonstrations to train on")
    if config.steps < 1 or config.batch_size < 1 or config.lr <= 0 or config.rank < 1:
        raise FinetuneError(
            "steps, batch_size and rank must be >= 1 and lr > 0, found "
            f"steps={config.steps}, batch_size={config.batch_size}, rank={config.rank}, "
            f"lr={config.lr}"
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    examples = encode_examples(tokenizer, demos, config.template)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(config.seed)
    model = add_lora(model, config)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    cut = None if config.top_layers is None else _n_layers(model) - config.top_layers
    prepare = time.perf_counter()
    states = None if cut is None else _lower_states(model, examples, cut)
    result = TrainResult(
        config,
        len(examples),
        prepare_seconds=time.perf_counter() - prepare,
        trainable_params=sum(p.numel() for p in params),
    )
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        span = max(1, config.steps - config.warmup)
        return 0.5 * (1 + math.cos(math.pi * (step - config.warmup) / span))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    order_rng = np.random.default_rng(config.seed)
    queue: list[int] = []
    model.train()
    start = time.perf_counter()
    for step in range(config.steps):
        picks: list[int] = []
        while len(picks) < min(config.batch_size, len(examples)):
            if not queue:
                queue = [int(i) for i in order_rng.permutation(len(examples))]
            picks.append(queue.pop())
        if states is not None and cut is not None:
            loss = _top_loss(
                model, [states[i] for i in picks], [examples[i][1] for i in picks], cut
            )
        else:
            ids, labels, mask = _batch([examples[i] for i in picks], pad, device)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        result.losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, config.steps, result.losses[-1])
    result.seconds = time.perf_counter() - start
    model.eval()
    return model, result


def save_adapter(model: Any, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the adapter weights and ``training.json`` (``meta`` plus the prompt versions)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    card = path / "README.md"  # peft's generic model card template: training.json says it all
    if card.is_file() and "More Information Needed" in card.read_text():
        card.unlink()
    record = {"prompt_versions": {"full": PROMPT_VERSION, "compact": COMPACT_VERSION}, **meta}
    (path / ADAPTER_META).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


def adapter_meta(path: str | Path) -> dict[str, Any]:
    """The ``training.json`` of an adapter folder (empty if it has none)."""
    meta = Path(path) / ADAPTER_META
    if not meta.is_file():
        return {}
    data = json.loads(meta.read_text())
    return data if isinstance(data, dict) else {}


def load_adapter(model: Any, path: str | Path) -> Any:
    """``model`` with the LoRA adapter of ``path`` applied (eval mode).

    Raises:
        FinetuneError: the folder holds no adapter, or it was trained under another prompt.
    """
    try:
        from peft import PeftModel
    except ImportError:
        raise FinetuneError(
            "peft is not installed; install the LLM extra: pip install 'pase-gym[llm]'"
        ) from None
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise FinetuneError(f"no LoRA adapter in {path} (expected adapter_config.json)")
    meta = adapter_meta(path)
    template = meta.get("config", {}).get("template", "compact")
    want = {"full": PROMPT_VERSION, "compact": COMPACT_VERSION}.get(template)
    have = meta.get("prompt_versions", {}).get(template, want)
    if have != want:
        raise FinetuneError(
            f"adapter {path} was trained with prompt {have!r}, this version writes {want!r}; "
            "retrain it (python -m pase_gym.llm.finetune)"
        )
    return PeftModel.from_pretrained(model, str(path)).eval()


def _seed_list(text: str) -> list[int]:
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seeds as '0-15' or '0,1,2', found {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pase_gym.llm.finetune``: collect train-split demonstrations, train LoRA
    adapters on SmolLM2 (or ``--model PATH``), save them with their training record."""
    parser = argparse.ArgumentParser(
        prog="python -m pase_gym.llm.finetune",
        description="LoRA fine-tuning of the plan synthesis engine on the oracle's plans "
        "for train-split incidents.",
    )
    parser.add_argument("--out", required=True, help="adapter folder to write")
    parser.add_argument("--model", default="smollm2", help="'smollm2' or a local HF model path")
    parser.add_argument("--seeds", type=_seed_list, default=list(range(16)), help="env seeds")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--rank", type=int, default=TrainConfig.rank)
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation and order")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args(argv)
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

    def progress(step: int, steps: int, loss: float) -> None:
        if step == 1 or step % 10 == 0 or step == steps:
            elapsed = time.perf_counter() - t_train
            logger.info(
                "step %d/%d  loss %.4f  %.1f s/step  eta %.0f s",
                step,
                steps,
                loss,
                elapsed / step,
                elapsed / step * (steps - step),
            )

    t_train = time.perf_counter()
    model, result = train_lora(model, tokenizer, demos, config, progress)
    command = "python -m pase_gym.llm.finetune " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    meta = {
        "base_model": args.model,
        "command": command.strip(),
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
