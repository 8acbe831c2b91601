"""The evaluation kernel fused into one compiled loop nest (numba), when numba is installed.

:func:`pase_gym.sim.dynamics.evaluate` is the definition: about a hundred numpy operations over
arrays of a few hundred numbers, each paying the interpreter's and numpy's call overhead.
:meth:`Kernels.evaluate` does the same arithmetic, operation for operation and in the same
order (every sum accumulates its terms in the order ``np.bincount`` adds them, no operation is
fused or reordered, no fast-math), in a handful of loops compiled by numba
(:func:`head_core`, then per propagation round :func:`edges_core`, :func:`sums_core` and
:func:`error_core`, then :func:`tail_core`), so its results are the
numpy path's to the bit (``tests/sim/test_kernel.py`` compares them on every built-in
scenario's states).

The only transcendental functions, the propagation's ``log1p`` and ``exp``, are numpy's own,
called on whole arrays between the compiled parts (:meth:`Kernels.evaluate`): numpy's
vectorised ``exp`` differs from the C library's in the last bit on some processors (those with
AVX-512, for one), so compiled math would not reproduce the numpy path everywhere.

Which path runs is chosen once per process (:func:`fused_kernel`): the environment variable
``PASE_GYM_KERNEL`` set to ``numpy`` keeps the numpy path, ``numba`` asks for the fused one (an
error if numba is missing), and ``auto`` (the default) takes it when numba imports.
The first use compiles the kernel (a few seconds) and caches it on disk beside this module.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np

KERNEL_ENV = "PASE_GYM_KERNEL"
"""Environment variable choosing the evaluation path: ``auto`` (default), ``numpy``, ``numba``."""

_CHOICE: dict[str, Kernels | None] = {}


class KernelError(RuntimeError):
    """The fused kernel was asked for (``PASE_GYM_KERNEL=numba``) and cannot run."""


def fused_kernel() -> Kernels | None:
    """The fused kernel, or ``None`` where the numpy path runs (chosen once per process)."""
    if "kernel" in _CHOICE:
        return _CHOICE["kernel"]
    mode = os.environ.get(KERNEL_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "numpy", "numba"):
        raise KernelError(f"{KERNEL_ENV} must be auto, numpy or numba, found {mode!r}")
    kernel: Kernels | None = None
    if mode != "numpy":
        try:
            kernel = _compile()
        except ImportError as exc:
            if mode == "numba":
                raise KernelError(
                    f"{KERNEL_ENV}=numba, but numba cannot be imported ({exc}); install the "
                    "'fast' extra (pip install -e '.[fast]') or unset it"
                ) from None
    _CHOICE["kernel"] = kernel
    return kernel


def kernel_name() -> str:
    """``"numba"`` or ``"numpy"``: the path :func:`fused_kernel` chose."""
    return "numpy" if fused_kernel() is None else "numba"


def _reset_choice() -> None:
    """Forget the choice (tests)."""
    _CHOICE.clear()


class Kernels:
    """The compiled kernels: the evaluation (:meth:`evaluate`, in parts), :func:`indicators_core`
    and :func:`service_view_core`."""

    def __init__(
        self,
        head: Callable[..., Any],
        edges: Callable[..., Any],
        sums: Callable[..., Any],
        error: Callable[..., Any],
        tail: Callable[..., Any],
        indicators: Callable[..., Any],
        service_view: Callable[..., Any],
    ) -> None:
        self.head = head
        self.edges = edges
        self.sums = sums
        self.error = error
        self.tail = tail
        self.indicators = indicators
        self.service_view = service_view

    def evaluate(self, *args: Any) -> tuple[Any, ...]:
        """What :func:`pase_gym.sim.dynamics.evaluate` computes, from :func:`head_core`'s
        arguments: the compiled parts, with numpy's own ``log1p`` and ``exp`` between them.

        Returns ``(err, lat, load, util, retry_err, role_err, works_all, slo_ok_nodes,
        slo_ok, alive, cap_eff, cfg_cap, host_alive, reach_ok, routable, works)``.
        """
        (
            v0,
            v1,
            ok_own,
            own_lat,
            w,
            inv,
            fill0,
            fill1,
            load,
            util,
            cap_eff,
            cfg_cap,
            alive,
            host_alive,
            reach_ok,
            routable,
            works,
            in_svc,
            role_w,
        ) = self.head(*args)
        a = _HEAD_ARGS
        role, pool, is_host = args[a["role"]], args[a["pool"]], args[a["is_host"]]
        dep_src, dep_pool, dep_calls = args[a["dep_src"]], args[a["dep_pool"]], args[a["dep_calls"]]
        depth, n_pools, timeout = args[a["depth"]], args[a["n_pools"]], args[a["timeout"]]
        n_edges = dep_src.shape[0]
        s0, s1 = np.empty(n_pools), np.empty(n_pools)
        x, b0, b1 = np.empty(n_edges), np.empty(n_edges), np.empty(n_edges)
        n = v0.shape[0]
        sums0, sums1, ex = np.empty(n), np.empty(n), np.empty(n)
        for _ in range(depth):
            self.edges(
                v0, v1, w, pool, inv, fill0, fill1, dep_pool, dep_calls, timeout, s0, s1, x, b1
            )
            np.log1p(x, out=b0)
            self.sums(dep_src, b0, b1, own_lat, sums0, sums1, v1)
            np.exp(sums0, out=ex)
            self.error(ok_own, ex, v0)
        err, lat, weighted, role_err, works_all, slo_ok_nodes, slo_ok = self.tail(
            v0,
            v1,
            is_host,
            host_alive,
            reach_ok,
            works,
            role,
            load,
            args[a["n_roles"]],
            role_w,
            args[a["demand_state"]],
            in_svc,
            args[a["slo_error"]],
            args[a["slo_latency"]],
            args[a["grouped_ids"]],
            args[a["grouped_ids_group"]],
            args[a["n_groups"]],
            args[a["desired"]],
            timeout,
        )
        return (
            err,
            lat,
            load,
            util,
            weighted,
            role_err,
            works_all,
            slo_ok_nodes,
            slo_ok,
            alive,
            cap_eff,
            cfg_cap,
            host_alive,
            reach_ok,
            routable,
            works,
        )


def _compile() -> Kernels:
    """numba's compiled kernels (ImportError without numba)."""
    from numba import njit

    return Kernels(
        *(
            njit(cache=True)(f)
            for f in (
                head_core,
                edges_core,
                sums_core,
                error_core,
                tail_core,
                indicators_core,
                service_view_core,
            )
        )
    )


