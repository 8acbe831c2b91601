"""Fixtures for the simulator benchmarks (``pytest benchmarks/ --benchmark-only``).

This conftest defines fixtures only: no hooks, options or markers, so it changes nothing
outside ``benchmarks/``. ``benchmarks/`` has no ``__init__.py`` on purpose: a generic top-level
package name must not end up in site-packages.

Building a 10,000-node topology and calibrating its state takes a noticeable fraction of a
second, so every cloud is built once per module by :class:`SimCache` and the benchmarks work on
copies of the cached states (the cached states themselves are never mutated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from pase_gym.episode import Episode
from pase_gym.sim.dynamics import advance, calibrate
from pase_gym.sim.faults import make_fault
from pase_gym.sim.plan import Plan, parse_plan
from pase_gym.sim.state import SimState, new_state
from pase_gym.sim.topology import Topology, build_topology

#: The cloud sizes benchmarked (the tiny/small/medium/large presets of ``SIZE_PRESETS``).
NODE_COUNTS = (20, 200, 2000, 10000)
TOPOLOGY_SEED = 0
STATE_SEED = 0
PROFILE = "deployment"
#: A control-plane process present in every size (one controller below 60 nodes, 3 or 5 above),
#: so the plan below is the same plan on every cloud and its cost is comparable across sizes.
FAULT_NODE = "nova-api-1"
PLAN_TEXT = f"KillProcess({FAULT_NODE}); Restart({FAULT_NODE}); ScaleOut(nova-api, 1); Wait(5)"
DRY_RUN_SCENARIO = "default"
DRY_RUN_SEED = 0


@dataclass
class SimCase:
    """One cloud: its topology, a healthy calibrated state and a state with an active fault."""

    nodes: int
    topo: Topology
    healthy: SimState
    faulted: SimState
    fault_node: str
    plan_text: str
    plan: Plan


@dataclass
class SimCache:
    """Builds each cloud (and the dry-run episode) on first use, then hands out the same one."""

    cases: dict[int, SimCase] = field(default_factory=dict)
    episode: Episode | None = None

    def case(self, nodes: int) -> SimCase:
        """The cached :class:`SimCase` for a cloud of about ``nodes`` nodes."""
        if nodes not in self.cases:
            self.cases[nodes] = _build_case(nodes)
        return self.cases[nodes]

    def dry_run_episode(self) -> Episode:
        """The built-in ``default`` scenario, reset (clock at the detected incident)."""
        if self.episode is None:
            episode = Episode(DRY_RUN_SCENARIO, seed=DRY_RUN_SEED)
            episode.reset()
            self.episode = episode
        return self.episode


def _build_case(nodes: int) -> SimCase:
    topo = build_topology(nodes, TOPOLOGY_SEED)
    rng = np.random.default_rng(STATE_SEED)
    healthy = new_state(topo, PROFILE, rng)
    calibrate(healthy)
    if not healthy.slo_ok:
        raise RuntimeError(f"the calibrated {nodes}-node cloud does not meet its SLOs")
    faulted = healthy.copy()
    fault = make_fault(faulted, "process_hang", FAULT_NODE, faulted.tick + 1, rng)
    faulted.pending.append(fault)
    advance(faulted, 2, rng, step=1)  # past the onset: the fault is injected and active
    if not fault.active:
        raise RuntimeError(f"the process_hang fault on {FAULT_NODE} did not become active")
    return SimCase(nodes, topo, healthy, faulted, FAULT_NODE, PLAN_TEXT, parse_plan(PLAN_TEXT))


@pytest.fixture(scope="module")
def sim_cache() -> SimCache:
    """A per-module cache of built clouds; build cost is paid once per size, untimed."""
    return SimCache()


@pytest.fixture(params=NODE_COUNTS, ids=lambda n: f"n{n:05d}")
def sim_case(request: pytest.FixtureRequest, sim_cache: SimCache) -> SimCase:
    """The cached cloud for each benchmarked size."""
    return sim_cache.case(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator for the code under measurement."""
    return np.random.default_rng(1234)
