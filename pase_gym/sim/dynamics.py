"""The numpy kernel: health from state, and time passing.

:func:`evaluate` computes every node's health indicators from the state in one vectorised pass:
the workload (with retries) is spread over the replicas that receive traffic, utilisation sets
latency and drops, and errors and latencies propagate from callees to callers along the
compiled dependency edges, one hop per iteration, for as many hops as the longest chain.

:func:`advance` moves simulated time forward in chunks (at most ``step`` ticks), integrating the
accumulators (memory, disk, queue backlog) in closed form over each chunk with the rates of the
last evaluation, then re-evaluating. SLO tracking happens at every evaluation, so the
resolution of recovery times is the chunk length (1 tick with ``step=1``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pase_gym.sim.kernel import Kernels, fused_kernel
from pase_gym.sim.logs import emit as emit_logs
from pase_gym.sim.logs import symptom_line
from pase_gym.sim.roles import ROLE_NAMES
from pase_gym.sim.signals import accumulate_events
from pase_gym.sim.state import IND, INDICATORS, TIMEOUT, Modifiers, SimState

RETRY_FACTOR = 2.0  # extra load per unit of error a role returned at the last evaluation
WORKLOAD_NOISE = 0.03  # relative standard deviation of the per-role demand
OOM_RESTART_TICKS = 10  # systemd brings an OOM-killed process back after this long
DEFAULT_STEP = 5  # ticks per chunk when advancing time


class _Derived(NamedTuple):
    """Intermediate arrays of the last evaluation, kept for the (lazy) indicator pass."""

    alive: np.ndarray
    cap_eff: np.ndarray
    cfg_cap: np.ndarray
    host_alive: np.ndarray
    mods: Modifiers
    reach_ok: np.ndarray
    routable: np.ndarray
    util: np.ndarray
    works: np.ndarray
    works_all: np.ndarray


def evaluate(state: SimState, rng: np.random.Generator | None, full: bool = True) -> None:
    """Recompute the derived health of ``state`` at its current tick (in place).

    Args:
        state: the state to evaluate.
        rng: draws the workload noise; ``None`` evaluates the noiseless expectation.
        full: also compute the eight indicators and append them to the metric history now
            (otherwise :func:`ensure_indicators` does it when someone observes).
    """
    t = state.topo
    n = t.n
    tick = state.tick
    mods = Modifiers(n)
    for fault in state.faults:
        if fault.active:
            fault.apply(state, mods)
    kernel = fused_kernel()
    if kernel is not None:
        _evaluate_fused(kernel, state, rng, mods)
        if full:
            ensure_indicators(state)
        return
    host = state.host_of
    reach_ok = (mods.reach * mods.reach[host]) > 0
    host_alive = state.active & state.up  # meaningful for host nodes
    alive = host_alive & host_alive[host]
    out = state.isolated | state.drained
    in_svc = state.active & ~(out | out[host])
    routable = alive & (state.down_until <= tick) & in_svc
    works = routable & reach_ok & ~(state.hung | state.desynced)

    # ---- workload spread over the replicas that receive traffic
    n_roles = len(ROLE_NAMES)
    role = t.role
    cfg_cap = state.cap0 * state.cpu_alloc
    w = cfg_cap * routable * state.route_w
    role_w = np.bincount(role, weights=w, minlength=n_roles)
    if (role_w[t.shared_roles] <= 0).any():
        # every weighted replica is out: the balancer falls back to any routable one
        fallback = role_w[role] <= 0
        w = np.where(fallback, cfg_cap * routable, w)
        role_w = np.bincount(role, weights=w, minlength=n_roles)
    demand = state.demand * (1.0 + RETRY_FACTOR * state.retry_err)
    if rng is not None:
        demand *= 1.0 + WORKLOAD_NOISE * rng.standard_normal(n_roles)
    per_weight = demand / (role_w + (role_w <= 0))
    load = per_weight[role] * w
    pinned = t.pinned_ids
    load[pinned] = state.pinned_load[pinned] * routable[pinned]
    load += mods.load_add * routable
    cap_eff = cfg_cap * mods.cap_mult * state.throttle
    util = load / (cap_eff + 1e-12)
    served = 1.0 / np.maximum(util, 1.0)  # share not dropped by overload
    ok_own = works * served * (1.0 - np.minimum(mods.err_add, 1.0))
    own_err = 1.0 - ok_own
    # M/M/1 service time, a steep queue past 95% utilisation, and swapping past 85% memory
    mem_frac = state.mem_used / state.mem_alloc + mods.mem_add
    factor = (
        1.0 / (1.0 - np.minimum(util, 0.95))
        + 20.0 * np.maximum(util - 0.95, 0.0)
        + (40.0 / 0.15) * np.maximum(mem_frac - 0.85, 0.0)
    )
    own_lat = t.base_latency * factor + mods.lat_add
    own_lat[routable & ~works] = TIMEOUT  # broken but still sent traffic: calls time out

    # ---- propagation along dependencies, callee pools to callers (err and lat fused)
    n_pools = t.n_pools
    wsum = np.bincount(t.pool, weights=w, minlength=n_pools)
    empty = wsum <= 0  # a pool nobody serves fails every call
    inv = 1.0 / (wsum + empty)
    fill = np.empty((2, n_pools))
    fill[0] = empty
    fill[1] = empty * TIMEOUT
    v = np.empty((2, n))
    v[0] = own_err
    v[1] = own_lat
    n_edges = t.dep_src.size
    buf = np.empty((2, n_edges))
    pool2, src2, dpool2, calls = t.pool2, t.src2, t.dpool2, t.dep_calls
    k = 2.0 / TIMEOUT
    # After k rounds every node at most k hops above a leaf is exact; depth rounds suffice.
    for _ in range(t.depth):
        sums_p = np.bincount(pool2, weights=(v * w).ravel(), minlength=2 * n_pools)
        agg = sums_p.reshape(2, n_pools) * inv + fill
        gathered = agg.ravel().take(dpool2).reshape(2, n_edges)
        edge_lat = np.minimum(gathered[1], TIMEOUT, out=buf[1])
        # calls slower than half the timeout start to time out
        e = np.maximum(gathered[0], edge_lat * k - 1.0)
        np.log1p(-np.minimum(e, 1.0 - 1e-9), out=buf[0])
        buf[1] *= calls
        sums = np.bincount(src2, weights=buf.ravel(), minlength=2 * n).reshape(2, n)
        v[0] = 1.0 - ok_own * np.exp(sums[0])
        np.add(own_lat, sums[1], out=v[1])
    err = v[0]
    lat = np.minimum(v[1], 4.0 * TIMEOUT)

    is_host = t.is_host
    works_all = np.where(is_host, host_alive & reach_ok, works)
    role_load = np.bincount(role, weights=load, minlength=n_roles)
    weighted = np.bincount(role, weights=load * err, minlength=n_roles) / (role_load + 1e-12)
    # Retries amplify load on a role that answers with errors; a role with nobody to serve
    # it fails every request (clients get refused at once and do not hammer it).
    role_err = np.where(role_w > 0, weighted, (state.demand > 0).astype(np.float64))
    # ---- service level objectives
    checked = in_svc
    bad = checked & ~(
        works_all & (is_host | ((err <= state.slo_error) & (lat <= state.slo_latency)))
    )
    groups_ok = True
    if t.groups:
        counts_g = np.bincount(
            t.grouped_ids_group,
            weights=(checked & works_all)[t.grouped_ids],
            minlength=len(t.groups),
        )
        groups_ok = bool((counts_g >= state.desired).all())
    _store(
        state,
        mods,
        err,
        lat,
        load,
        util,
        weighted,
        role_err,
        works_all,
        ~bad,
        groups_ok and not bad.any(),
        alive,
        cap_eff,
        cfg_cap,
        host_alive,
        reach_ok,
        routable,
        works,
    )
    if full:
        ensure_indicators(state)


def _evaluate_fused(
    kernel: Kernels, state: SimState, rng: np.random.Generator | None, mods: Modifiers
) -> None:
    """:func:`evaluate`'s arithmetic in the fused kernel (:mod:`pase_gym.sim.kernel`)."""
    t = state.topo
    n_roles = len(ROLE_NAMES)
    # the workload noise is drawn where the numpy path draws it: the stream stays the same
    noise = rng.standard_normal(n_roles) if rng is not None else _NO_NOISE
    outputs = kernel.evaluate(
        t.role,
        t.pool,
        state.host_of,
        t.is_host,
        t.base_latency,
        t.pinned_ids,
        t.shared_roles,
        t.dep_src,
        t.dep_pool,
        t.dep_calls,
        t.depth,
        t.n_pools,
        n_roles,
        state.active,
        state.up,
        state.isolated,
        state.drained,
        state.down_until,
        state.tick,
        state.hung,
        state.desynced,
        state.cap0,
        state.cpu_alloc,
        state.route_w,
        state.throttle,
        state.mem_used,
        state.mem_alloc,
        state.pinned_load,
        state.demand,
        state.retry_err,
        noise,
        rng is not None,
        mods.cap_mult,
        mods.err_add,
        mods.lat_add,
        mods.mem_add,
        mods.reach,
        mods.load_add,
        float(state.slo_error),
        state.slo_latency,
        t.grouped_ids,
        t.grouped_ids_group,
        len(t.groups),
        state.desired,
        RETRY_FACTOR,
        WORKLOAD_NOISE,
        TIMEOUT,
    )
    _store(state, mods, *outputs)


