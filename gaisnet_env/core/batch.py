"""The reductions of an epoch over a leading env axis: metrics, energy and traffic totals, reward and the
observation of N env copies at once, ``(N, ...)`` arrays in place of the single env's floats.

These are the batched twins of :func:`reward.metrics`, :func:`energy.epoch_energy` with
:func:`energy.add_traffic`, :func:`reward.reward` and :func:`observation.observation`: the same operations
in the same order, so copy ``i``'s numbers equal, bit for bit, what the single env computes for it (every
reduction runs over the last, contiguous axis, where numpy sums each row as it sums a 1-D array; checked in
``tests/test_quiet_steps.py``). Per-copy figures (node powers, reward weights, references) come as
``(N, 1)`` or ``(N,)`` arrays. Units are those of the single-env functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaisnet_env import cost
from gaisnet_env.core.energy import Energy
from gaisnet_env.core.latency import Latency
from gaisnet_env.core.layout import EDGE_FEATURES, GLOBAL_FEATURES, ROUTE_END, SINCE_SCALE
from gaisnet_env.core.reward import Metrics


def row_sums(x: np.ndarray) -> np.ndarray:
    """Sums over the last axis, each row summed as numpy sums a 1-D array (pairwise, contiguous rows)."""
    return np.add.reduce(np.ascontiguousarray(x), axis=-1)


def metrics(N: np.ndarray, n_req: np.ndarray, served: np.ndarray, lat: Latency) -> Metrics:
    """:func:`reward.metrics` of N copies: ``N`` and ``served`` (N, 2, E), ``n_req`` (N, E); the float
    fields become (N,) arrays."""
    n = N.shape[0]
    n_total = row_sums(n_req)
    has = n_total > 0
    denom = np.where(has, n_total, 1.0)
    wq, wr, wv = N * served, N * lat.ratios, N * lat.violations
    violations = row_sums(wv.reshape(n, -1))
    lat_means = np.where(lat.finite, lat.mean, 0).reshape(n, -1)
    fw = N.reshape(n, -1) * lat.finite.reshape(n, -1)
    fw_sum = row_sums(fw)
    mean_s = row_sums(fw * lat_means) / np.maximum(fw_sum, 1e-12)
    p50, p95 = weighted_quantiles(lat_means, fw, (0.5, 0.95))
    quantiles = has & (fw_sum > 0)
    zero = np.zeros(n)
    return Metrics(
        n_total,
        np.where(has, np.minimum(row_sums(wq.reshape(n, -1)) / denom, 1.0), row_sums(served[:, 0]) / N.shape[-1]),
        np.where(has, row_sums(wr.reshape(n, -1)) / denom, zero),
        np.where(has, violations, zero),
        np.where(has, np.minimum(violations / denom, 1.0), zero),
        np.where(has, mean_s, zero),
        np.where(quantiles, p50, zero),
        np.where(quantiles, p95, zero),
        wq, wr, wv,
    )


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """:func:`latency.weighted_quantiles` row by row ((N, k) values and weights >= 0; a row without weight
    gives an arbitrary value, masked by the caller). Zero weights are kept in the sort: they add 0.0 to the
    cumulative sums and are never the first entry to reach a quantile, so the picks are the 1-D ones."""
    order = np.argsort(values, axis=-1, kind="stable")
    v = np.take_along_axis(values, order, axis=-1)
    cw = np.cumsum(np.take_along_axis(weights, order, axis=-1), axis=-1)
    last = v.shape[-1] - 1
    out = []
    for q in qs:
        idx = np.minimum((cw < q * cw[:, -1:]).sum(axis=-1), last)  # searchsorted(cw, q * total, "left")
        out.append(np.take_along_axis(v, idx[:, None], axis=-1)[:, 0])
    return tuple(out)


@dataclass
class Figures:
    """Per-copy cost figures of N copies, each ``(N, 1)`` (per-edge ones ``(N, E)``)."""

    epoch_s: np.ndarray
    op_share_hw: np.ndarray
    edge: tuple[np.ndarray, np.ndarray, np.ndarray]  # idle W, active W, PUE of an edge server
    cloud: tuple[np.ndarray, np.ndarray]  # active W, PUE of a cloud server
    end: tuple[np.ndarray, np.ndarray]  # active W, idle W of an end device
    t_classify: tuple[np.ndarray, np.ndarray, np.ndarray]  # s per request: end, edge, cloud
    t_generate: tuple[np.ndarray, np.ndarray]  # edge, cloud
    in_b: tuple[np.ndarray, np.ndarray]  # bytes of a request: classify, generate
    out_b: tuple[np.ndarray, np.ndarray]
    radio: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # J/bit (N, E): access up/down, backhaul up/down


def energy(fg: Figures, edge_work: np.ndarray, edge_capacity: np.ndarray, share: np.ndarray, f_edge_up: np.ndarray,
           at_cloud_n: np.ndarray, end_busy: np.ndarray, N: np.ndarray, route: np.ndarray, finite: np.ndarray,
           ci_edge: np.ndarray, ci_cloud: np.ndarray) -> Energy:
    """:func:`energy.epoch_energy` then :func:`energy.add_traffic` of N copies without ops started (their
    energy is 0.0, added as the single env adds it); the totals become (N,) arrays."""
    idle_e, active_e, pue_e = fg.edge
    edge_busy = np.minimum(edge_work, edge_capacity) + fg.op_share_hw * share * fg.epoch_s
    edge_cell = cost.compute_energy_j(idle_e, active_e, edge_busy, fg.epoch_s, pue_e) * f_edge_up + 0.0
    cloud_work = at_cloud_n[:, 0] * fg.t_classify[2] + at_cloud_n[:, 1] * fg.t_generate[1]
    cloud_cell = fg.cloud[0] * cloud_work * fg.cloud[1] + 0.0
    end_cell = (fg.end[0] - fg.end[1]) * end_busy
    on_access = np.empty(N.shape, dtype=bool)
    on_access[:, 0] = route != ROUTE_END
    on_access[:, 1] = True
    n_access, n_backhaul = N * on_access * finite, at_cloud_n * finite
    in_access, out_access = _bytes(n_access, fg.in_b), _bytes(n_access, fg.out_b)
    in_backhaul, out_backhaul = _bytes(n_backhaul, fg.in_b), _bytes(n_backhaul, fg.out_b)
    acc_up, acc_down, bh_up, bh_down = fg.radio
    radio_access = cost.radio_energy_j(in_access, acc_up) + cost.radio_energy_j(out_access, acc_down)
    radio_backhaul = cost.radio_energy_j(in_backhaul, bh_up) + cost.radio_energy_j(out_backhaul, bh_down)
    edge, cloud = row_sums(edge_cell), row_sums(cloud_cell)
    radio = row_sums(radio_access) + row_sums(radio_backhaul)
    end = row_sums(end_cell)
    total = edge + cloud + end + radio
    carbon = cost.carbon_g(edge + end + radio, ci_edge) + cost.carbon_g(cloud, ci_cloud)
    return Energy(edge_cell, cloud_cell, end_cell, radio_access, radio_backhaul, edge, cloud, end, radio, total,
                  carbon, row_sums(in_access) + row_sums(in_backhaul), row_sums(out_access) + row_sums(out_backhaul))


def _bytes(n: np.ndarray, per_request: tuple) -> np.ndarray:
    """(N, E) bytes of the requests ``n`` (N, 2, E) (as :func:`energy._bytes`)."""
    return n[:, 0] * per_request[0] + n[:, 1] * per_request[1]


def reward_terms(w: dict[str, np.ndarray], m: Metrics, energy_total: np.ndarray, carbon_g: np.ndarray,
                 energy_ref_j: np.ndarray, carbon_ref_g: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`reward.reward` of N copies (weights ``w`` by term, (N,) each): the total and the signed terms."""
    r_acc = w["w_acc"] * m.accuracy
    r_lat = w["w_lat"] * m.latency_ratio
    r_energy = w["w_energy"] * energy_total / energy_ref_j
    r_sla = w["w_sla"] * m.violation_share
    r_carbon = w["w_carbon"] * carbon_g / carbon_ref_g
    total = r_acc - r_lat - r_energy - r_sla - r_carbon
    return {"total": total, "accuracy": r_acc, "latency": -r_lat, "energy": -r_energy, "sla": -r_sla,
            "carbon": -r_carbon}


