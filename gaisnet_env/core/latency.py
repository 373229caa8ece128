"""Queues and latency: the edge and cloud queues of an epoch, the network and compute legs of a request,
its latency against the deadlines, and latency quantiles. Times in seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaisnet_env import cost


def op_share(op_kind: np.ndarray, op_remaining_s: np.ndarray, epoch_s: float) -> np.ndarray:
    """(..., E) share of this epoch in which each edge's op in flight runs (it takes ``op_share`` of the
    edge)."""
    if op_kind.any():
        return np.where(op_kind > 0, np.minimum(op_remaining_s, epoch_s) / epoch_s, 0.0)
    return np.zeros(op_kind.shape)


def queue_inputs(edge_backlog_s: np.ndarray, cloud_backlog_s: Any, edge_work: np.ndarray, cloud_work_s: Any,
                 edge_capacity: np.ndarray, cloud_capacity: Any) -> np.ndarray:
    """(..., 3, E + 1) backlog at the start, work and capacity (s) of the E edge queues and, last, the
    cloud's (per server): one :func:`cost.fluid_queue` call serves them all. Edge figures are (..., E),
    the cloud's scalars (or (...) arrays)."""
    E = edge_backlog_s.shape[-1]
    queue = np.empty((*edge_backlog_s.shape[:-1], 3, E + 1))
    queue[..., 0, :E] = edge_backlog_s
    queue[..., 0, E] = cloud_backlog_s
    queue[..., 1, :E] = edge_work
    queue[..., 1, E] = cloud_work_s
    queue[..., 2, :E] = edge_capacity
    queue[..., 2, E] = cloud_capacity
    return queue


def drain_wait(backlog_s: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Seconds until ``backlog_s`` of work drains at ``rate`` (server-seconds per second); inf if stalled."""
    wait = np.where(backlog_s > 0, np.inf, 0.0)
    np.divide(backlog_s, rate, out=wait, where=(rate > 0) & (backlog_s > 0))
    return wait


def legs(access: tuple, backhaul: tuple, f_access: np.ndarray, f_backhaul: np.ndarray, in_b: tuple,
         out_b: tuple, comp: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network plus compute latency of a request at the edge and at the cloud, (2, E) each (row 0
    classify, row 1 generate), and the request + response bytes (2, 1); read-only arrays.

    ``access`` and ``backhaul`` are ``(up_bps, down_bps, rtt_s)`` (E,) arrays at nominal bandwidth,
    scaled by the link factors ``f_*``; ``in_b`` / ``out_b`` the bytes of a request and its answer per
    kind; ``comp`` the compute seconds (classify at the edge, generate at the edge, the same at the
    cloud)."""
    in_b_arr = np.array(in_b, dtype=np.float64)
    out_b_arr = np.array(out_b, dtype=np.float64)
    up_bw = access[0] * f_access
    down_bw = access[1] * f_access
    bh_up = backhaul[0] * f_backhaul
    bh_down = backhaul[1] * f_backhaul
    acc_rtt, bh_rtt = access[2][:, None], backhaul[2][:, None]
    with np.errstate(divide="ignore"):
        access_leg = cost.transfer_time_s(in_b_arr[None, :], up_bw[:, None], acc_rtt) + (
            cost.transfer_time_s(out_b_arr[None, :], down_bw[:, None], acc_rtt)
        )
        backhaul_leg = cost.transfer_time_s(in_b_arr[None, :], bh_up[:, None], bh_rtt) + (
            cost.transfer_time_s(out_b_arr[None, :], bh_down[:, None], bh_rtt)
        )
    comp_edge = np.array(comp[:2])
    comp_cloud = np.array(comp[2:])
    edge_leg = np.ascontiguousarray((access_leg + comp_edge[None, :]).T)
    cloud_leg = np.ascontiguousarray((access_leg + backhaul_leg + comp_cloud[None, :]).T)
    payload = (in_b_arr + out_b_arr)[:, None]
    out = (edge_leg, cloud_leg, payload)
    for a in out:
        a.setflags(write=False)
    return out


@dataclass
class Latency:
    """Latency of each cell's requests, (2, E) per request kind."""

    mean: np.ndarray  # s, over the epoch (inf: no feasible path)
    finite: np.ndarray  # bool, the requests have a path
    all_finite: bool
    violations: np.ndarray  # share of the requests over their deadline (1 without a path)
    ratios: np.ndarray  # mean latency / deadline, capped at the clip


def request_latency(queue: np.ndarray, new_backlog: np.ndarray, mean_wait: np.ndarray, edge_leg: np.ndarray,
                    cloud_leg: np.ndarray, tier: np.ndarray, lat_end: np.ndarray, deadline: np.ndarray,
                    epoch_s: float, clip: float) -> Latency:
    """Latency of the requests served at ``tier`` (..., 2, E: 0 end, 1 edge, 2 cloud) given the queues
    (:func:`queue_inputs` and :func:`cost.fluid_queue`'s new backlog and mean wait, (..., E + 1)), the
    legs (2, E), the end devices' latency ``lat_end`` (..., E), the deadlines (2, E) and
    ``reward.latency_clip``."""
    E = edge_leg.shape[-1]
    # waits at the start and end of the epoch: backlog / drain rate (linear in between)
    backlogs = np.stack((queue[..., 0, :], new_backlog), axis=-2)
    waits = drain_wait(backlogs, queue[..., 2:3, :] / epoch_s)
    edge_wait, cloud_wait = mean_wait[..., None, :E], mean_wait[..., E, None, None]
    at_end = lat_end[..., None, :]
    # np.choose: the values of np.select, cheaper
    lat0 = np.choose(tier, (at_end, edge_leg + waits[..., 0:1, :E], cloud_leg + waits[..., 0, E, None, None]))
    lat1 = np.choose(tier, (at_end, edge_leg + waits[..., 1:2, :E], cloud_leg + waits[..., 1, E, None, None]))
    lat_mean = np.choose(tier, (at_end, edge_leg + edge_wait, cloud_leg + cloud_wait))
    # requests that cannot be served at all (no feasible path): failed, counted as violations
    finite = np.isfinite(lat_mean)
    viols = np.where(finite, cost.violation_share(lat0, lat1, deadline), 1.0)
    # latencies are >= 0: fmin gives nan_to_num(x, nan=clip, posinf=clip) capped at clip
    ratios = np.fmin(lat_mean / deadline, clip)
    return Latency(lat_mean, finite, bool(finite.all()), viols, ratios)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """:func:`cost.weighted_quantile` of 1-D ``values`` and ``weights`` for each of ``qs``, sorting once."""
    keep = weights > 0.0
    v, wt = (values, weights) if keep.all() else (values[keep], weights[keep])
    if v.size == 0:
        return tuple(float("nan") for _ in qs)
    order = np.argsort(v, kind="stable")
    v, cw = v[order], np.cumsum(wt[order])
    idx = np.searchsorted(cw, np.array(qs) * cw[-1], side="left")
    return tuple(float(v[min(int(i), v.size - 1)]) for i in idx)