def _store(
    state: SimState,
    mods: Modifiers,
    err: np.ndarray,
    lat: np.ndarray,
    load: np.ndarray,
    util: np.ndarray,
    retry_err: np.ndarray,
    role_err: np.ndarray,
    works_all: np.ndarray,
    slo_ok_nodes: np.ndarray,
    slo_ok: bool,
    alive: np.ndarray,
    cap_eff: np.ndarray,
    cfg_cap: np.ndarray,
    host_alive: np.ndarray,
    reach_ok: np.ndarray,
    routable: np.ndarray,
    works: np.ndarray,
) -> None:
    """Write one evaluation's results into ``state`` (both paths; the order of the fused
    kernel's outputs)."""
    state.err = err
    state.lat = lat
    state.load = load
    state.util = util
    state.retry_err = retry_err
    state.role_err = role_err
    state.works = works_all
    state.slo_ok_nodes = slo_ok_nodes
    state.slo_ok = bool(slo_ok)
    state.evaluated_at = state.tick
    state.health_at = -1  # the indicator matrix no longer describes this evaluation
    state.derived = _Derived(
        alive, cap_eff, cfg_cap, host_alive, mods, reach_ok, routable, util, works, works_all
    )


_NO_NOISE = np.zeros(len(ROLE_NAMES))