def plain_kernels() -> Kernels:
    """The same parts uncompiled (plain Python loops: slow; for tests without numba)."""
    return Kernels(
        head_core,
        edges_core,
        sums_core,
        error_core,
        tail_core,
        indicators_core,
        service_view_core,
    )


def head_core(
    role: np.ndarray,
    pool: np.ndarray,
    host: np.ndarray,
    is_host: np.ndarray,
    base_latency: np.ndarray,
    pinned_ids: np.ndarray,
    shared_roles: np.ndarray,
    dep_src: np.ndarray,
    dep_pool: np.ndarray,
    dep_calls: np.ndarray,
    depth: int,
    n_pools: int,
    n_roles: int,
    active: np.ndarray,
    up: np.ndarray,
    isolated: np.ndarray,
    drained: np.ndarray,
    down_until: np.ndarray,
    tick: int,
    hung: np.ndarray,
    desynced: np.ndarray,
    cap0: np.ndarray,
    cpu_alloc: np.ndarray,
    route_w: np.ndarray,
    throttle: np.ndarray,
    mem_used: np.ndarray,
    mem_alloc: np.ndarray,
    pinned_load: np.ndarray,
    demand_state: np.ndarray,
    retry_err: np.ndarray,
    noise: np.ndarray,
    use_noise: bool,
    cap_mult: np.ndarray,
    err_add: np.ndarray,
    lat_add: np.ndarray,
    mem_add: np.ndarray,
    reach: np.ndarray,
    load_add: np.ndarray,
    slo_error: float,
    slo_latency: np.ndarray,
    grouped_ids: np.ndarray,
    grouped_ids_group: np.ndarray,
    n_groups: int,
    desired: np.ndarray,
    retry_factor: float,
    workload_noise: float,
    timeout: float,
) -> tuple[Any, ...]:
    """What :func:`pase_gym.sim.dynamics.evaluate` computes before the propagation along
    dependencies, in loops (see the module docstring); plain Python here, compiled by
    :func:`fused_kernel`. Returns the propagation's starting values and what the tail needs.

    ``np.maximum(a, b)`` is spelled ``a if (a >= b or a != a) else b`` (numpy's rule, NaN
    included) and ``np.minimum`` alike, so that even the sign of a zero is numpy's.
    """
    n = role.shape[0]
    reach_ok = np.empty(n, np.bool_)
    host_alive = np.empty(n, np.bool_)
    for i in range(n):
        reach_ok[i] = (reach[i] * reach[host[i]]) > 0
        host_alive[i] = active[i] and up[i]
    alive = np.empty(n, np.bool_)
    in_svc = np.empty(n, np.bool_)
    routable = np.empty(n, np.bool_)
    works = np.empty(n, np.bool_)
    for i in range(n):
        h = host[i]
        alive[i] = host_alive[i] and host_alive[h]
        out = isolated[i] or drained[i] or isolated[h] or drained[h]
        in_svc[i] = active[i] and not out
        routable[i] = alive[i] and down_until[i] <= tick and in_svc[i]
        works[i] = routable[i] and reach_ok[i] and not (hung[i] or desynced[i])

    # ---- workload spread over the replicas that receive traffic
    cfg_cap = np.empty(n)
    w = np.empty(n)
    role_w = np.zeros(n_roles)
    for i in range(n):
        cfg_cap[i] = cap0[i] * cpu_alloc[i]
        w[i] = cfg_cap[i] * (1.0 if routable[i] else 0.0) * route_w[i]
        role_w[role[i]] += w[i]
    fallback = False
    for r in shared_roles:
        if role_w[r] <= 0:
            fallback = True
    if fallback:
        for i in range(n):
            if role_w[role[i]] <= 0:
                w[i] = cfg_cap[i] * (1.0 if routable[i] else 0.0)
        role_w[:] = 0.0
        for i in range(n):
            role_w[role[i]] += w[i]
    demand = np.empty(n_roles)
    per_weight = np.empty(n_roles)
    for r in range(n_roles):
        demand[r] = demand_state[r] * (1.0 + retry_factor * retry_err[r])
        if use_noise:
            demand[r] *= 1.0 + workload_noise * noise[r]
        per_weight[r] = demand[r] / (role_w[r] + (1.0 if role_w[r] <= 0 else 0.0))
    load = np.empty(n)
    for i in range(n):
        load[i] = per_weight[role[i]] * w[i]
    for p in pinned_ids:
        load[p] = pinned_load[p] * (1.0 if routable[p] else 0.0)
    cap_eff = np.empty(n)
    util = np.empty(n)
    ok_own = np.empty(n)
    own_err = np.empty(n)
    own_lat = np.empty(n)
    swap = 40.0 / 0.15
    for i in range(n):
        load[i] += load_add[i] * (1.0 if routable[i] else 0.0)
        cap_eff[i] = cfg_cap[i] * cap_mult[i] * throttle[i]
        u = load[i] / (cap_eff[i] + 1e-12)
        util[i] = u
        served = 1.0 / (u if (u >= 1.0 or u != u) else 1.0)
        x = err_add[i]
        e_add = x if (x <= 1.0 or x != x) else 1.0
        ok_own[i] = (1.0 if works[i] else 0.0) * served * (1.0 - e_add)
        own_err[i] = 1.0 - ok_own[i]
        mem_frac = mem_used[i] / mem_alloc[i] + mem_add[i]
        over = u - 0.95
        swapping = mem_frac - 0.85
        factor = (
            1.0 / (1.0 - (u if (u <= 0.95 or u != u) else 0.95))
            + 20.0 * (over if (over >= 0.0 or over != over) else 0.0)
            + swap * (swapping if (swapping >= 0.0 or swapping != swapping) else 0.0)
        )
        own_lat[i] = base_latency[i] * factor + lat_add[i]
        if routable[i] and not works[i]:
            own_lat[i] = timeout

    # ---- propagation along dependencies, callee pools to callers
    wsum = np.zeros(n_pools)
    for i in range(n):
        wsum[pool[i]] += w[i]
    inv = np.empty(n_pools)
    fill0 = np.empty(n_pools)
    fill1 = np.empty(n_pools)
    for p in range(n_pools):
        empty = 1.0 if wsum[p] <= 0 else 0.0
        inv[p] = 1.0 / (wsum[p] + empty)
        fill0[p] = empty
        fill1[p] = empty * timeout
    return (
        own_err.copy(),
        own_lat.copy(),
        ok_own,
        own_lat,
        w,
        inv,
        fill0,
        fill1,
        load,
        util,
        cap_eff,
        cfg_cap,
        alive,
        host_alive,
        reach_ok,
        routable,
        works,
        in_svc,
        role_w,
    )


