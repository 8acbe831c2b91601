"""Tests of the seeded topology generator and its compiled index arrays."""

from __future__ import annotations

import functools

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pase_gym.errors import TopologyError
from pase_gym.sim.roles import ROLE_INDEX, ROLE_NAMES, Kind
from pase_gym.sim.topology import (
    EDGE_TYPES,
    MAX_NODES,
    MIN_NODES,
    SIZE_PRESETS,
    Topology,
    build_topology,
)

REQUIRED_ROLES = (
    "keystone",
    "nova-api",
    "nova-scheduler",
    "nova-conductor",
    "placement",
    "neutron-server",
    "cinder-api",
    "cinder-scheduler",
    "glance-api",
    "rabbitmq",
    "mysql",
    "memcached",
    "haproxy",
    "nova-compute",
    "libvirt",
    "ovs-agent",
    "l3-agent",
    "dhcp-agent",
    "cinder-volume",
    "instance",
)
ARRAY_FIELDS = (
    "kind",
    "role",
    "host_of",
    "pool",
    "group_of",
    "initially_active",
    "standby_capable",
    "base_latency",
    "base_memory",
    "dep_src",
    "dep_pool",
    "dep_calls",
    "is_process",
    "tls",
    "writes_disk",
    "clustered",
    "pinned",
    "is_host",
)


@functools.cache
def topo(size: int | str, seed: int = 0) -> Topology:
    return build_topology(size, seed)


def active_count(t: Topology) -> int:
    return int(np.count_nonzero(t.initially_active))


def dependency_graph(t: Topology) -> nx.DiGraph:
    return nx.DiGraph([(a, b) for a, b, d in t.graph.edges(data=True) if d["type"] == "depends_on"])


# --- size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(SIZE_PRESETS))
def test_presets_give_about_the_requested_number_of_active_nodes(preset: str) -> None:
    target = SIZE_PRESETS[preset]
    assert target == {"tiny": 20, "small": 200, "medium": 2000, "large": 10000}[preset]
    count = active_count(topo(preset))
    assert 0.7 * target <= count <= 1.3 * target, (preset, count)


def test_a_preset_name_and_its_node_count_build_the_same_cloud() -> None:
    by_name, by_count = topo("small", 4), topo(SIZE_PRESETS["small"], 4)
    assert by_name.names == by_count.names
    assert np.array_equal(by_name.host_of, by_count.host_of)


@settings(max_examples=25, deadline=None)
@given(nodes=st.integers(24, 4000), seed=st.integers(0, 2**31 - 1))
def test_any_size_gives_about_that_many_active_nodes(nodes: int, seed: int) -> None:
    count = active_count(build_topology(nodes, seed))
    assert 0.7 * nodes <= count <= 1.3 * nodes, (nodes, count)


def test_bigger_requests_give_bigger_clouds() -> None:
    counts = [active_count(topo(p)) for p in ("tiny", "small", "medium", "large")]
    assert counts == sorted(counts) and len(set(counts)) == 4


@pytest.mark.parametrize("bad", ["huge", "Small", "", "10"])
def test_unknown_preset_raises_topology_error(bad: str) -> None:
    with pytest.raises(TopologyError, match="unknown cloud size"):
        build_topology(bad)


@pytest.mark.parametrize("bad", [MIN_NODES - 1, 0, -5, MAX_NODES + 1, 10**9])
def test_out_of_range_size_raises_topology_error(bad: int) -> None:
    with pytest.raises(TopologyError, match="between"):
        build_topology(bad)


def test_topology_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        build_topology("enormous")


def test_smallest_allowed_size_builds_a_working_cloud() -> None:
    t = build_topology(MIN_NODES, 0)
    assert active_count(t) > 0
    for role in REQUIRED_ROLES:
        assert np.any(t.initially_active[t.nodes_of_role(role)]), role


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "seed"), [("tiny", 0), ("small", 0), ("small", 7), (500, 3)])
def test_dependency_graph_is_a_dag(size: int | str, seed: int) -> None:
    t = topo(size, seed)
    deps = dependency_graph(t)
    assert deps.number_of_edges() > 0
    assert nx.is_directed_acyclic_graph(deps)
    # the kernel propagates errors for `depth` rounds: that must cover the longest chain
    assert t.depth >= nx.dag_longest_path_length(deps)
    assert t.depth == max(1, nx.dag_longest_path_length(deps))  # exactly networkx's figure


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])
def test_every_edge_type_is_known(size: str) -> None:
    t = topo(size)
    types = {d.get("type") for _, _, d in t.graph.edges(data=True)}
    assert types <= set(EDGE_TYPES)
    assert {"depends_on", "runs_on"} <= types


