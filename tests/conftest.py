"""Fixtures shared by the test suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """Run torch on one thread for the test (restored afterwards).

    On small CI machines torch's default intra-op pool competes with the simulator for the
    cores; the first PPO update then stalls for seconds. One thread is also what makes a
    seeded training run repeatable.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