#: :func:`head_core`'s parameters by name -> position (:meth:`Kernels.evaluate` reads its
#: arguments by name)
_HEAD_ARGS: dict[str, int] = {
    name: i for i, name in enumerate(inspect.signature(head_core).parameters)
}


def edges_core(
    v0: np.ndarray,
    v1: np.ndarray,
    w: np.ndarray,
    pool: np.ndarray,
    inv: np.ndarray,
    fill0: np.ndarray,
    fill1: np.ndarray,
    dep_pool: np.ndarray,
    dep_calls: np.ndarray,
    timeout: float,
    s0: np.ndarray,
    s1: np.ndarray,
    x: np.ndarray,
    b1: np.ndarray,
) -> None:
    """One propagation round's first half: each pool's traffic-weighted error and latency,
    gathered per dependency edge; ``x`` receives the argument of the edge's ``log1p`` (taken
    by numpy between the halves), ``b1`` the edge's latency times its calls."""
    n = pool.shape[0]
    k = 2.0 / timeout
    s0[:] = 0.0
    s1[:] = 0.0
    for i in range(n):
        s0[pool[i]] += v0[i] * w[i]
    for i in range(n):
        s1[pool[i]] += v1[i] * w[i]
    for p in range(s0.shape[0]):
        s0[p] = s0[p] * inv[p] + fill0[p]
        s1[p] = s1[p] * inv[p] + fill1[p]
    for j in range(dep_pool.shape[0]):
        g0 = s0[dep_pool[j]]
        g1 = s1[dep_pool[j]]
        edge_lat = g1 if (g1 <= timeout or g1 != g1) else timeout
        late = edge_lat * k - 1.0
        e = g0 if (g0 >= late or g0 != g0) else late
        x[j] = -(e if (e <= 1.0 - 1e-9 or e != e) else 1.0 - 1e-9)
        b1[j] = edge_lat * dep_calls[j]


