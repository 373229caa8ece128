"""The info of the quiet copies' epoch (:mod:`gaisnet_env.quiet_steps`) in Gymnasium's vector format: the
keys, order and dtypes of :func:`gaisnet_env.vector_info.stack_infos` over the single env's infos
(:meth:`GaisNetEnv._base_info` then :func:`gaisnet_env.core.info.step_info`), built as arrays over the
copies; and one copy's row of it as the single env's dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaisnet_env.core import batch
from gaisnet_env.core.layout import ROUTE_EDGE
from gaisnet_env.core.state import CUM_KEYS

#: Keys whose single-env value is a Python int (their vector arrays are int64); the other scalars are floats.
INT_KEYS = frozenset({"epoch", "model_version_cloud", "ops_in_flight", "ops_started", "ops_finished", "ops_failed",
                      "ops_refused", "ops_aborted", "actions_masked", "faults_active", "edges_down",
                      "links_degraded", "batteries_empty"})
#: Keys whose single-env value is a numpy float64 (carbon comes from numpy arithmetic), the rest Python floats.
NP_FLOAT_KEYS = frozenset({"episode_carbon_g", "reward_carbon"})


@dataclass
class Epoch:
    """The copies' figures and draws of one epoch, stacked: domains, tier accuracy and generator quality
    on them, the arrivals and returned labels (see :func:`gaisnet_env.quiet_steps._draw`)."""

    route: np.ndarray  # (N, E) the actions' routes
    class_mix: np.ndarray  # (N, E, 10)
    style_mix: np.ndarray  # (N, E, S)
    acc_tier: np.ndarray  # (N, E, 3)
    gen_quality: np.ndarray  # (N, E, 2)
    counts: np.ndarray  # (N, E) requests that arrived
    n_req: np.ndarray  # (N, E) the same, float
    N: np.ndarray  # (N, 2, E) classify, generate
    n_fb: np.ndarray  # (N, E) labels returned
    uniforms: list[np.ndarray]  # per copy with labels: its draws for the labelled samples
    ci_edge: np.ndarray  # (N, 1) g/kWh
    ci_cloud: np.ndarray  # (N, 1)


def vector_info(envs: list[Any], ep: Epoch, m: Any, en: Any, r: dict[str, np.ndarray], lat: Any,
                edge_reward: np.ndarray, events: dict[str, np.ndarray], st: Any, masks: np.ndarray,
                F: Any) -> dict[str, Any]:
    """The vector info of the copies ``envs`` after their quiet epoch (state already written back), with the
    epoch's ``events`` (edges down, requests dropped and rerouted, batteries empty) and faults ``F``; adds the
    epoch to each copy's episode totals. FloatingPointError naming the key and copy for a non-finite value."""
    bytes_up, bytes_down = 0.0 + en.bytes_up, 0.0 + en.bytes_down
    # the single env's types: numpy float64 for carbon (numpy arithmetic), Python floats for the rest
    adds = [list(en.carbon_g) if key == "carbon_g" else value.tolist() for key, value in
            zip(CUM_KEYS, (en.total, en.carbon_g, bytes_up, bytes_down, m.requests, m.violations), strict=True)]
    totals = []  # each copy's episode energy, carbon and bytes after the epoch
    for k, env in enumerate(envs):
        cum = env.state.cum
        for key, add in zip(CUM_KEYS, adds, strict=True):
            cum[key] += add[k]
        totals.append((cum["energy_j"], cum["carbon_g"], cum["bytes_up"], cum["bytes_down"]))
    out = _base_info(envs, ep, masks, st, np.array(totals))
    out.update(epoch_keys(ep, m, en, r, lat, edge_reward, events, st, F))
    return finish_info(out, r["total"], envs)


def epoch_keys(ep: Epoch, m: Any, en: Any, r: dict[str, np.ndarray], lat: Any, edge_reward: np.ndarray,
               events: dict[str, np.ndarray], st: Any, F: Any) -> dict[str, Any]:
    """The vector info's keys that come from the epoch's arrays alone (after :func:`_base_info`'s), in the
    single env's order: metrics, energy, traffic, counts, events, faults ``F``, rewards and per-edge figures."""
    n = ep.route.shape[0]
    zeros_i = np.zeros(n, np.int64)
    n_cls, n_gen = batch.row_sums(ep.N[:, 0]), batch.row_sums(ep.N[:, 1])
    wq = m.weighted_quality
    with np.errstate(divide="ignore", invalid="ignore"):
        acc_cls = np.where(n_cls > 0, np.minimum(batch.row_sums(wq[:, 0]) / n_cls, 1.0), 0.0)
        q_gen = np.where(n_gen > 0, np.minimum(batch.row_sums(wq[:, 1]) / n_gen, 1.0), 0.0)
    failed = ep.N * ~lat.finite
    requests_failed = np.where(lat.finite.all(axis=(1, 2)), 0.0,
                               batch.row_sums(failed[:, 0]) + batch.row_sums(failed[:, 1]))
    E = ep.route.shape[1]
    op_counts = np.zeros((n, 5), np.int64)
    op_counts[:, 0] = E
    return {
        "accuracy": m.accuracy, "accuracy_classify": acc_cls, "quality_generate": q_gen,
        "latency_mean_s": m.latency_mean_s, "latency_p50_s": m.latency_p50_s, "latency_p95_s": m.latency_p95_s,
        "latency_ratio": m.latency_ratio, "sla_violations": m.violations, "sla_violation_share": m.violation_share,
        "requests": m.requests, "requests_classify": n_cls, "requests_generate": n_gen,
        "requests_failed": requests_failed, "energy_j": en.total, "energy_end_j": en.end, "energy_edge_j": en.edge,
        "energy_cloud_j": en.cloud, "energy_radio_j": en.radio, "carbon_g": en.carbon_g,
        "bytes_up": 0.0 + en.bytes_up, "bytes_down": 0.0 + en.bytes_down,
        "ops_started": zeros_i, "ops_finished": zeros_i, "ops_failed": zeros_i, "ops_refused": zeros_i,
        "ops_aborted": zeros_i, "actions_masked": zeros_i, "faults_active": F.active,
        "edges_down": events["edge_down"].sum(axis=1),
        "links_degraded": np.where(F.active == 0, 0, (F.access < 1).sum(axis=1) + (F.backhaul < 1).sum(axis=1)),
        "cloud_capacity": F.cloud_capacity.astype(np.float64), "batteries_empty": events["battery_empty"].sum(axis=1),
        "requests_rerouted": 0.0 + events["rerouted"], "requests_dropped": events["dropped"],
        "route_counts": (ep.route[:, :, None] == np.arange(3)).sum(axis=1).astype(np.int64),
        "op_counts": op_counts,
        **{f"reward_{k}": r[k] for k in ("accuracy", "latency", "energy", "sla", "carbon")},
        "edge_reward": edge_reward, "edge_accuracy": ep.acc_tier[:, :, ROUTE_EDGE].copy(),
        "edge_backlog_s": st.edge_backlog_s.copy(), "cloud_backlog_s": np.array(st.cloud_backlog_s),
    }


