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

import numpy as np

from pase_gym.sim.roles import ROLE_NAMES, Kind
from pase_gym.sim.state import IND, INDICATORS, TIMEOUT, SimState

RETRY_FACTOR = 2.0  # extra load per unit of error a role returned at the last evaluation
WORKLOAD_NOISE = 0.03  # relative standard deviation of the per-role demand
OOM_RESTART_TICKS = 10  # systemd brings an OOM-killed process back after this long
DEFAULT_STEP = 5  # ticks per chunk when advancing time


class Modifiers:
    """Per-evaluation effects of the active faults, reset at every evaluation."""

    __slots__ = (
        "cap_mult",
        "cpu_add",
        "err_add",
        "lat_add",
        "load_add",
        "mem_add",
        "net_add",
        "reach",
    )

    def __init__(self, n: int) -> None:
        self.cap_mult = np.ones(n)
        self.err_add = np.zeros(n)
        self.lat_add = np.zeros(n)
        self.cpu_add = np.zeros(n)
        self.net_add = np.zeros(n)
        self.mem_add = np.zeros(n)
        self.reach = np.ones(n)
        self.load_add = np.zeros(n)


def evaluate(state: SimState, rng: np.random.Generator | None, full: bool = True) -> None:
    """Recompute the derived health of ``state`` at its current tick (in place).

    Args:
        state: the state to evaluate.
        rng: draws the workload noise; ``None`` evaluates the noiseless expectation.
        full: also compute the eight indicators and append them to the metric history
            (needed before observing; intermediate evaluations inside a plan skip it).
    """
    t = state.topo
    n = t.n
    tick = state.tick
    mods = Modifiers(n)
    for fault in state.faults:
        if fault.active:
            fault.apply(state, mods)
    host = state.host_of
    reach = mods.reach * mods.reach[host]
    host_alive = state.active & state.up  # meaningful for host nodes
    alive = state.active & state.up & host_alive[host]
    proc_ok = alive & (state.down_until <= tick)
    in_svc = state.in_service()
    routable = proc_ok & in_svc
    works = routable & ~state.hung & ~state.desynced & (reach > 0)

    # ---- workload spread over the replicas that receive traffic
    n_roles = len(ROLE_NAMES)
    role = t.role
    cfg_cap = state.cap0 * state.cpu_alloc
    w = cfg_cap * state.route_w * routable
    role_w = np.bincount(role, weights=w, minlength=n_roles)
    # when every weighted replica is out, the balancer falls back to any routable one
    fallback = role_w[role] <= 0
    if fallback.any():
        w = np.where(fallback, cfg_cap * routable, w)
        role_w = np.bincount(role, weights=w, minlength=n_roles)
    demand = state.demand * (1.0 + RETRY_FACTOR * state.role_err)
    if rng is not None:
        demand = demand * (1.0 + WORKLOAD_NOISE * rng.standard_normal(n_roles))
    safe_role_w = np.where(role_w > 0, role_w, 1.0)
    load = demand[role] * (w / safe_role_w[role])
    load = np.where(t.pinned, state.pinned_load * routable, load) + mods.load_add * routable
    cap_eff = cfg_cap * mods.cap_mult * state.throttle
    util = load / np.maximum(cap_eff, 1e-9)
    drop = 1.0 - 1.0 / np.maximum(util, 1.0)
    own_err = np.where(works, 1.0 - (1.0 - drop) * (1.0 - np.minimum(mods.err_add, 1.0)), 1.0)
    base_lat = t.base_latency
    own_lat = (
        base_lat / (1.0 - np.minimum(util, 0.95))
        + base_lat * 20.0 * np.maximum(util - 0.95, 0.0)
        + mods.lat_add
    )
    # memory pressure past 85% of the allocation means swapping: service times stretch
    mem_frac = state.mem_used / state.mem_alloc + mods.mem_add
    own_lat = own_lat + base_lat * 40.0 * np.maximum(mem_frac - 0.85, 0.0) / 0.15
    own_lat = np.where(works | ~routable, own_lat, TIMEOUT)

    # ---- propagation along dependencies, callee pools to callers
    pool = t.pool
    n_pools = t.n_pools
    # A pool with no replica taking traffic fails every call (error 1, latency TIMEOUT).
    wsum = np.bincount(pool, weights=w, minlength=n_pools)
    empty = (wsum <= 0).astype(np.float64)
    inv_wsum = 1.0 / (wsum + empty)
    empty_lat = empty * TIMEOUT
    err = own_err
    lat = own_lat
    src, dpool, calls = t.dep_src, t.dep_pool, t.dep_calls
    ok_own = 1.0 - own_err
    # After k rounds every node at most k hops above a leaf is exact; depth rounds suffice.
    for _ in range(t.depth):
        perr = np.bincount(pool, weights=w * err, minlength=n_pools) * inv_wsum + empty
        plat = np.bincount(pool, weights=w * lat, minlength=n_pools) * inv_wsum + empty_lat
        edge_lat = np.minimum(plat[dpool], TIMEOUT)
        # calls slower than half the timeout start to time out
        e = np.maximum(perr[dpool], edge_lat * (2.0 / TIMEOUT) - 1.0)
        log_ok = np.bincount(src, weights=np.log1p(-np.minimum(e, 1.0 - 1e-9)), minlength=n)
        err = 1.0 - ok_own * np.exp(log_ok)
        lat = own_lat + np.bincount(src, weights=calls * edge_lat, minlength=n)
    lat = np.minimum(lat, 4.0 * TIMEOUT)

    is_host = t.is_host
    works_all = np.where(is_host, host_alive & (reach > 0), works)
    state.err = err
    state.lat = lat
    state.load = load
    state.util = util
    role_load = np.bincount(role, weights=load, minlength=n_roles)
    state.role_err = np.where(
        role_load > 0,
        np.bincount(role, weights=load * err, minlength=n_roles) / np.maximum(role_load, 1e-9),
        0.0,
    )
    state.works = works_all
    # ---- service level objectives
    checked = in_svc & state.active
    ok_nodes = ~checked | (
        works_all & (is_host | ((err <= state.slo_error) & (lat <= state.slo_latency)))
    )
    state.slo_ok_nodes = ok_nodes
    groups_ok = True
    if t.groups:
        counts_g = np.bincount(
            t.group_of[t.group_of >= 0],
            weights=(checked & works_all)[t.group_of >= 0].astype(float),
            minlength=len(t.groups),
        )
        groups_ok = bool(np.all(counts_g >= state.desired))
    state.slo_ok = bool(ok_nodes.all()) and groups_ok
    state.evaluated_at = tick
    if full:
        _indicators(
            state,
            mods,
            alive,
            works,
            works_all,
            routable,
            reach,
            util,
            drop,
            load,
            cap_eff,
            cfg_cap,
            host_alive,
        )


