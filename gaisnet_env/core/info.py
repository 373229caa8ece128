"""The ``info`` dict of a step (after the base keys the env adds: epoch, accuracies, versions, episode
totals, mask) and its finiteness check."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaisnet_env.core.energy import Energy
from gaisnet_env.core.latency import Latency
from gaisnet_env.core.layout import ROUTE_EDGE
from gaisnet_env.core.reward import Metrics, Reward


def failed_count(N: np.ndarray, lat: Latency) -> float:
    """Requests without a feasible path this epoch (they fail)."""
    if lat.all_finite:
        return 0.0
    failed = N * ~lat.finite
    return float(failed[0].sum() + failed[1].sum())


def step_info(m: Metrics, N: np.ndarray, en: Energy, r: Reward, traffic: tuple[float, float],
              events: dict[str, Any], f: dict[str, Any], edge_down: np.ndarray | None, route: np.ndarray,
              op: np.ndarray, edge_reward: np.ndarray, acc_tier: np.ndarray, st: Any) -> dict[str, Any]:
    """The step's own info keys, in their documented order: metrics ``m`` of the requests ``N`` (2, E),
    energy ``en``, reward ``r``, the bytes ``traffic`` (up, down), the ``events`` counters (ops_started,
    ops_finished, ops_failed, ops_refused, ops_aborted, actions_masked, batteries_empty,
    requests_rerouted, requests_dropped, requests_failed), the faults, the actions carried out and the
    state after the epoch."""
    n_cls_sum, n_gen_sum = N[0].sum(), N[1].sum()
    wq = m.weighted_quality
    no_fault = f["active"] == 0
    ev = events
    return {
        "accuracy": m.accuracy,
        "accuracy_classify": min(float(wq[0].sum() / n_cls_sum), 1.0) if n_cls_sum else 0.0,
        "quality_generate": min(float(wq[1].sum() / n_gen_sum), 1.0) if n_gen_sum else 0.0,
        "latency_mean_s": m.latency_mean_s,
        "latency_p50_s": m.latency_p50_s,
        "latency_p95_s": m.latency_p95_s,
        "latency_ratio": m.latency_ratio,
        "sla_violations": m.violations,
        "sla_violation_share": m.violation_share,
        "requests": m.requests,
        "requests_classify": float(n_cls_sum),
        "requests_generate": float(n_gen_sum),
        "requests_failed": ev["requests_failed"],
        "energy_j": en.total,
        "energy_end_j": en.end,
        "energy_edge_j": float(en.edge),
        "energy_cloud_j": float(en.cloud),
        "energy_radio_j": en.radio,
        "carbon_g": float(en.carbon_g),
        "bytes_up": traffic[0],
        "bytes_down": traffic[1],
        "ops_started": ev["ops_started"],
        "ops_finished": ev["ops_finished"],
        "ops_failed": ev["ops_failed"],
        "ops_refused": ev["ops_refused"],
        "ops_aborted": ev["ops_aborted"],
        "actions_masked": ev["actions_masked"],
        "faults_active": f["active"],
        "edges_down": 0 if edge_down is None else int(edge_down.sum()),
        "links_degraded": 0 if no_fault else int((f["access"] < 1).sum() + (f["backhaul"] < 1).sum()),
        "cloud_capacity": float(f["cloud_capacity"]),
        "batteries_empty": ev["batteries_empty"],
        "requests_rerouted": ev["requests_rerouted"],
        "requests_dropped": ev["requests_dropped"],
        "route_counts": np.bincount(route, minlength=3).astype(np.int64),
        "op_counts": np.bincount(op, minlength=5).astype(np.int64),
        "reward_accuracy": r.accuracy,
        "reward_latency": r.latency,
        "reward_energy": r.energy,
        "reward_sla": r.sla,
        "reward_carbon": r.carbon,
        "edge_reward": edge_reward,
        "edge_accuracy": acc_tier[:, ROUTE_EDGE].copy(),
        "edge_backlog_s": st.edge_backlog_s.copy(),
        "cloud_backlog_s": st.cloud_backlog_s,
    }


def check_finite_info(info: dict[str, Any], epoch: int) -> None:
    """Raise FloatingPointError if a number in ``info`` (scalars and arrays) is NaN or infinite."""
    isfinite = math.isfinite
    for v in info.values():  # fast pass (python floats and ints first); the loop below names the offender
        tp = type(v)
        if tp is float:
            if not isfinite(v):
                break
        elif tp is int:
            continue
        elif isinstance(v, np.ndarray):
            if v.dtype.kind in "fc" and not np.isfinite(v).all():
                break
        elif isinstance(v, (float, np.floating)) and not isfinite(v):
            break
    else:
        return
    for k, v in info.items():
        if isinstance(v, (float, np.floating)):
            ok = math.isfinite(v)
        elif isinstance(v, np.ndarray) and v.dtype.kind in "fc":
            ok = bool(np.isfinite(v).all())
        else:
            continue
        if not ok:
            raise FloatingPointError(f"info[{k!r}] is not finite ({v}) at epoch {epoch}: a bug in the simulation")