def finish_info(out: dict[str, Any], total: np.ndarray, envs: list[Any]) -> dict[str, Any]:
    """``out`` (key -> array over the copies) in Gymnasium's vector format, each key with its ``_key`` mask and
    the single env's dtypes, after the finiteness check (rewards ``total`` included)."""
    _check_finite(out, total, envs)
    info: dict[str, Any] = {}
    mask = np.ones(len(total), dtype=np.bool_)  # one array for every key: the vector env hands out copies
    for key, value in out.items():
        value = np.asarray(value) if key != "action_mask" else value
        if key != "action_mask":
            value = value.astype(np.int64 if key in INT_KEYS else value.dtype, copy=False)
        info[key], info[f"_{key}"] = value, mask
    return info


def _base_info(envs: list[Any], ep: Epoch, masks: np.ndarray, st: Any, totals: np.ndarray) -> dict[str, Any]:
    """:meth:`GaisNetEnv._base_info` of the copies (after the epoch), as arrays; ``masks`` their Gymnasium
    action masks (an object array of tuples), ``st`` their states after the epoch (as written back),
    ``totals`` (N, 4) their episode energy (J), carbon (g), bytes up and down."""
    acc = np.ascontiguousarray(ep.acc_tier.transpose(0, 2, 1)).mean(axis=-1)  # per tier over edges
    workers = [env.workers for env in envs]  # stock workers (QuietSteps.select): their version counters
    base = [env._version_base for env in envs]
    ver_edge = np.array([w._ver_edge for w in workers]) - np.array([b["model_version_edge"] for b in base])
    ver_end = np.array([w._ver_end for w in workers]) - np.array([b["model_version_end"] for b in base])
    ver_cloud = np.array([w._ver_cloud - b["model_version_cloud"] for w, b in zip(workers, base, strict=True)])
    versions = {"model_version_cloud": ver_cloud, "model_version_edge": ver_edge, "model_version_end": ver_end}
    epoch = np.array(st.epoch, dtype=np.int64)
    return {
        "epoch": epoch,
        "time_s": epoch * np.array([env.scenario.epoch_s for env in envs]),
        "accuracy_end": acc[:, 0], "accuracy_edge": acc[:, 1], "accuracy_cloud": acc[:, 2],
        **{key: v.astype(np.int64) for key, v in versions.items()},
        "ops_in_flight": np.count_nonzero(st.op_kind > 0, axis=1).astype(np.int64),
        "episode_energy_j": totals[:, 0], "episode_carbon_g": totals[:, 1],
        "episode_bytes_up": totals[:, 2], "episode_bytes_down": totals[:, 3],
        "action_mask": masks,
    }


def _check_finite(out: dict[str, Any], total: np.ndarray, envs: list[Any]) -> None:
    """FloatingPointError naming the first non-finite key (and copy), as the single env's checks."""
    floats = [a.ravel() for a in (np.asarray(v) for key, v in out.items() if key != "action_mask")
              if a.dtype.kind == "f"]
    if np.isfinite(np.concatenate([*floats, total.ravel()])).all():  # one check for all; else find the key
        return
    for key, value in out.items():
        if key == "action_mask":
            continue
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            k = int(np.nonzero(~np.isfinite(arr))[0][0])
            raise FloatingPointError(f"info[{key!r}] of copy {k} is not finite ({arr[k]}) at epoch "
                                     f"{envs[k].state.epoch - 1}: a bug in the simulation")
    if not np.isfinite(total).all():
        k = int(np.flatnonzero(~np.isfinite(total))[0])
        raise FloatingPointError(f"reward of copy {k} is {total[k]} at epoch {envs[k].state.epoch - 1}: a bug in "
                                 "the simulation")


def info_row(info: dict[str, Any], k: int) -> dict[str, Any]:
    """Copy ``k``'s row of a :func:`vector_info` as the single env's info dict (Python ints and floats,
    arrays copied)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        v = value[k]
        if isinstance(v, np.ndarray):
            out[key] = v.copy()
        elif key == "action_mask":
            out[key] = v
        else:
            out[key] = int(v) if key in INT_KEYS else (v if key in NP_FLOAT_KEYS else float(v))
    return out
