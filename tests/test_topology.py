"""Topology builder: node/edge naming, attributes, hop counts, determinism."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from gaisnet_env import profiles
from gaisnet_env.scenario import TopologyConfig, load_scenario
from gaisnet_env.topology import access_links, backhaul_hops, build_topology, node_positions


def _check_common(g: nx.Graph, n: int) -> None:
    tiers = dict(g.nodes(data="tier"))
    assert tiers["cloud"] == "cloud"
    for i in range(n):
        assert tiers[f"edge{i}"] == "edge" and tiers[f"end{i}"] == "end"
        assert g.nodes[f"edge{i}"]["index"] == i
        assert g.degree[f"end{i}"] == 1
        assert g.edges[f"end{i}", f"edge{i}"]["kind"] == "access"
    for _, _, data in g.edges(data=True):
        assert data["kind"] in ("access", "backhaul")
        assert data["link"] in profiles.LINKS
    assert nx.is_connected(g)
    pos = node_positions(g)
    assert set(pos) == set(g.nodes)
    assert all(len(p) == 2 and all(np.isfinite(p)) for p in pos.values())


def test_star() -> None:
    g = build_topology(TopologyConfig(kind="star", n_edges=5), seed=0)
    _check_common(g, 5)
    assert g.number_of_nodes() == 11
    np.testing.assert_array_equal(backhaul_hops(g), np.ones(5))
    assert g.edges["edge3", "cloud"] == {"link": "fibre_metro", "kind": "backhaul"}


def test_tree() -> None:
    g = build_topology(TopologyConfig(kind="tree", n_edges=10, branching=4), seed=0)
    _check_common(g, 10)
    aggs = sorted(v for v, t in g.nodes(data="tier") if t == "agg")
    assert aggs == ["agg0", "agg1", "agg2"]  # ceil(10 / 4)
    assert g.has_edge("edge5", "agg1") and g.has_edge("edge9", "agg2") and g.has_edge("agg2", "cloud")
    assert not g.has_edge("edge0", "cloud")
    np.testing.assert_array_equal(backhaul_hops(g), np.full(10, 2))


def test_random_geometric() -> None:
    cfg = TopologyConfig(kind="random_geometric", n_edges=12, radius=0.3)
    g = build_topology(cfg, seed=3)
    _check_common(g, 12)
    hops = backhaul_hops(g)
    assert hops.shape == (12,) and hops.min() == 1
    # each connected component of edges has exactly one gateway to the cloud
    edges_only = g.subgraph(f"edge{i}" for i in range(12))
    for comp in nx.connected_components(edges_only):
        assert sum(g.has_edge(v, "cloud") for v in comp) == 1
        # hop count = 1 + shortest path to the gateway
        gw = next(v for v in comp if g.has_edge(v, "cloud"))
        for v in comp:
            assert hops[g.nodes[v]["index"]] == 1 + nx.shortest_path_length(edges_only, v, gw)
    # deterministic in the seed, different across seeds
    assert node_positions(build_topology(cfg, seed=3)) == node_positions(g)
    assert node_positions(build_topology(cfg, seed=4)) != node_positions(g)


def test_random_geometric_tiny_radius_all_gateways() -> None:
    g = build_topology(TopologyConfig(kind="random_geometric", n_edges=6, radius=0.01), seed=0)
    np.testing.assert_array_equal(backhaul_hops(g), np.ones(6))


def test_access_links_per_edge() -> None:
    links = ["5g_nr_midband", "lte", "wifi_6"]
    g = build_topology(TopologyConfig(n_edges=3, edge_access_links=links), seed=0)
    assert access_links(g) == links
    assert access_links(build_topology(TopologyConfig(n_edges=2, access_link="lte"))) == ["lte", "lte"]
    with pytest.raises(ValueError, match="edge_access_links"):
        build_topology(TopologyConfig(n_edges=2, edge_access_links=["lte"]))


def test_city_scenario() -> None:
    sc = load_scenario("city")
    g = build_topology(sc.topology, sc.seed)
    _check_common(g, 64)
    np.testing.assert_array_equal(backhaul_hops(g), np.full(64, 2))
    assert access_links(g)[3] == "wifi_6" and access_links(g)[6] == "lte"