def observation(st: Any, rates: np.ndarray, mean_rate: np.ndarray, accuracy: np.ndarray, drift: np.ndarray,
                f: dict[str, np.ndarray], ci_edge: np.ndarray, ci_cloud: np.ndarray, hour: list[float],
                battery_cap: np.ndarray, epoch_s: np.ndarray, horizon: list[int]) -> np.ndarray:
    """:func:`observation.observation` of N copies: ``st`` holds (N, E) state arrays, ``cloud_backlog_s``
    and ``epoch`` as lists; ``f`` the fault multipliers stacked over the copies (``cloud_capacity`` a list);
    the per-copy scalars (N, 1) or lists. Returns (N, n_obs) float32 clipped to [0, 1]; FloatingPointError
    naming the copy if a feature is not finite."""
    n, E = rates.shape
    n_edge = E * len(EDGE_FEATURES)
    flat = np.empty((n, n_edge + len(GLOBAL_FEATURES)))
    feats = flat[:, :n_edge].reshape(n, E, len(EDGE_FEATURES))
    feats[..., 0] = np.minimum(rates / (2.0 * mean_rate), 1.0)
    feats[..., 1:4] = accuracy
    feats[..., 4] = 1.0 - np.exp(-st.edge_backlog_s / epoch_s)
    feats[..., 5] = f["access"]
    feats[..., 6] = f["backhaul"]
    feats[..., 7:11] = 1.0 - np.exp(-st.since_op / SINCE_SCALE)
    feats[..., 11] = st.op_kind > 0
    feats[..., 12] = 1.0 - np.exp(-st.op_remaining_s / epoch_s)
    feats[..., 13] = drift
    feats[..., 14] = np.minimum(ci_edge / 1000.0, 1.0)
    feats[..., 15] = f["edge_up"]
    feats[..., 16] = np.where(battery_cap > 0, st.battery_j / np.where(battery_cap > 0, battery_cap, 1.0), 1.0)
    feats[..., 17] = st.last_violation
    feats[..., 18] = st.last_latency_ratio
    # the global features as the single env computes them: math.exp, sin and cos on floats (the copies share
    # an hour: once per distinct hour), the divisions and minimums over the copies (IEEE, the same bits)
    glob = flat[:, n_edge:]
    glob[:, 0] = [1.0 - math.exp(-b / es) for b, es in zip(st.cloud_backlog_s, epoch_s[:, 0].tolist(), strict=True)]
    glob[:, 1] = f["cloud_capacity"]
    clock = {hr: (0.5 + 0.5 * math.sin(2 * math.pi * hr / 24.0), 0.5 + 0.5 * math.cos(2 * math.pi * hr / 24.0))
             for hr in set(hour)}
    glob[:, 2:4] = [clock[hr] for hr in hour]
    glob[:, 4] = np.minimum(ci_cloud[:, 0] / 1000.0, 1.0)
    glob[:, 5] = np.minimum(np.asarray(st.epoch) / np.asarray(horizon), 1.0)
    obs = flat.astype(np.float32)
    bad = ~np.isfinite(obs)
    if bad.any():
        i, k = (int(a[0]) for a in np.nonzero(bad))
        raise FloatingPointError(f"observation[{k}] of copy {i} is not finite at epoch {st.epoch[i]}: a bug "
                                 "in the simulation")
    return obs.clip(0.0, 1.0, out=obs)
