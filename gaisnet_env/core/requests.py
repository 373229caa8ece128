"""Requests of an epoch: how many arrive, where each kind is served, and the compute work they bring.

Per-edge quantities of the two request kinds are (2, E) arrays: row 0 classify, row 1 generate
(row-major, so ``.ravel()`` is the concatenation classify then generate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaisnet_env.core import draws
from gaisnet_env.core.layout import ROUTE_CLOUD, ROUTE_EDGE, ROUTE_END


def arrivals(rng: np.random.Generator, rates: np.ndarray, epoch_s: float,
             generate_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts (E,) int, n_req (E,) float, N (2, E) float)``: Poisson arrivals at ``rates`` (1/s) over
    ``epoch_s`` seconds, each a generate request with probability ``generate_share`` (two draws from
    ``rng``, in this order)."""
    counts = draws.poisson(rng, rates * epoch_s)
    n_req = counts.astype(np.float64)
    N = np.empty((2, rates.shape[0]))
    N[1] = draws.binomial(rng, counts, generate_share)
    np.subtract(n_req, N[1], out=N[0])
    return counts, n_req, N


@dataclass
class Serving:
    """Where the requests of each cell are served and what they get."""

    at_cloud: np.ndarray  # (..., E) bool, classify routed to the cloud
    gen_cloud: np.ndarray  # (..., E) bool, generate served by the cloud generator
    gen_rerouted: np.ndarray | None  # (..., E) bool, end-routed generate forwarded to the cloud (None: none)
    served: np.ndarray  # (..., 2, E) accuracy (classify) and quality (generate) served, shares


def serve(route: np.ndarray, edge_down: np.ndarray | None, f_access: np.ndarray, f_backhaul: np.ndarray,
          acc_tier: np.ndarray, gen_quality: np.ndarray) -> Serving:
    """Serving per cell for its ``route`` (..., E), given the down edges (None: none), the link factors
    and the accuracy (..., E, 3) and generator quality (..., E, 2: edge, cloud) on the cell's domain.

    End-routed generate requests go to the edge generator; when that edge is down the base station
    forwards them to the cloud if the access link and backhaul are up."""
    at_cloud = route == ROUTE_CLOUD
    if edge_down is None:
        gen_rerouted = None
        gen_cloud = at_cloud
    else:
        gen_rerouted = (route == ROUTE_END) & edge_down & (f_access > 0) & (f_backhaul > 0)
        gen_cloud = at_cloud | gen_rerouted
    served = np.stack((_pick(acc_tier, route), _pick(gen_quality, gen_cloud.astype(np.intp))), axis=-2)
    return Serving(at_cloud, gen_cloud, gen_rerouted, served)


def _pick(table: np.ndarray, column: np.ndarray) -> np.ndarray:
    """``table[..., e, column[..., e]]`` for every edge e."""
    return np.take_along_axis(table, column[..., None], axis=-1)[..., 0]


@dataclass
class Work:
    """Compute the requests bring, seconds on one node of the tier serving them."""

    edge: np.ndarray  # (..., E) s at each edge
    at_cloud_n: np.ndarray  # (..., 2, E) requests served at the cloud (they cross the backhaul)
    cloud_total: np.ndarray  # (...) s at the cloud, all cells
    end_busy: np.ndarray  # (..., E) s of end-device compute per cell (summed over its devices)


def work(N: np.ndarray, route: np.ndarray, sv: Serving, battery_empty: np.ndarray,
         t_classify: dict[str, float], t_generate: dict[str, float]) -> Work:
    """The compute work of the requests ``N`` (..., 2, E) routed by ``route``, from the per-request times
    of each tier (s). Devices with an empty battery cannot classify locally (forced end routes fail)."""
    n_cls, n_gen = N[..., 0, :], N[..., 1, :]
    edge_work = n_cls * (route == ROUTE_EDGE) * t_classify["edge"] + n_gen * ~sv.gen_cloud * t_generate["edge"]
    at_cloud_n = N * np.stack((sv.at_cloud, sv.gen_cloud), axis=-2)
    # keepdims: per-copy times may come as (..., 1) columns (the native vector env's quiet steps)
    cloud_total = (at_cloud_n[..., 0, :].sum(axis=-1, keepdims=True) * t_classify["cloud"]
                   + at_cloud_n[..., 1, :].sum(axis=-1, keepdims=True) * t_generate["cloud"])[..., 0]
    end_busy = n_cls * ((route == ROUTE_END) & ~battery_empty) * t_classify["end"]
    return Work(edge_work, at_cloud_n, cloud_total, end_busy)


def rerouted_count(n_req: np.ndarray, n_gen: np.ndarray, rerouted: np.ndarray | None,
                   gen_rerouted: np.ndarray | None) -> float:
    """Requests rerouted this epoch: all of a cell whose route fell back, plus generate requests
    forwarded to the cloud past a down edge."""
    if rerouted is None and gen_rerouted is None:
        return 0.0
    no = np.zeros(n_req.shape[0], dtype=bool)
    rerouted = no if rerouted is None else rerouted
    gen_rerouted = no if gen_rerouted is None else gen_rerouted
    return float(n_req[rerouted].sum() + n_gen[gen_rerouted & ~rerouted].sum())
