"""Metrics and reward of an epoch: request-weighted accuracy, latency, SLA violations; the reward terms
(system-wide and per cell) and the per-cell figures the next observation shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaisnet_env.core.energy import Energy, cell_carbon_g
from gaisnet_env.core.latency import Latency, weighted_quantiles


@dataclass
class Metrics:
    """Request-weighted figures of one epoch (shares, seconds, counts)."""

    requests: float
    accuracy: float
    latency_ratio: float
    violations: float
    violation_share: float
    latency_mean_s: float
    latency_p50_s: float
    latency_p95_s: float
    weighted_quality: np.ndarray  # (2, E) requests x served accuracy / quality
    weighted_ratio: np.ndarray  # (2, E) requests x latency ratio
    weighted_viol: np.ndarray  # (2, E) requests x violation share


def metrics(N: np.ndarray, n_req: np.ndarray, served: np.ndarray, lat: Latency) -> Metrics:
    """Aggregate the requests ``N`` (2, E) served at ``served`` (2, E, zero where they failed) with
    latency ``lat``; an epoch without requests scores the mean classify accuracy and no latency."""
    n_total = float(n_req.sum())
    weighted_quality = N * served
    weighted_ratio = N * lat.ratios
    weighted_viol = N * lat.violations
    if n_total > 0:
        # shares of request-weighted sums: clip the last-bit rounding (1.0000000000000002)
        accuracy = min(float(weighted_quality.ravel().sum() / n_total), 1.0)
        lat_ratio = float(weighted_ratio.ravel().sum() / n_total)
        violations = float(weighted_viol.ravel().sum())
        viol_share = min(violations / n_total, 1.0)
        lat_means = np.where(lat.finite, lat.mean, 0).ravel()
        fw = N.ravel() * lat.finite.ravel()
        fw_sum = fw.sum()
        lat_mean_s = float((fw * lat_means).sum() / max(fw_sum, 1e-12))
        lat_p50, lat_p95 = weighted_quantiles(lat_means, fw, (0.5, 0.95)) if fw_sum > 0 else (0.0, 0.0)
    else:
        accuracy = float(served[0].mean())
        lat_ratio = viol_share = violations = 0.0
        lat_mean_s = lat_p50 = lat_p95 = 0.0
    return Metrics(n_total, accuracy, lat_ratio, violations, viol_share, lat_mean_s, lat_p50, lat_p95,
                   weighted_quality, weighted_ratio, weighted_viol)


@dataclass
class Reward:
    """The reward of an epoch and its terms (each with the sign it enters with)."""

    total: float
    accuracy: float
    latency: float
    energy: float
    sla: float
    carbon: float


def reward(rw: Any, m: Metrics, energy_total: float, carbon_g: float, energy_ref_j: float,
           carbon_ref_g: float) -> Reward:
    """The weighted sum of the ``reward`` section's ``rw`` terms: accuracy minus latency ratio, energy
    and carbon (over their references, J and g) and SLA violation share."""
    r_acc = rw.w_acc * m.accuracy
    r_lat = rw.w_lat * m.latency_ratio
    r_energy = rw.w_energy * energy_total / energy_ref_j
    r_sla = rw.w_sla * m.violation_share
    r_carbon = rw.w_carbon * carbon_g / carbon_ref_g
    total = r_acc - r_lat - r_energy - r_sla - r_carbon
    return Reward(total, r_acc, -r_lat, -r_energy, -r_sla, -r_carbon)


def cell_figures(m: Metrics, n_req: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray]:
    """Per cell ``(SLA violation share, latency ratio / clip)``, (E,) each, of the epoch (0 for a cell
    without requests): the next observation's last two edge features."""
    cell_n = np.maximum(n_req, 1e-12)
    has_req = n_req > 0
    wv, wr = m.weighted_viol, m.weighted_ratio
    violation = np.where(has_req, (wv[..., 0, :] + wv[..., 1, :]) / cell_n, 0.0)
    latency_ratio = np.where(has_req, (wr[..., 0, :] + wr[..., 1, :]) / cell_n, 0.0) / clip
    return violation, latency_ratio


def edge_reward(rw: Any, m: Metrics, n_req: np.ndarray, served: np.ndarray, en: Energy, ci_edge: Any,
                ci_cloud: Any, violation: np.ndarray, latency_ratio: np.ndarray, energy_ref_j: float,
                carbon_ref_g: float) -> np.ndarray:
    """(..., E) per-cell reward (for the multi-agent view): the same terms restricted to the cell, with the
    references shared equally among the E cells; carbon intensities in g/kWh (scalars, or (..., 1))."""
    E = n_req.shape[-1]
    cell_n = np.maximum(n_req, 1e-12)
    wq = m.weighted_quality
    cell_acc = np.where(n_req > 0, (wq[..., 0, :] + wq[..., 1, :]) / cell_n, served[..., 0, :])
    cell_energy = en.edge_cell + en.cloud_cell + en.end_cell + en.radio_access + en.radio_backhaul
    cell_carbon = cell_carbon_g(en, ci_edge, ci_cloud)
    return (
        rw.w_acc * cell_acc
        - rw.w_lat * latency_ratio * rw.latency_clip
        - rw.w_energy * cell_energy / (energy_ref_j / E)
        - rw.w_sla * violation
        - rw.w_carbon * cell_carbon / (carbon_ref_g / E)
    )
