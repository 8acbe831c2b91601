"""Render modes: a readable incident view (``ansi``) and a topology picture (``rgb_array``)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import Observation
from pase_gym.sim.state import SimState
from pase_gym.sim.transition import TransitionResult

MIN_CELL, TARGET_WIDTH = 3, 320  # pixels per node square; picture width to aim for
COLOURS = {
    "ok": (46, 160, 67),
    "violating": (214, 39, 40),
    "degraded": (255, 187, 51),
    "out": (110, 110, 110),
    "spare": (35, 35, 35),
}


def render_ansi(
    state: SimState, obs: Observation | None, last_plan: str, result: TransitionResult | None
) -> str:
    """The incident view: topology summary, SLO status, alarms, recent events, last plan."""
    t = state.topo
    active = state.active
    roles = Counter(ROLE_NAMES[int(r)] for r in t.role[active])
    bad = np.flatnonzero(~state.slo_ok_nodes & active)
    lines = [
        f"== t={state.tick}s  SLOs {'met' if state.slo_ok else 'VIOLATED'}  "
        f"({bad.size} node(s) out of SLO)",
        "topology: " + ", ".join(f"{c} {r}" for r, c in sorted(roles.items())),
    ]
    if bad.size:
        lines.append(
            "out of SLO: "
            + ", ".join(state.name(int(i)) for i in bad[:12])
            + (" ..." if bad.size > 12 else "")
        )
    if obs is not None:
        for node, alarm, value in obs.alarms[:10]:
            lines.append(f"  ALARM {alarm:<17} {node:<24} {value:7.3f}")
        for line in obs.logs[-5:]:
            lines.append(f"  LOG   {line}")
    if last_plan:
        lines.append(f"last plan: {last_plan}")
    if result is not None:
        lines.append(
            f"  took {result.ticks}s, cost {result.cost:.1f}, harmed "
            f"{len(result.harmed)}, violations {len(result.violations)}"
        )
        for v in result.violations[:3]:
            lines.append(f"  ! {v}")
    return "\n".join(lines) + "\n"


def render_rgb(state: SimState) -> np.ndarray:
    """A grid of node squares in node order, coloured by health (uint8, H x W x 3)."""
    n = state.n
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * cols, 3), np.uint8)
    status = np.full(n, "ok", dtype=object)
    status[(state.err > 0.01) | (state.lat > 0.5 * state.slo_latency + 1e-9)] = "degraded"
    status[~state.slo_ok_nodes] = "violating"
    status[~state.in_service()] = "out"
    status[~state.active] = "spare"
    for key, colour in COLOURS.items():
        grid[:n][status == key] = colour
    cell = max(MIN_CELL, TARGET_WIDTH // cols)
    image = grid.reshape(rows, cols, 3)
    image = np.repeat(np.repeat(image, cell, axis=0), cell, axis=1)
    image[::cell, :, :] = 0  # grid lines
    image[:, ::cell, :] = 0
    return image