def sums_core(
    dep_src: np.ndarray,
    b0: np.ndarray,
    b1: np.ndarray,
    own_lat: np.ndarray,
    sums0: np.ndarray,
    sums1: np.ndarray,
    v1: np.ndarray,
) -> None:
    """The second half: the edges' terms summed per caller (``sums0``, whose ``exp`` numpy
    takes next; ``sums1``, a buffer) and the callers' latency ``v1``."""
    sums0[:] = 0.0
    sums1[:] = 0.0
    for j in range(dep_src.shape[0]):
        sums0[dep_src[j]] += b0[j]
    for j in range(dep_src.shape[0]):
        sums1[dep_src[j]] += b1[j]
    for i in range(own_lat.shape[0]):
        v1[i] = own_lat[i] + sums1[i]


def error_core(ok_own: np.ndarray, ex: np.ndarray, v0: np.ndarray) -> None:
    """The callers' error rate from the ``exp`` of their summed terms."""
    for i in range(v0.shape[0]):
        v0[i] = 1.0 - ok_own[i] * ex[i]


def tail_core(
    v0: np.ndarray,
    v1: np.ndarray,
    is_host: np.ndarray,
    host_alive: np.ndarray,
    reach_ok: np.ndarray,
    works: np.ndarray,
    role: np.ndarray,
    load: np.ndarray,
    n_roles: int,
    role_w: np.ndarray,
    demand_state: np.ndarray,
    in_svc: np.ndarray,
    slo_error: float,
    slo_latency: np.ndarray,
    grouped_ids: np.ndarray,
    grouped_ids_group: np.ndarray,
    n_groups: int,
    desired: np.ndarray,
    timeout: float,
) -> tuple[Any, ...]:
    """After the propagation: latency capped, role errors, service level objectives."""
    n = v0.shape[0]
    err = v0
    lat = np.empty(n)
    works_all = np.empty(n, np.bool_)
    for i in range(n):
        x = v1[i]
        lat[i] = x if (x <= 4.0 * timeout or x != x) else 4.0 * timeout
        works_all[i] = (host_alive[i] and reach_ok[i]) if is_host[i] else works[i]
    role_load = np.zeros(n_roles)
    for i in range(n):
        role_load[role[i]] += load[i]
    weighted = np.zeros(n_roles)
    for i in range(n):
        weighted[role[i]] += load[i] * err[i]
    role_err = np.empty(n_roles)
    for r in range(n_roles):
        weighted[r] = weighted[r] / (role_load[r] + 1e-12)
        role_err[r] = weighted[r] if role_w[r] > 0 else (1.0 if demand_state[r] > 0 else 0.0)

    # ---- service level objectives
    slo_ok_nodes = np.empty(n, np.bool_)
    bad_any = False
    for i in range(n):
        ok = works_all[i] and (is_host[i] or (err[i] <= slo_error and lat[i] <= slo_latency[i]))
        bad = in_svc[i] and not ok
        slo_ok_nodes[i] = not bad
        if bad:
            bad_any = True
    groups_ok = True
    if n_groups > 0:
        counts = np.zeros(n_groups)
        for j in range(grouped_ids.shape[0]):
            x = grouped_ids[j]
            counts[grouped_ids_group[j]] += 1.0 if (in_svc[x] and works_all[x]) else 0.0
        for g in range(n_groups):
            if not counts[g] >= desired[g]:
                groups_ok = False
    slo_ok = groups_ok and not bad_any
    return err, lat, weighted, role_err, works_all, slo_ok_nodes, slo_ok