def _indicators(
    state: SimState,
    mods: Modifiers,
    alive: np.ndarray,
    works: np.ndarray,
    works_all: np.ndarray,
    routable: np.ndarray,
    reach: np.ndarray,
    util: np.ndarray,
    drop: np.ndarray,
    load: np.ndarray,
    cap_eff: np.ndarray,
    cfg_cap: np.ndarray,
    host_alive: np.ndarray,
) -> None:
    """The eight health indicators of every node, and the metric history."""
    t = state.topo
    n = t.n
    host = state.host_of
    is_host = t.is_host
    err = state.err
    lat = state.lat
    cpu = np.where(works, 0.08 + 0.7 * np.minimum(util, 1.0), 0.02) + mods.cpu_add
    mem_frac = state.mem_used / np.maximum(state.mem_alloc, 1e-9) + mods.mem_add
    mem = np.where(alive, mem_frac, 0.0)
    hosted = ~is_host & state.active
    counts = np.maximum(np.bincount(host, weights=hosted.astype(float), minlength=n), 1.0)
    host_cpu = np.bincount(host, weights=cpu * hosted, minlength=n) / counts * 0.8
    host_mem = np.bincount(host, weights=mem * hosted, minlength=n) / counts
    cpu = np.where(is_host, host_cpu + mods.cpu_add, cpu)
    mem = np.where(is_host, host_mem, mem)
    net = np.where(reach > 0, np.minimum(0.05 + 0.3 * np.minimum(util, 1.5), 1.0), 0.0)
    host_net = np.bincount(host, weights=net * hosted, minlength=n) / counts
    net = np.where(is_host, np.where(reach > 0, np.maximum(host_net, 0.05), 0.0), net)
    net = net + mods.net_add * (reach > 0)
    disk = np.where(is_host, state.disk_used, state.disk_used[host])
    h = state.health
    h[:, IND["cpu"]] = np.clip(cpu, 0.0, 1.0) * alive
    h[:, IND["memory"]] = np.clip(mem, 0.0, 1.5)
    h[:, IND["disk"]] = np.clip(disk, 0.0, 1.0)
    h[:, IND["network"]] = np.clip(net, 0.0, 1.0)
    h[:, IND["latency"]] = np.where(is_host, 0.0, lat) * routable
    h[:, IND["error_rate"]] = np.where(is_host, 1.0 - host_alive * (reach > 0), err) * routable
    h[:, IND["throughput"]] = np.where(
        cap_eff > 0, load * (1.0 - err) / np.maximum(cfg_cap, 1e-9), 0.0
    )
    h[:, IND["availability"]] = np.where(is_host, works_all, works * (1.0 - drop))
    h[~state.active] = 0.0

    state.health_at = state.tick
    state.history.append(h.copy())
    state.history_ticks.append(state.tick)
    if len(state.history) > state.history_len:
        del state.history[0]
        del state.history_ticks[0]


