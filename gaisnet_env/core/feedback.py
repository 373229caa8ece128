"""Labelled feedback: how many of an epoch's classify requests return a label to their edge, and which
tiers' answers the edge can score on them (the operator's view of accuracy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaisnet_env.core import draws
from gaisnet_env.core.layout import ROUTE_CLOUD


def labels(rng: np.random.Generator, counts: np.ndarray, n_generate: np.ndarray, label_rate: float,
           per_epoch: int, f: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(n_fb (E,) int, edges)``: a ``label_rate`` share of the classify requests returns a label (one
    draw from ``rng``), at most ``per_epoch`` per cell; ``edges`` are the cells with feedback whose edge
    is up."""
    n_lab = draws.binomial(rng, counts - n_generate.astype(np.int64), label_rate)
    n_fb = np.minimum(n_lab, per_epoch).astype(np.int64)
    edges = np.flatnonzero(n_fb > 0) if f["active"] == 0 else np.flatnonzero((n_fb > 0) & (f["edge_up"] > 0))
    return n_fb, edges


def observed(fb_edges: np.ndarray, route: np.ndarray, n_edges: int) -> np.ndarray:
    """(E, 3) bool, the tiers (end, edge, cloud) whose answers the edges of ``fb_edges`` can score: end
    and edge always; the cloud's only where the edge routed to the cloud this epoch."""
    out = np.zeros((n_edges, 3), dtype=bool)
    out[fb_edges, :2] = True
    out[fb_edges, 2] = route[fb_edges] == ROUTE_CLOUD
    return out