def indicators_core(
    host: np.ndarray,
    is_host: np.ndarray,
    active: np.ndarray,
    mem_used: np.ndarray,
    mem_alloc: np.ndarray,
    disk_used: np.ndarray,
    err: np.ndarray,
    lat: np.ndarray,
    load: np.ndarray,
    util: np.ndarray,
    alive: np.ndarray,
    works: np.ndarray,
    works_all: np.ndarray,
    routable: np.ndarray,
    reach_ok: np.ndarray,
    cap_eff: np.ndarray,
    cfg_cap: np.ndarray,
    host_alive: np.ndarray,
    cpu_add: np.ndarray,
    mem_add: np.ndarray,
    net_add: np.ndarray,
    h: np.ndarray,
) -> None:
    """What :func:`pase_gym.sim.dynamics._indicators` writes into ``h`` (the eight
    indicators of every node), in loops; plain Python here, compiled by :func:`fused_kernel`."""
    # np.maximum(a, b) is ``a if a >= b or a != a else b`` (NaN from a), np.minimum alike
    n = host.shape[0]
    cpu = np.empty(n)
    mem = np.empty(n)
    net = np.empty(n)
    counts = np.zeros(n)
    host_cpu = np.zeros(n)
    host_mem = np.zeros(n)
    host_net = np.zeros(n)
    for i in range(n):
        u = util[i]
        u1 = u if (u <= 1.0 or u != u) else 1.0
        cpu[i] = (0.08 + 0.7 * u1 if works[i] else 0.02) + cpu_add[i]
        a = mem_alloc[i]
        alloc = a if (a >= 1e-9 or a != a) else 1e-9
        mem_frac = mem_used[i] / alloc + mem_add[i]
        mem[i] = mem_frac if alive[i] else 0.0
        u15 = u if (u <= 1.5 or u != u) else 1.5
        busy = 0.05 + 0.3 * u15
        busy = busy if (busy <= 1.0 or busy != busy) else 1.0
        net[i] = busy if reach_ok[i] else 0.0
    # four sums over the hosted nodes, each in node order (one loop: their bins are apart)
    for i in range(n):
        hosted = 1.0 if (not is_host[i] and active[i]) else 0.0
        counts[host[i]] += hosted
        host_cpu[host[i]] += cpu[i] * hosted
        host_mem[host[i]] += mem[i] * hosted
        host_net[host[i]] += net[i] * hosted
    for i in range(n):
        c = counts[i] if counts[i] >= 1.0 else 1.0
        if is_host[i]:
            cpu[i] = host_cpu[i] / c * 0.8 + cpu_add[i]
            mem[i] = host_mem[i] / c
            hn = host_net[i] / c
            net[i] = (hn if (hn >= 0.05 or hn != hn) else 0.05) if reach_ok[i] else 0.0
        net[i] = net[i] + net_add[i] * (1.0 if reach_ok[i] else 0.0)
    for i in range(n):
        x = cpu[i]
        x = x if (x >= 0.0 or x != x) else 0.0
        x = x if (x <= 1.0 or x != x) else 1.0
        h[i, 0] = x * (1.0 if alive[i] else 0.0)
        x = mem[i]
        x = x if (x >= 0.0 or x != x) else 0.0
        h[i, 1] = x if (x <= 1.5 or x != x) else 1.5
        x = disk_used[i] if is_host[i] else disk_used[host[i]]
        h[i, 2] = x if (x <= 1.0 or x != x) else 1.0
        x = net[i]
        h[i, 3] = x if (x <= 1.0 or x != x) else 1.0
        r = 1.0 if routable[i] else 0.0
        h[i, 4] = (0.0 if is_host[i] else lat[i]) * r
        down = 1.0 - (1.0 if (host_alive[i] and reach_ok[i]) else 0.0)
        h[i, 5] = (down if is_host[i] else err[i]) * r
        x = cfg_cap[i]
        cap = x if (x >= 1e-9 or x != x) else 1e-9
        h[i, 6] = load[i] * (1.0 - err[i]) / cap if cap_eff[i] > 0 else 0.0
        u = util[i]
        served = u if (u >= 1.0 or u != u) else 1.0
        if is_host[i]:
            h[i, 7] = 1.0 if works_all[i] else 0.0
        else:
            h[i, 7] = (1.0 if works[i] else 0.0) / served
    for i in range(n):
        if not active[i] or not (reach_ok[i] and host_alive[host[i]]):
            for j in range(8):
                h[i, j] = 0.0