def calibrate(state: SimState) -> None:
    """Set latency SLOs from the healthy, noiseless state (call once on a fresh state)."""
    evaluate(state, None)
    state.slo_latency = np.maximum(3.0 * state.lat, state.lat + 0.25)
    state.history.clear()
    state.history_ticks.clear()
    evaluate(state, None)


def _threshold_events(state: SimState) -> None:
    """Generic consequences of accumulators crossing limits: OOM kills, full disks."""
    t = state.topo
    tick = state.tick
    alive = state.active & state.up & (state.down_until <= tick) & t.is_process
    oom = alive & (state.mem_used >= state.mem_alloc)
    for node in np.flatnonzero(oom):
        state.add_log(
            int(node), "ERROR", f"kernel: Out of memory: Killed process ({t.role_name(int(node))})"
        )
        state.down_until[node] = tick + OOM_RESTART_TICKS
        state.mem_used[node] = t.base_memory[node]
        state.hung[node] = False
    full_hosts = (t.kind == Kind.HOST) & (state.disk_used >= 0.99)
    if full_hosts.any():
        victims = alive & t.writes_disk & full_hosts[state.host_of]
        stops = victims & np.isin(t.kind, (Kind.DATABASE, Kind.QUEUE))
        for node in np.flatnonzero(stops):
            state.up[node] = False
            state.add_log(int(node), "ERROR", "No space left on device; shutting down")


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
    from pase_gym.sim.signals import accumulate_events  # local: signals imports dynamics

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
        accumulate_events(state, dt, rng)
        _track_slo(state)


def recovered(state: SimState, hold: int) -> bool:
    """Whether the incident is over: SLOs met for ``hold`` ticks after it opened."""
    return (
        state.incident_open_at is not None
        and not state.pending
        and state.slo_ok
        and state.slo_ok_since is not None
        and state.tick - state.slo_ok_since >= hold
    )


def indicator_names() -> tuple[str, ...]:
    """The health indicators, in column order of ``state.health``."""
    return INDICATORS