@pytest.mark.parametrize("size", ["tiny", "small", "medium"])
def test_every_active_node_runs_on_an_existing_active_host(size: str) -> None:
    t = topo(size)
    for i in np.flatnonzero(t.initially_active):
        host = int(t.host_of[i])
        assert 0 <= host < t.n
        assert t.kind[host] == Kind.HOST, t.names[i]
        assert t.initially_active[host], (t.names[i], t.names[host])
        if t.is_host[i]:
            assert host == i
    # the runs_on edges of the graph agree with the compiled host array
    for a, b, d in t.graph.edges(data=True):
        if d["type"] == "runs_on":
            assert t.host_of[t.index[a]] == t.index[b]


def test_every_active_service_has_its_host_and_dependencies_in_the_cloud() -> None:
    t = topo("small")
    services = np.flatnonzero(t.initially_active & t.is_process)
    assert services.size > 20
    for i in services:
        assert t.names[t.host_of[i]] in t.graph
    # every dependency edge of an active caller points at a pool with an active member
    for src, pool in zip(t.dep_src, t.dep_pool, strict=True):
        if t.initially_active[src]:
            assert np.any(t.initially_active[t.pool == pool]), t.names[src]


def test_compiled_arrays_match_the_graph() -> None:
    t = topo("small")
    assert t.n == t.graph.number_of_nodes() == len(t.names)
    assert t.index == {name: i for i, name in enumerate(t.names)}
    for name, data in t.graph.nodes(data=True):
        i = t.index[name]
        assert ROLE_NAMES[t.role[i]] == data["role"]
        assert t.kind[i] == int(data["kind"])
        assert bool(t.initially_active[i]) == bool(data["active"])
        assert name.startswith(data["role"] + "-")
    for name in ARRAY_FIELDS:
        array = getattr(t, name)
        if name not in ("dep_src", "dep_pool", "dep_calls"):
            assert array.shape == (t.n,), name


def test_spare_replicas_are_laid_out_inactive_and_last_in_their_group() -> None:
    t = topo("small")
    for group, members in zip(t.groups, t.group_members, strict=True):
        active = t.initially_active[members]
        assert active.any(), group
        # active replicas first, spares last (ScaleOut takes the spares in order)
        assert list(active) == sorted(active, reverse=True), group
    compute = t.group_members[t.group_index["compute"]]
    assert np.any(~t.initially_active[compute])  # there are spare compute hosts


def test_small_cloud_has_every_required_role() -> None:
    t = topo("small")
    for role in REQUIRED_ROLES:
        ids = t.nodes_of_role(role)
        assert np.count_nonzero(t.initially_active[ids]) >= 1, role
    # a replicated control plane behind haproxy in the multi-controller layout
    for role in ("keystone", "nova-api", "mysql", "rabbitmq", "haproxy"):
        assert np.count_nonzero(t.initially_active[t.nodes_of_role(role)]) == 3, role
    assert np.count_nonzero(t.initially_active & (t.role == ROLE_INDEX["controller"])) == 3


def test_every_compute_host_runs_its_agents() -> None:
    t = topo("small")
    for h in np.flatnonzero(t.initially_active & (t.role == ROLE_INDEX["compute"])):
        roles = {t.role_name(int(i)) for i in t.hosted_on(int(h))}
        assert {"nova-compute", "libvirt", "ovs-agent", "instance"} <= roles


# --- seeding --------------------------------------------------------------------------------


def instance_links(t: Topology) -> set[tuple[str, str]]:
    inst = set(np.flatnonzero(t.kind == Kind.INSTANCE).tolist())
    return {
        (a, b)
        for a, b, d in t.graph.edges(data=True)
        if d["type"] == "depends_on" and t.index[a] in inst
    }


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_same_seed_gives_an_identical_topology(size: str) -> None:
    a, b = build_topology(size, 11), build_topology(size, 11)
    assert a.names == b.names
    assert a.groups == b.groups
    for name in ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert sorted(a.graph.edges(data="type")) == sorted(b.graph.edges(data="type"))


def test_different_seeds_place_instances_differently() -> None:
    a, b = build_topology("small", 1), build_topology("small", 2)
    assert instance_links(a) != instance_links(b)
    assert len(instance_links(a)) > 50


def test_the_longest_chain_is_networkx_longest_path_and_catches_cycles() -> None:
    from pase_gym.sim.topology import _longest_chain

    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(2, 60))
        order = rng.permutation(n)  # edges go forward in a random order: a DAG
        edges = []
        for _ in range(int(rng.integers(0, 3 * n))):
            a, c = sorted(rng.choice(n, size=2, replace=False))
            edges.append((int(order[a]), int(order[c])))
        expected = nx.dag_longest_path_length(nx.DiGraph(edges)) if edges else 0
        assert _longest_chain(n, edges + edges[:3]) == expected, trial  # duplicates too
    with pytest.raises(TopologyError, match="cycle"):
        _longest_chain(3, [(0, 1), (1, 2), (2, 0)])
    assert _longest_chain(4, []) == 0
