"""The reference workload: a fixed mix of small numpy operations and Python bookkeeping, the
kind of work one simulator step does, with no pase-gym code in it.

Speed gates (``pase-bench speed-gate``) divide every benchmark's median by this one's, measured
in the same run: a slower machine slows both alike and the ratio stays; a real slowdown of
pase-gym's code moves the ratio.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROUNDS = 300


def reference_workload() -> float:
    """About a millisecond of numpy on 200-element arrays and a Python loop over a dict."""
    rng = np.random.default_rng(0)
    x = rng.random(200)
    y = rng.random(200)
    table: dict[int, float] = {}
    total = 0.0
    for i in range(60):
        z = np.minimum(x * y + 0.5, 1.0)
        z = np.maximum(z - 0.25 * x, 0.0)
        x = np.where(z > 0.5, z, x)
        total += float(z.sum())
        table[i % 17] = table.get(i % 17, 0.0) + total
    return total + sum(table.values())


def test_reference_workload(benchmark: Any) -> None:
    value = benchmark.pedantic(reference_workload, rounds=ROUNDS, iterations=1, warmup_rounds=10)
    assert value == reference_workload()  # deterministic work: the same every round