def ensure_indicators(state: SimState) -> None:
    """Compute the indicator matrix for the last evaluation if it is not there yet."""
    if state.health_at == state.evaluated_at or state.derived is None:
        return
    d = state.derived
    _indicators(
        state,
        d.mods,
        d.alive,
        d.works,
        d.works_all,
        d.routable,
        d.reach_ok,
        d.util,
        state.load,
        d.cap_eff,
        d.cfg_cap,
        d.host_alive,
    )


def _indicators(
    state: SimState,
    mods: Modifiers,
    alive: np.ndarray,
    works: np.ndarray,
    works_all: np.ndarray,
    routable: np.ndarray,
    reach_ok: np.ndarray,
    util: np.ndarray,
    load: np.ndarray,
    cap_eff: np.ndarray,
    cfg_cap: np.ndarray,
    host_alive: np.ndarray,
) -> None:
    """The eight health indicators of every node, and the metric history (one row each)."""
    t = state.topo
    n = t.n
    host = state.host_of
    is_host = t.is_host
    err = state.err
    lat = state.lat
    kernel = fused_kernel()
    if kernel is not None:
        kernel.indicators(
            host,
            is_host,
            state.active,
            state.mem_used,
            state.mem_alloc,
            state.disk_used,
            err,
            lat,
            load,
            util,
            alive,
            works,
            works_all,
            routable,
            reach_ok,
            cap_eff,
            cfg_cap,
            host_alive,
            mods.cpu_add,
            mods.mem_add,
            mods.net_add,
            state.health,
        )
        _record(state)
        return
    cpu = np.where(works, 0.08 + 0.7 * np.minimum(util, 1.0), 0.02) + mods.cpu_add
    mem_frac = state.mem_used / np.maximum(state.mem_alloc, 1e-9) + mods.mem_add
    mem = np.where(alive, mem_frac, 0.0)
    hosted = ~is_host & state.active
    counts = np.maximum(np.bincount(host, weights=hosted.astype(float), minlength=n), 1.0)
    host_cpu = np.bincount(host, weights=cpu * hosted, minlength=n) / counts * 0.8
    host_mem = np.bincount(host, weights=mem * hosted, minlength=n) / counts
    cpu = np.where(is_host, host_cpu + mods.cpu_add, cpu)
    mem = np.where(is_host, host_mem, mem)
    net = np.where(reach_ok, np.minimum(0.05 + 0.3 * np.minimum(util, 1.5), 1.0), 0.0)
    host_net = np.bincount(host, weights=net * hosted, minlength=n) / counts
    net = np.where(is_host, np.where(reach_ok, np.maximum(host_net, 0.05), 0.0), net)
    net = net + mods.net_add * reach_ok
    disk = np.where(is_host, state.disk_used, state.disk_used[host])
    h = state.health
    h[:, IND["cpu"]] = np.minimum(np.maximum(cpu, 0.0), 1.0) * alive
    h[:, IND["memory"]] = np.minimum(np.maximum(mem, 0.0), 1.5)
    h[:, IND["disk"]] = np.minimum(disk, 1.0)
    h[:, IND["network"]] = np.minimum(net, 1.0)
    h[:, IND["latency"]] = np.where(is_host, 0.0, lat) * routable
    h[:, IND["error_rate"]] = np.where(is_host, 1.0 - host_alive * reach_ok, err) * routable
    h[:, IND["throughput"]] = np.where(
        cap_eff > 0, load * (1.0 - err) / np.maximum(cfg_cap, 1e-9), 0.0
    )
    h[:, IND["availability"]] = np.where(is_host, works_all, works / np.maximum(util, 1.0))
    h[~state.active] = 0.0
    # Monitoring reads a node over the network: one it cannot reach (a dead host, a cut
    # link) reports nothing, whatever still runs there, so a lost host and a cut-off one
    # look the same from the console.
    h[~(reach_ok & host_alive[host])] = 0.0

    _record(state)