def service_view_core(
    flat: np.ndarray,
    is_process: np.ndarray,
    active: np.ndarray,
    pool: np.ndarray,
    route_w: np.ndarray,
    size: int,
    service_cols: np.ndarray,
    detail_cols: np.ndarray,
) -> None:
    """What :func:`pase_gym.sim.observe._to_service_view` does to ``flat`` (``(k, n, 8)``), in
    loops; plain Python here, compiled by :func:`fused_kernel`."""
    n = is_process.shape[0]
    count = 0
    for i in range(n):
        if is_process[i] and active[i]:
            count += 1
    if count == 0:
        return
    ids = np.empty(count, np.intp)
    j = 0
    for i in range(n):
        if is_process[i] and active[i]:
            ids[j] = i
            j += 1
    weight = np.empty(count)
    total = np.zeros(size)
    for j in range(count):
        x = route_w[ids[j]]
        weight[j] = x if (x >= 0.0 or x != x) else 0.0
        total[pool[ids[j]]] += weight[j]
    unweighted = np.empty(count, np.bool_)
    for j in range(count):
        unweighted[j] = total[pool[ids[j]]] <= 0
    total[:] = 0.0
    for j in range(count):
        if unweighted[j]:
            weight[j] = 1.0
        total[pool[ids[j]]] += weight[j]
    sums = np.empty(size)
    for k in range(flat.shape[0]):
        for c in service_cols:
            sums[:] = 0.0
            for j in range(count):
                sums[pool[ids[j]]] += weight[j] * flat[k, ids[j], c]
            for j in range(count):
                p = pool[ids[j]]
                flat[k, ids[j], c] = sums[p] / total[p]
        for i in range(n):
            if is_process[i]:
                for c in detail_cols:
                    flat[k, i, c] = 0.0
