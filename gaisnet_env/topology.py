"""Network topology of a scenario as a networkx graph.

Nodes: ``cloud``; ``edge0..edge{E-1}``; ``end0..end{E-1}`` (the pooled end devices of cell
``i``, attached to ``edge{i}``); for trees also ``agg0..agg{K-1}`` (metro aggregation
switches). Node attributes: ``tier`` (``"cloud"``, ``"agg"``, ``"edge"``, ``"end"``) and ``pos``
(x, y in the unit square, for rendering); edges also carry ``index`` (their cell number).
Graph edges carry ``link`` (a name in :data:`gaisnet_env.profiles.LINKS`) and ``kind``
(``"access"`` for end-edge, ``"backhaul"`` otherwise).

Kinds:

* ``star``: every edge links straight to the cloud (1 backhaul hop).
* ``tree``: edges are grouped ``branching`` at a time under switch ``agg{i // branching}``,
  which links to the cloud (2 hops).
* ``random_geometric``: edges are placed uniformly in the unit square (from ``seed``) and
  linked when closer than ``radius``; the cloud sits outside the square at (0.5, 1.15). In
  each connected component the edge nearest to the cloud is the *gateway* and links to the
  cloud; the others reach it over the shortest path among edges, so an edge's hop count is
  ``1 + hops to its gateway``.

The env multiplies the backhaul RTT by :func:`backhaul_hops`.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from gaisnet_env.scenario import TopologyConfig

CLOUD = "cloud"
_CLOUD_POS_RGG = (0.5, 1.15)


def edge_name(i: int) -> str:
    return f"edge{i}"


def end_name(i: int) -> str:
    return f"end{i}"


def build_topology(cfg: TopologyConfig, seed: int = 0) -> nx.Graph:
    """Build the graph of ``cfg``; ``seed`` places the edges of a random geometric layout."""
    n = cfg.n_edges
    g = nx.Graph(kind=cfg.kind)
    access = cfg.edge_access_links or [cfg.access_link] * n
    if len(access) != n:
        raise ValueError(f"edge_access_links: got {len(access)} entries; must have n_edges={n}")
    backhaul = {"link": cfg.backhaul_link, "kind": "backhaul"}

    if cfg.kind == "random_geometric":
        rng = np.random.default_rng(seed)
        xy = rng.uniform(0.05, 0.95, size=(n, 2))
        g.add_node(CLOUD, tier="cloud", pos=_CLOUD_POS_RGG)
        for i in range(n):
            g.add_node(edge_name(i), tier="edge", index=i, pos=(float(xy[i, 0]), float(xy[i, 1])))
        d = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
        for i, j in zip(*np.nonzero(np.triu(d < cfg.radius, k=1)), strict=True):
            g.add_edge(edge_name(int(i)), edge_name(int(j)), **backhaul)
        to_cloud = np.linalg.norm(xy - np.array(_CLOUD_POS_RGG), axis=1)
        for comp in nx.connected_components(g.subgraph(edge_name(i) for i in range(n))):
            gateway = min(comp, key=lambda v: (to_cloud[g.nodes[v]["index"]], g.nodes[v]["index"]))
            g.add_edge(gateway, CLOUD, **backhaul)
        end_pos = [(float(x) + 0.03, float(y) - 0.04) for x, y in xy]
    else:
        g.add_node(CLOUD, tier="cloud", pos=(0.5, 0.5))
        angles = [2 * math.pi * (i + 0.5) / n for i in range(n)]
        for i, a in enumerate(angles):
            g.add_node(edge_name(i), tier="edge", index=i, pos=(0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a)))
        if cfg.kind == "star":
            for i in range(n):
                g.add_edge(edge_name(i), CLOUD, **backhaul)
        elif cfg.kind == "tree":
            k = math.ceil(n / cfg.branching)
            for j in range(k):
                members = range(j * cfg.branching, min(n, (j + 1) * cfg.branching))
                a = sum(angles[i] for i in members) / len(members)
                g.add_node(f"agg{j}", tier="agg", pos=(0.5 + 0.15 * math.cos(a), 0.5 + 0.15 * math.sin(a)))
                g.add_edge(f"agg{j}", CLOUD, **backhaul)
                for i in members:
                    g.add_edge(edge_name(i), f"agg{j}", **backhaul)
        else:
            raise ValueError(f"topology.kind: got {cfg.kind!r}; allowed values: star, tree, random_geometric")
        end_pos = [(0.5 + 0.45 * math.cos(a), 0.5 + 0.45 * math.sin(a)) for a in angles]

    for i in range(n):
        g.add_node(end_name(i), tier="end", index=i, pos=end_pos[i])
        g.add_edge(end_name(i), edge_name(i), link=access[i], kind="access")
    return g


def n_edges(graph: nx.Graph) -> int:
    """Number of edge servers in ``graph``."""
    return sum(1 for _, t in graph.nodes(data="tier") if t == "edge")


def backhaul_hops(graph: nx.Graph) -> np.ndarray:
    """Backhaul hops from each edge to the cloud, shape (E,), ordered by edge index."""
    core = graph.subgraph(v for v, t in graph.nodes(data="tier") if t != "end")
    dist = nx.single_source_shortest_path_length(core, CLOUD)
    return np.array([dist[edge_name(i)] for i in range(n_edges(graph))], dtype=np.int64)


def access_links(graph: nx.Graph) -> list[str]:
    """Access link profile name of each cell, ordered by edge index."""
    return [graph.edges[end_name(i), edge_name(i)]["link"] for i in range(n_edges(graph))]


def node_positions(graph: nx.Graph) -> dict[str, tuple[float, float]]:
    """Rendering position (x, y) of every node."""
    return {v: tuple(p) for v, p in graph.nodes(data="pos")}