def _record(state: SimState) -> None:
    """The indicator matrix now describes the last evaluation: append it to the history."""
    state.health_at = state.evaluated_at
    state.history.append(state.health.copy())
    state.history_ticks.append(state.tick)
    if len(state.history) > state.history_len:
        del state.history[0]
        del state.history_ticks[0]


def calibrate(state: SimState) -> None:
    """Set latency SLOs from the healthy, noiseless state (call once on a fresh state)."""
    evaluate(state, None, full=False)  # the indicators come with the second evaluation
    state.slo_latency = np.maximum(3.0 * state.lat, state.lat + 0.25)
    state.history.clear()
    state.history_ticks.clear()
    evaluate(state, None)


def _threshold_events(state: SimState) -> None:
    """Generic consequences of accumulators crossing limits: OOM kills, full disks."""
    t = state.topo
    tick = state.tick
    over = state.mem_used >= state.mem_alloc
    full = state.disk_used >= 0.99  # only hosts carry disk usage
    if not (over.any() or full.any()):
        return
    alive = state.active & state.up & (state.down_until <= tick) & t.is_process
    for node in np.flatnonzero(alive & over):
        symptom_line(state, int(node), "exited")  # what systemd logs of a process the kernel killed
        state.down_until[node] = tick + OOM_RESTART_TICKS
        state.mem_used[node] = t.base_memory[node]
        state.hung[node] = False
    if full.any():
        stops = alive & t.stops_on_full_disk & full[state.host_of]
        for node in np.flatnonzero(stops):
            state.up[node] = False
            symptom_line(state, int(node), "disk")


def _track_slo(state: SimState) -> None:
    if not state.slo_ok:
        state.slo_ok_since = None
        if state.incident_open_at is None and any(f.onset <= state.tick for f in state.faults):
            state.incident_open_at = state.tick
    elif state.slo_ok_since is None:
        state.slo_ok_since = state.tick


def advance(
    state: SimState,
    ticks: int,
    rng: np.random.Generator,
    step: int = DEFAULT_STEP,
    full_at_end: bool = True,
) -> None:
    """Let ``ticks`` simulated seconds pass, evaluating at most every ``step`` ticks.

    Scheduled faults are injected exactly at their onset tick (a chunk ends there). Only the
    last evaluation computes the full indicator matrix unless ``full_at_end`` is false.
    """
    remaining = int(ticks)
    while remaining > 0:
        dt = min(step, remaining)
        if state.pending:
            until_onset = min(f.onset for f in state.pending) - state.tick
            if 0 < until_onset < dt:
                dt = until_onset
        for fault in state.faults:
            if fault.active:
                fault.advance(state, dt)
        state.tick += dt
        remaining -= dt
        due = [f for f in state.pending if f.onset <= state.tick]
        if due:
            state.pending = [f for f in state.pending if f.onset > state.tick]
            for fault in due:
                fault.inject(state)
                state.faults.append(fault)
        _threshold_events(state)
        evaluate(state, rng, full=full_at_end and remaining == 0)
        if not state.quiet:  # a dry run's copy is never observed: nobody reads its counts
            accumulate_events(state, dt, rng)
        emit_logs(state, dt)
        _track_slo(state)


def recovered(state: SimState, hold: int) -> bool:
    """Whether the incident is over: every fault has struck and the SLOs have held for
    ``hold`` ticks since they were last restored (or since the last onset, when an agent
    cleared a fault before it broke any SLO)."""
    if state.pending or not state.faults or not state.slo_ok or state.slo_ok_since is None:
        return False
    since = max(state.slo_ok_since, max(f.onset for f in state.faults))
    return state.tick - since >= hold


def indicator_names() -> tuple[str, ...]:
    """The health indicators, in column order of ``state.health``."""
    return INDICATORS
