"""The elementwise functions of gaisnet_env.core take a leading env axis: a stacked call over N copies
equals, bit for bit, each copy's own call (the single env being N = 1)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from gaisnet_env.core import actions, faults, latency, ops, requests, reward

N_ENVS, E = 3, 4
T_CLASSIFY = {"end": 1e-3, "edge": 3e-3, "cloud": 1e-3}
T_GENERATE = {"edge": 0.06, "cloud": 0.33}


def _copies(seed: int = 0) -> list[dict[str, Any]]:
    """N_ENVS independent random inputs of one env (E edges), faults included."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_ENVS):
        f = {
            "access": rng.choice([0.0, 0.5, 1.0], E),
            "backhaul": rng.choice([0.0, 1.0], E),
            "edge_up": rng.choice([0.0, 1.0], E, p=[0.3, 0.7]),
            "cloud_capacity": 1.0,
            "active": 1,
        }
        out.append({
            "f": f,
            "battery_j": rng.choice([0.0, 50.0], E),
            "op_kind": rng.integers(0, 5, E),
            "op_remaining_s": rng.uniform(0, 600, E),
            "route": rng.integers(0, 3, E),
            "acc_tier": rng.uniform(0, 1, (E, 3)),
            "gen_quality": rng.uniform(0, 1, (E, 2)),
            "N": rng.integers(0, 50, (2, E)).astype(np.float64),
        })
    return out


def _stack(copies: list[dict[str, Any]], key: str) -> Any:
    if key == "f":
        return {k: np.stack([c["f"][k] for c in copies]) if k in ("access", "backhaul", "edge_up")
                else copies[0]["f"][k] for k in copies[0]["f"]}
    return np.stack([c[key] for c in copies])


def _same(batched: np.ndarray, single: list[np.ndarray]) -> None:
    batched = np.asarray(batched)
    for i, s in enumerate(single):
        np.testing.assert_array_equal(batched[i], s, err_msg=f"copy {i}")
        assert batched[i].dtype == np.asarray(s).dtype


def test_mask_fault_multipliers_and_op_arrays_batch() -> None:
    cs = _copies()
    f, bat, kind, rem = (_stack(cs, k) for k in ("f", "battery_j", "op_kind", "op_remaining_s"))
    _same(actions.mask(f, bat, kind), [actions.mask(c["f"], c["battery_j"], c["op_kind"]) for c in cs])
    down_lost = faults.lost_ops(f, kind)
    for j in range(2):
        _same(down_lost[j], [faults.lost_ops(c["f"], c["op_kind"])[j] for c in cs])
    lost = down_lost[1]
    for j in range(2):
        _same(ops.abort(kind, rem, lost)[j], [ops.abort(c["op_kind"], c["op_remaining_s"], lost[i])[j]
                                               for i, c in enumerate(cs)])
    _same(latency.op_share(kind, rem, 300.0), [latency.op_share(c["op_kind"], c["op_remaining_s"], 300.0) for c in cs])
    _same(latency.drain_wait(rem, f["access"]), [latency.drain_wait(c["op_remaining_s"], c["f"]["access"]) for c in cs])


def test_no_fault_mask_batches() -> None:
    cs = _copies(1)
    for c in cs:
        c["f"] = {"access": np.ones(E), "backhaul": np.ones(E), "edge_up": np.ones(E), "cloud_capacity": 1.0,
                  "active": 0}
    f, bat, kind = (_stack(cs, k) for k in ("f", "battery_j", "op_kind"))
    _same(actions.mask(f, bat, kind), [actions.mask(c["f"], c["battery_j"], c["op_kind"]) for c in cs])


def test_serving_work_and_cell_figures_batch() -> None:
    cs = _copies(2)
    f, route, acc, gen, N, bat = (_stack(cs, k) for k in ("f", "route", "acc_tier", "gen_quality", "N", "battery_j"))
    down = f["edge_up"] == 0
    sv = requests.serve(route, down, f["access"], f["backhaul"], acc, gen)
    singles = [requests.serve(c["route"], c["f"]["edge_up"] == 0, c["f"]["access"], c["f"]["backhaul"],
                              c["acc_tier"], c["gen_quality"]) for c in cs]
    for name in ("at_cloud", "gen_cloud", "gen_rerouted", "served"):
        _same(getattr(sv, name), [getattr(s, name) for s in singles])
    empty = bat <= 0
    w = requests.work(N, route, sv, empty, T_CLASSIFY, T_GENERATE)
    ws = [requests.work(c["N"], c["route"], s, c["battery_j"] <= 0, T_CLASSIFY, T_GENERATE)
          for c, s in zip(cs, singles, strict=True)]
    for name in ("edge", "at_cloud_n", "cloud_total", "end_busy"):
        _same(getattr(w, name), [getattr(x, name) for x in ws])
    ratio, viol = N * 0.3, N / (N + 1.0)

    def metrics(q: np.ndarray, r: np.ndarray, v: np.ndarray) -> reward.Metrics:
        return reward.Metrics(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, q, r, v)

    n_req = N.sum(axis=-2)
    got = reward.cell_figures(metrics(N * sv.served, N * ratio, N * viol), n_req, 3.0)
    for j in range(2):
        _same(got[j], [reward.cell_figures(metrics(c["N"] * s.served, c["N"] * ratio[i], c["N"] * viol[i]),
                                           c["N"].sum(axis=0), 3.0)[j]
                       for i, (c, s) in enumerate(zip(cs, singles, strict=True))])


