"""The cost model's predictions behind the ``latency`` and ``cost`` route rules of the heuristics: per
edge and route, latency, SLA violations, energy and the reward contribution, from the env's static
figures and the observation (:class:`CostPredictor`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from gaisnet_env.agents.base import N_ROUTES, ObsView

if TYPE_CHECKING:
    from gaisnet_env.env import GaisNetEnv

ROUTE_END, ROUTE_EDGE, ROUTE_CLOUD = 0, 1, 2


def _inv_sat(x: np.ndarray | float, scale: float) -> np.ndarray:
    """Undo the observation's ``1 - exp(-v / scale)`` saturation: returns ``v`` (same units as scale)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0 - 1e-6)
    return -scale * np.log1p(-x)


class CostPredictor:
    """Per-edge, per-route predictions of latency, SLA violations, energy and reward.

    Uses the env's static cost figures (``t_classify``, ``t_generate``, link bandwidths and
    RTTs, node powers) and the cost model's functions (``gaisnet_env.cost``) on the state read
    from the observation (rates, backlogs, link factors), exactly as the env charges them.
    """

    def __init__(self, env: GaisNetEnv) -> None:
        from gaisnet_env import cost

        self.env, self.cost = env, cost
        sc = env.scenario
        self.epoch_s = float(sc.epoch_s)
        self.rw = sc.reward
        self.wl = sc.workload
        self.in_b = np.array([self.wl.classify_in_bytes, self.wl.generate_in_bytes], dtype=np.float64)
        self.out_b = np.array([self.wl.classify_out_bytes, self.wl.generate_out_bytes], dtype=np.float64)

    def _legs(self, view: ObsView) -> tuple[np.ndarray, np.ndarray]:
        """Access and backhaul round-trip transfer times (E, 2 kinds), s."""
        env, c = self.env, self.cost
        a = view.edge("access_bandwidth")
        b = view.edge("backhaul_bandwidth")
        with np.errstate(divide="ignore", invalid="ignore"):
            acc = c.transfer_time_s(self.in_b[None, :], (env.access_up_bps * a)[:, None], env.access_rtt_s[:, None])
            acc = acc + c.transfer_time_s(
                self.out_b[None, :], (env.access_down_bps * a)[:, None], env.access_rtt_s[:, None]
            )
            bh = c.transfer_time_s(self.in_b[None, :], (env.backhaul_up_bps * b)[:, None], env.backhaul_rtt_s[:, None])
            bh = bh + c.transfer_time_s(
                self.out_b[None, :], (env.backhaul_down_bps * b)[:, None], env.backhaul_rtt_s[:, None]
            )
        return np.nan_to_num(np.asarray(acc, float), nan=np.inf), np.nan_to_num(np.asarray(bh, float), nan=np.inf)

    def predict(self, view: ObsView, routes_ok: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Greedy per-edge prediction: (E, 3) arrays ``latency_s`` (request-weighted mean),
        ``violation`` (share), ``energy_j`` and ``score`` (the edge's contribution to the reward).

        The cloud is shared, so edges are visited in decreasing rate and each sees the cloud
        work of the edges before it that prefer the cloud.
        """
        env, c, rw = self.env, self.cost, self.rw
        E, ep = view.n_edges, self.epoch_s
        rate = view.edge("request_rate") * 2.0 * env.mean_rate  # requests/s (clipped at 2x mean)
        n = rate * ep
        n_gen = n * self.wl.generate_share
        n_cls = n - n_gen
        n_total = max(float(n.sum()), 1e-9)
        acc = view.accuracy  # (E, 3)
        acc_leg, bh_leg = self._legs(view)
        edge_b = _inv_sat(view.edge("edge_backlog"), ep)
        op_left = _inv_sat(view.edge("op_remaining"), ep)
        share = view.edge("op_in_flight") * np.minimum(op_left, ep) / ep
        edge_cap = np.maximum(ep * (1.0 - env.scenario.hardware.op_share * share) * view.edge("edge_up"), 1e-9)
        cloud_b = float(_inv_sat(view.glob("cloud_backlog"), ep))
        cloud_cap = max(ep * view.glob("cloud_capacity"), 1e-9)
        servers = env.scenario.hardware.cloud_servers
        tc, tg = env.t_classify, env.t_generate
        dl = env.deadline
        clip = rw.latency_clip

        lat = np.zeros((E, N_ROUTES))
        viol = np.zeros((E, N_ROUTES))
        energy = np.zeros((E, N_ROUTES))
        score = np.full((E, N_ROUTES), -np.inf)
        cloud_work = 0.0  # s of work on the cloud already claimed by earlier edges
        for e in np.argsort(-n):
            best_r, best_s = ROUTE_END, -np.inf
            for r in range(N_ROUTES):
                if routes_ok is not None and not routes_ok[e, r]:
                    continue
                cls_edge = n_cls[e] * (r == ROUTE_EDGE)
                gen_edge = n_gen[e] * (r != ROUTE_CLOUD)
                work_e = cls_edge * tc["edge"] + gen_edge * tg["edge"]
                nb, w = c.fluid_queue(np.array([edge_b[e]]), np.array([work_e]), np.array([edge_cap[e]]))
                nb, w = float(nb[0]), float(w[0])
                work_c = (n_cls[e] * tc["cloud"] + n_gen[e] * tg["cloud"]) * (r == ROUTE_CLOUD)
                cb, cw = c.fluid_queue(
                    np.array([cloud_b]), np.array([(cloud_work + work_c) / servers]), np.array([cloud_cap])
                )
                cb, cw = float(cb[0]), float(cw[0])
                lc, lg = _route_latencies(r, acc_leg[e], bh_leg[e], tc, tg, (edge_b[e], nb, w), (cloud_b, cb, cw))
                if not (math.isfinite(lc[2]) and math.isfinite(lg[2])):
                    continue
                vc = float(c.violation_share(np.array([lc[0]]), np.array([lc[1]]), dl[0])[0])
                vg = float(c.violation_share(np.array([lg[0]]), np.array([lg[1]]), dl[1])[0])
                ratio = n_cls[e] * min(lc[2] / dl[0], clip) + n_gen[e] * min(lg[2] / dl[1], clip)
                q_gen = acc[e, ROUTE_CLOUD] if r == ROUTE_CLOUD else acc[e, ROUTE_EDGE]  # proxy for quality
                acc_sum = n_cls[e] * acc[e, r] + n_gen[e] * q_gen
                en = self._route_energy(e, r, work_e, work_c, n_cls[e], n_gen[e])
                s = (rw.w_acc * acc_sum - rw.w_lat * ratio - rw.w_sla * (n_cls[e] * vc + n_gen[e] * vg)) / n_total
                s -= rw.w_energy * en / env.energy_ref_j
                lat[e, r] = (n_cls[e] * lc[2] + n_gen[e] * lg[2]) / max(n[e], 1e-9) if n[e] > 0 else lc[2]
                viol[e, r] = (n_cls[e] * vc + n_gen[e] * vg) / max(n[e], 1e-9)
                energy[e, r] = en
                score[e, r] = s
                if s > best_s:
                    best_r, best_s = r, s
            if best_r == ROUTE_CLOUD:
                cloud_work += n_cls[e] * tc["cloud"] + n_gen[e] * tg["cloud"]
        return {"latency_s": lat, "violation": viol, "energy_j": energy, "score": score}

    def _route_energy(self, e: int, r: int, work_e: float, work_c: float, n_cls: float, n_gen: float) -> float:
        """Energy (J) of edge ``e``'s epoch on route ``r``: compute at the edge (``work_e`` s), the cloud
        (``work_c`` s) and the end devices, and the radio of requests up and results down."""
        env, c = self.env, self.cost
        tc = env.t_classify
        ne, nc, nu = env.node["edge"], env.node["cloud"], env.node["end"]
        en = (ne.active_w - ne.idle_w) * work_e * ne.pue + nc.active_w * work_c * nc.pue
        en += (nu.active_w - nu.idle_w) * n_cls * tc["end"] * (r == ROUTE_END)
        # request bytes up and results down, on the access link and (at the cloud) the backhaul
        n_acc = n_cls * (r != ROUTE_END)
        acc_up = n_acc * self.in_b[0] + n_gen * self.in_b[1]
        acc_down = n_acc * self.out_b[0] + n_gen * self.out_b[1]
        at_cloud = r == ROUTE_CLOUD
        bh_up = (n_cls * self.in_b[0] + n_gen * self.in_b[1]) * at_cloud
        bh_down = (n_cls * self.out_b[0] + n_gen * self.out_b[1]) * at_cloud
        en += float(c.radio_energy_j(acc_up, env.access_j_up[e]))
        en += float(c.radio_energy_j(acc_down, env.access_j_down[e]))
        en += float(c.radio_energy_j(bh_up, env.backhaul_j_up[e]))
        en += float(c.radio_energy_j(bh_down, env.backhaul_j_down[e]))
        return en


def _route_latencies(r: int, acc_leg: np.ndarray, bh_leg: np.ndarray, tc: dict[str, float], tg: dict[str, float],
                     edge_q: tuple[float, float, float], cloud_q: tuple[float, float, float],
                     ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Latencies (s) at the epoch's start, end and mean of a classify and a generate request on route ``r``:
    network legs ``acc_leg``/``bh_leg`` (2,), service times ``tc``/``tg``, and the edge and cloud queue
    waits (start, end, mean)."""
    if r == ROUTE_END:
        lc = (tc["end"], tc["end"], tc["end"])
    elif r == ROUTE_EDGE:
        base = acc_leg[0] + tc["edge"]
        lc = (base + edge_q[0], base + edge_q[1], base + edge_q[2])
    else:
        base = acc_leg[0] + bh_leg[0] + tc["cloud"]
        lc = (base + cloud_q[0], base + cloud_q[1], base + cloud_q[2])
    if r == ROUTE_CLOUD:
        base = acc_leg[1] + bh_leg[1] + tg["cloud"]
        lg = (base + cloud_q[0], base + cloud_q[1], base + cloud_q[2])
    else:
        base = acc_leg[1] + tg["edge"]
        lg = (base + edge_q[0], base + edge_q[1], base + edge_q[2])
    return lc, lg
