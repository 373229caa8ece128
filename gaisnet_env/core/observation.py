"""The observation: per-edge features row-major, then the global ones, all in [0, 1] (float32); the
layout is documented in :mod:`gaisnet_env.env`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaisnet_env.core.layout import EDGE_FEATURES, GLOBAL_FEATURES, SINCE_SCALE


def observation(st: Any, rates: np.ndarray, mean_rate: float, accuracy: np.ndarray, drift: np.ndarray,
                f: dict[str, Any], ci_edge: float, ci_cloud: float, hour: float, battery_cap_j: float | None,
                epoch_s: float, horizon: int) -> np.ndarray:
    """The observation of state ``st`` at its epoch: request ``rates`` (1/s) against ``mean_rate``, tier
    ``accuracy`` (E, 3) and ``drift`` (E,) as the view shows them, fault multipliers ``f``, grid carbon
    intensities (g/kWh), the hour of day. Raises FloatingPointError if a feature is not finite."""
    t = st.epoch
    E = rates.shape[0]
    n_edge = E * len(EDGE_FEATURES)
    flat = np.empty(n_edge + len(GLOBAL_FEATURES))  # edge features row-major, then the global ones
    feats = flat[:n_edge].reshape(E, len(EDGE_FEATURES))
    feats[:, 0] = np.minimum(rates / (2.0 * mean_rate), 1.0)
    feats[:, 1:4] = accuracy
    feats[:, 4] = 1.0 - np.exp(-st.edge_backlog_s / epoch_s)
    feats[:, 5] = f["access"]
    feats[:, 6] = f["backhaul"]
    feats[:, 7:11] = 1.0 - np.exp(-st.since_op / SINCE_SCALE)
    feats[:, 11] = st.op_kind > 0
    feats[:, 12] = 1.0 - np.exp(-st.op_remaining_s / epoch_s)
    feats[:, 13] = drift
    feats[:, 14] = min(ci_edge / 1000.0, 1.0)
    feats[:, 15] = f["edge_up"]
    feats[:, 16] = st.battery_j / battery_cap_j if battery_cap_j else 1.0
    feats[:, 17] = st.last_violation
    feats[:, 18] = st.last_latency_ratio
    flat[n_edge:] = (
        1.0 - math.exp(-st.cloud_backlog_s / epoch_s),
        f["cloud_capacity"],
        0.5 + 0.5 * math.sin(2 * math.pi * hour / 24.0),
        0.5 + 0.5 * math.cos(2 * math.pi * hour / 24.0),
        min(ci_cloud / 1000.0, 1.0),
        min(t / horizon, 1.0),
    )
    obs = flat.astype(np.float32)
    if not np.isfinite(obs).all():
        bad = int(np.flatnonzero(~np.isfinite(obs))[0])
        raise FloatingPointError(f"observation[{bad}] is not finite at epoch {t}: a bug in the simulation")
    return obs.clip(0.0, 1.0, out=obs)