def test_queues_latency_and_edge_reward_batch() -> None:
    rng = np.random.default_rng(3)
    cs = _copies(3)
    edge_leg, cloud_leg = rng.uniform(0, 0.5, (2, E)), rng.uniform(0.1, 1.0, (2, E))
    deadline = np.array([[0.2] * E, [2.0] * E])
    for c in cs:
        c["edge_backlog_s"], c["edge_work"] = rng.uniform(0, 50, E), rng.uniform(0, 400, E)
        c["cloud"] = rng.uniform(0, 10, 3)  # backlog, work, capacity
        c["edge_capacity"] = rng.choice([0.0, 300.0], E)
        c["new_backlog"], c["mean_wait"] = rng.uniform(0, 60, E + 1), rng.uniform(0, 30, E + 1)
        c["tier"] = np.stack([c["route"], rng.integers(1, 3, E)])
        c["lat_end"] = np.where(c["battery_j"] > 0, 1e-3, np.inf)
    q = latency.queue_inputs(_stack(cs, "edge_backlog_s"), _stack(cs, "cloud")[:, 0], _stack(cs, "edge_work"),
                             _stack(cs, "cloud")[:, 1], _stack(cs, "edge_capacity"), _stack(cs, "cloud")[:, 2])
    qs = [latency.queue_inputs(c["edge_backlog_s"], c["cloud"][0], c["edge_work"], c["cloud"][1],
                               c["edge_capacity"], c["cloud"][2]) for c in cs]
    _same(q, qs)
    lat = latency.request_latency(q, _stack(cs, "new_backlog"), _stack(cs, "mean_wait"), edge_leg, cloud_leg,
                                  _stack(cs, "tier"), _stack(cs, "lat_end"), deadline, 300.0, 3.0)
    lats = [latency.request_latency(qi, c["new_backlog"], c["mean_wait"], edge_leg, cloud_leg, c["tier"],
                                    c["lat_end"], deadline, 300.0, 3.0) for qi, c in zip(qs, cs, strict=True)]
    for name in ("mean", "finite", "violations", "ratios"):
        _same(getattr(lat, name), [getattr(x, name) for x in lats])

    class Rw:
        w_acc, w_lat, w_energy, w_sla, w_carbon, latency_clip = 1.0, 0.5, 0.2, 1.0, 0.1, 3.0

    cells = rng.uniform(0, 100, (5, N_ENVS, E))  # J per cell: edge, cloud, end, radio access, radio backhaul
    names = ("edge_cell", "cloud_cell", "end_cell", "radio_access", "radio_backhaul")

    def energy_of(i: int | slice) -> SimpleNamespace:
        return SimpleNamespace(**{name: cells[k, i] for k, name in enumerate(names)})

    N = _stack(cs, "N")
    m = reward.Metrics(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, N * 0.8, N * 0.1, N * 0.2)
    ci = np.array([[300.0], [400.0], [500.0]])
    got = reward.edge_reward(Rw, m, N.sum(axis=-2), lat.ratios, energy_of(slice(None)), ci, ci * 0.5,
                             lat.violations[:, 0], lat.ratios[:, 1], 100.0, 10.0)
    singles = []
    for i, c in enumerate(cs):
        mi = reward.Metrics(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, c["N"] * 0.8, c["N"] * 0.1, c["N"] * 0.2)
        singles.append(reward.edge_reward(Rw, mi, c["N"].sum(axis=0), lats[i].ratios, energy_of(i),
                                          float(ci[i, 0]), float(ci[i, 0] * 0.5), lats[i].violations[0],
                                          lats[i].ratios[1], 100.0, 10.0))
    _same(got, singles)
