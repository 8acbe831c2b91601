"""LoRA fine-tuning of a causal LM on demonstrations: the training loop.

:func:`train_lora` adds LoRA adapters (peft, :func:`add_lora`) to a causal LM and trains them
with the loss on the plan tokens only (:func:`~pase_gym.llm.demonstrations.encode_examples`),
under the ``compact`` prompt template by default. With adapters in the top layers only, the
hidden states entering them are computed once per example (:func:`_lower_states`) and each
step runs just those layers and the output head (:func:`_top_loss`).

The command line is :mod:`pase_gym.llm.finetune`; adapters are saved and loaded by
:mod:`pase_gym.llm.adapters`. torch and peft are imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pase_gym.errors import FinetuneError
from pase_gym.llm.adapters import require_peft
from pase_gym.llm.demonstrations import Demonstration, encode_examples

logger = logging.getLogger(__name__)

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")

#: ``progress(step, steps, loss)``: called by :func:`train_lora` after every step.
Progress = Callable[[int, int, float], None]


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
        """The record as plain JSON-able data (as written to ``training.json``)."""
        out = asdict(self)
        out["config"]["targets"] = list(self.config.targets)
        return out


def _batch(examples: Sequence[tuple[list[int], list[int]]], pad: int, device: Any) -> Any:
    """``(input_ids, labels, attention_mask)`` of right-padded examples, on ``device``."""
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
    """``model`` wrapped with fresh LoRA adapters (peft), only those trainable.

    Raises:
        FinetuneError: peft is missing, or ``config.top_layers`` is out of range.
    """
    peft = require_peft()
    layers = None
    if config.top_layers is not None:
        n = _n_layers(model)
        if not 1 <= config.top_layers <= n:
            raise FinetuneError(f"top_layers must be in 1..{n}, found {config.top_layers}")
        layers = list(range(n - config.top_layers, n))
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.targets),
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)


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
    progress: Progress | None = None,
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
    if cut is not None:
        logger.info("computing the frozen lower-layer states of %d examples", len(examples))
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


__all__ = ["DEFAULT_TARGETS", "Progress", "TrainConfig", "TrainResult", "add_lora", "train_lora"]
