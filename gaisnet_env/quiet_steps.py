"""Quiet epochs of the native vector env's copies, stepped as arrays over the copies.

Most epochs of most copies start no op, commit none and have no fault in force: then the workers only
take labelled feedback and score it, and everything else is arithmetic on the state. :class:`QuietSteps`
steps those copies together: each copy draws its random numbers from its own generator in the single
env's order (arrivals, returned labels, the labelled samples), and the rest runs once over ``(N, E)``
arrays (:mod:`gaisnet_env.core` with a leading env axis, :mod:`gaisnet_env.core.batch` for the
reductions, :mod:`gaisnet_env.copy_feedback` for the workers' feedback). Copy ``i`` ends the epoch in the
state, observation, reward and info the single env computes, bit for bit (``tests/test_quiet_steps.py``).
A copy is quiet when its workers are the stock :class:`~gaisnet_env.workers.WorkerSystem` (shared data
split), its action starts no op on a route that is feasible, no op of it completes this epoch, and no fault
is in force at this epoch or the next; the other copies step one by one (:mod:`gaisnet_env.copy_steps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from gaisnet_env import operator_view
from gaisnet_env.copy_feedback import CopyFeedback, shares_feedback
from gaisnet_env.core import actions, batch, latency, requests, reward
from gaisnet_env.core.faults import active_at, multipliers
from gaisnet_env.core.layout import ROUTE_CLOUD, ROUTE_END
from gaisnet_env.quiet_info import Epoch, vector_info

# (the copies' equal-shaped arrays are stacked with np.array: a third of np.stack's time for many small arrays)
_NO_FAULTS = SimpleNamespace(links=(), edges_down=(), cloud_overload=())
_STATE_ROWS = ("edge_backlog_s", "op_kind", "op_remaining_s", "op_cloud_share", "since_op", "battery_j",
               "label_hits", "label_seen", "label_prior", "reported_class_mix", "reported_style_mix")


class QuietSteps:
    """Steps the quiet copies of a list of :class:`~gaisnet_env.env.GaisNetEnv` together."""

    def __init__(self, envs: Sequence[Any]) -> None:
        self.envs = envs
        self.feedback: CopyFeedback | None = None
        self._masks: np.ndarray | None = None  # (N, E, 8) each copy's feasibility mask at its last quiet step
        self._gym_masks: list[Any] = [None] * len(envs)  # and its Gymnasium mask tuple
        self._figures_memo: tuple | None = None  # (figure rows, per-edge arrays, figures) of the last step

    def select(self, actions: np.ndarray, which: Sequence[int]) -> list[int]:
        """The copies of ``which`` that are quiet this epoch with their rows of ``actions`` (N, E, 2)."""
        envs = self.envs
        if len(which) < 2 or not shares_feedback([env.workers for env in envs]):
            return []
        idx = np.asarray(which, dtype=np.intp)
        acts = actions[idx]
        ok = ~acts[..., 1].any(axis=1)
        op_kind = np.array([envs[i].state.op_kind for i in which])
        remaining = np.array([envs[i].state.op_remaining_s for i in which])
        epoch_s = np.array([[envs[i].scenario.epoch_s] for i in which])
        ok &= ~((op_kind > 0) & (remaining - epoch_s <= 0)).any(axis=1)  # no op completes
        battery = np.array([envs[i].state.battery_j for i in which])
        ok &= ~((acts[..., 0] == ROUTE_END) & (battery <= 0)).any(axis=1)  # the end route is feasible
        return [i for i, good in zip(which, ok.tolist(), strict=True) if good and _no_fault(envs[i])]

    def step(self, actions: np.ndarray, which: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step the quiet copies ``which`` (from :meth:`select`): ``(obs (k, n_obs), rewards (k,), truncated
        (k,), info)`` with ``info`` in Gymnasium's vector format over those copies."""
        envs = [self.envs[i] for i in which]
        if self.feedback is None:
            self.feedback = CopyFeedback([env.workers for env in self.envs])
        self.feedback.sync([env.workers for env in self.envs])
        acts = np.array(actions[np.asarray(which)], dtype=np.int64)
        ep = _draw(envs, acts[..., 0])
        st = _gather(envs)
        fg = self._figures(envs)
        no_fault = _no_fault_multipliers(envs[0].n_edges)
        for env in envs:  # the next epoch's faults (masks, info): none (select checked)
            env._faults_scope = {env.state.epoch + 1: no_fault}
        try:
            out = self._epoch(ep, st, fg, np.asarray(which))
        finally:
            for env in envs:
                env._faults_scope = None
        for k, env in enumerate(envs):
            env._last_actions = acts[k]
            env.__dict__["_last_info_row"] = (out[3], k)  # its info, made on first read (GaisNetEnv._last_info)
        return out

    def _epoch(self, ep: Epoch, st: SimpleNamespace, fg: batch.Figures,
               which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """The epoch of the gathered copies, in the order of :meth:`GaisNetEnv._step`."""
        n, E = ep.route.shape
        sv = requests.serve(ep.route, None, None, None, ep.acc_tier, ep.gen_quality)
        battery_empty = st.battery_j <= 0
        work = requests.work(ep.N, ep.route, sv, battery_empty, fg.t_dicts[0], fg.t_dicts[1])
        lat, share, edge_capacity, new_backlog = _latency(ep, st, fg, sv, work, battery_empty)
        served = np.where(lat.finite, sv.served, 0.0)
        en = batch.energy(fg, work.edge, edge_capacity, share, 1.0, work.at_cloud_n, work.end_busy, ep.N, ep.route,
                          lat.finite, ep.ci_edge[:, 0], ep.ci_cloud[:, 0])
        has_battery = np.isfinite(st.battery_j).any(axis=1, keepdims=True)
        drained = np.clip(st.battery_j - (en.end_cell + en.radio_access) + fg.recharge_w * fg.epoch_s, 0.0,
                          fg.battery_cap_or_inf)
        st.battery_j = np.where(has_battery, drained, st.battery_j)
        m = batch.metrics(ep.N, ep.n_req, served, lat)
        r = batch.reward_terms(fg.weights, m, en.total, en.carbon_g, fg.energy_ref_j[:, 0], fg.carbon_ref_g[:, 0])
        st.last_violation, st.last_latency_ratio = reward.cell_figures(m, ep.n_req, fg.rw.latency_clip)
        st.edge_backlog_s = new_backlog[:, :E].copy()
        st.cloud_backlog_s = new_backlog[:, E].tolist()
        edge_reward = reward.edge_reward(fg.rw, m, ep.n_req, served, en, ep.ci_edge, ep.ci_cloud, st.last_violation,
                                         st.last_latency_ratio, fg.energy_ref_j, fg.carbon_ref_g)
        self._feedback(ep, st, fg, which)
        in_flight = st.op_kind > 0
        st.op_remaining_s = np.where(in_flight, st.op_remaining_s - fg.epoch_s, 0.0)
        st.since_op = st.since_op + 1.0
        envs = [self.envs[i] for i in which.tolist()]
        _scatter(envs, st)
        infos = vector_info(envs, ep, m, en, r, lat, edge_reward, battery_empty, st, self._action_masks(which, st))
        obs = self._observation(envs, which, st, fg)
        truncated = np.array([env.state.epoch >= env.scenario.horizon for env in envs])
        return obs, r["total"], truncated, infos

    def _feedback(self, ep: Epoch, st: SimpleNamespace, fg: batch.Figures, which: np.ndarray) -> None:
        """The labelled feedback of the epoch into the copies' rings; the estimated view scores it."""
        n, E = ep.route.shape
        rows_k, fb_edges = np.nonzero(ep.n_fb > 0)
        if rows_k.size:
            rows = which[rows_k] * E + fb_edges
            n_fb = ep.n_fb[rows_k, fb_edges]
            self.feedback.add(rows, ep.class_mix[rows_k, fb_edges], ep.style_mix[rows_k, fb_edges], n_fb,
                              np.concatenate(ep.uniforms))
        estimated = np.array([self.envs[i].accuracy_view == "estimated" for i in which.tolist()])
        if not estimated.any():
            return
        new_hits, new_seen = np.zeros((n, E, 3)), np.zeros((n, E, 3))
        if rows_k.size:
            k = np.minimum(n_fb, fg.feedback_cap[rows_k, 0])  # label_hits scores at most the buffer
            new_hits[rows_k, fb_edges] = self.feedback.label_hits(rows, k)
            new_seen[rows_k, fb_edges] = k[:, None]
        seen = np.zeros((n, E, 3), dtype=bool)
        seen[rows_k, fb_edges, :2] = True
        seen[rows_k, fb_edges, 2] = ep.route[rows_k, fb_edges] == ROUTE_CLOUD
        hits, seen_n = operator_view.observe(st.label_hits, st.label_seen, new_hits, new_seen, seen)
        est = estimated[:, None, None]
        st.label_hits = np.where(est, hits, st.label_hits)
        st.label_seen = np.where(est, seen_n, st.label_seen)

    def _figures(self, envs: list[Any]) -> Any:
        """:func:`_figures` of the copies, kept while the same copies have the same figure rows (deadlines
        included) and the same radio arrays (set when an env is built)."""
        rows = np.array([_figure_row(env) for env in envs], dtype=np.float64)
        arrays = [(env.access_j_up, env.access_j_down, env.backhaul_j_up, env.backhaul_j_down) for env in envs]
        memo = self._figures_memo
        if (memo is not None and len(memo[1]) == len(envs) and np.array_equal(memo[0], rows)
                and all(a is b for new, old in zip(arrays, memo[1], strict=True)
                        for a, b in zip(new, old, strict=True))):
            return memo[2]
        fg = _figures(envs, rows)
        self._figures_memo = (rows, arrays, fg)
        return fg

    def _action_masks(self, which: np.ndarray, st: SimpleNamespace) -> np.ndarray:
        """The copies' Gymnasium masks after the epoch (``info["action_mask"]``, an object array of tuples):
        the feasibility masks of all of them in one call (no fault in force), each copy's tuple made by its own
        :meth:`GaisNetEnv.gym_action_mask` only where its mask changed since its last quiet step."""
        m = actions.mask({"active": 0}, st.battery_j, st.op_kind)
        if self._masks is None:
            self._masks = np.zeros((len(self.envs), *m.shape[1:]), dtype=bool)
        changed = (self._masks[which] != m).any(axis=(1, 2))
        self._masks[which] = m
        out = np.empty(which.size, dtype=object)
        for k, (i, new) in enumerate(zip(which.tolist(), changed.tolist(), strict=True)):
            if new or self._gym_masks[i] is None:
                self._gym_masks[i] = self.envs[i].gym_action_mask()
            out[k] = self._gym_masks[i]
        return out

    def _observation(self, envs: list[Any], which: np.ndarray, st: SimpleNamespace, fg: Any) -> np.ndarray:
        """The copies' next observations (:meth:`GaisNetEnv._observation`, batched)."""
        estimated = np.array([env.accuracy_view == "estimated" for env in envs])
        if estimated.any():
            rc, rs, has = (a[which] for a in self.feedback.domain_reports())
            accuracy = operator_view.estimate(st.label_hits, st.label_seen, st.label_prior)
            drift = np.where(has, operator_view.domain_drift(rc, rs, st.reported_class_mix, st.reported_style_mix),
                             0.0)
        else:
            accuracy, drift = np.empty((len(envs), *st.label_hits.shape[1:])), np.empty(st.edge_backlog_s.shape)
        _next_figures(envs)
        figs = []
        for k, env in enumerate(envs):
            t = env.state.epoch
            now = env._figures(t)
            cm, sm = env._domains_at(min(t, env.scenario.horizon))
            env._domain = (cm, sm)
            figs.append(now)
            if not estimated[k]:  # the oracle view
                accuracy[k], drift[k] = env._tier_accuracy(cm, sm), env._drift(cm, sm)
        ci = np.array([env._carbon_intensity(now) for env, now in zip(envs, figs, strict=True)])
        ones = np.ones(st.edge_backlog_s.shape)
        f = {"access": ones, "backhaul": ones, "edge_up": ones, "cloud_capacity": [1.0] * len(envs)}
        return batch.observation(st, np.array([now.rates for now in figs]), fg.mean_rate, accuracy, drift, f,
                                 ci[:, :1], ci[:, 1:], [now.hour for now in figs], fg.battery_cap, fg.epoch_s,
                                 [env.scenario.horizon for env in envs])


def _next_figures(envs: list[Any]) -> None:
    """Each copy's workload figures of its (new) epoch into its memo: hour and diurnal factor once per group of
    copies at the same epoch with the same time parameters, the rates ``base * diurnal * flash`` as
    :meth:`Workload.rates` computes them (rows of one array). Copies with flash crowds compute their own."""
    groups: dict[tuple, list[Any]] = {}
    for env in envs:
        wl, t = env.workload, env.state.epoch
        if wl._flash:
            env._figures(t)
        elif env._figures_of is not wl or t not in env._figures_memo:
            groups.setdefault((t, wl.start_hour, wl.epoch_s, wl.amplitude, wl.peak_hour), []).append(env)
    for (t, *_), members in groups.items():
        wl = members[0].workload
        hour, diurnal = wl.hour(t), wl.diurnal(t)
        rates = np.array([env.workload.base_rates for env in members]) * diurnal * np.ones(wl.n_edges)
        rates.setflags(write=False)
        for env, row in zip(members, rates, strict=True):
            env._install_figures(t, hour, row)


def _no_fault_multipliers(n_edges: int) -> dict[str, Any]:
    """:func:`multipliers` without a fault in force (read-only arrays)."""
    f = multipliers(_NO_FAULTS, n_edges, 0)
    for v in f.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    return f


def _no_fault(env: Any) -> bool:
    """No fault in force at the copy's epoch or the next (the observation's)."""
    t = env.state.epoch
    return not active_at(env.scenario.faults, t, t + 1)


def _draw(envs: list[Any], route: np.ndarray) -> Epoch:
    """Each copy's figures of its epoch and its random draws, in the single env's order: arrivals and
    generate requests (:func:`requests.arrivals`), returned labels (:func:`feedback.labels`), the labelled
    samples' uniforms (:meth:`DigitsData.sample_private_batch`); the arithmetic around them runs batched."""
    cms, sms, accs, gqs, counts, n_gens, n_labs, cis, uniforms = [], [], [], [], [], [], [], [], []
    for env in envs:
        sc, t, rng = env.scenario, env.state.epoch, env.np_random
        wl = sc.workload
        now = env._figures(t)
        cm, sm = env._domains_at(t)
        env._domain = (cm, sm)
        count = rng.poisson(now.rates * sc.epoch_s)
        n_gen = rng.binomial(count, wl.generate_share)
        n_lab = rng.binomial(count - n_gen, wl.label_rate)
        cap = wl.feedback_per_epoch
        labs = n_lab.tolist()
        total = sum(labs) if max(labs) <= cap else sum(min(x, cap) for x in labs)  # kept (feedback.labels)
        if total:
            uniforms.append(rng.random(3 * total))
        cms.append(cm)
        sms.append(sm)
        accs.append(env._tier_accuracy(cm, sm))
        gqs.append(env._generation_quality(cm, sm))
        counts.append(count)
        n_gens.append(n_gen)
        n_labs.append(n_lab)
        cis.append(env._carbon_intensity(now))
    ci, count, n_lab = np.array(cis), np.array(counts), np.array(n_labs)
    n_req = count.astype(np.float64)
    N = np.empty((len(envs), 2, count.shape[1]))
    N[:, 1] = np.array(n_gens)
    np.subtract(n_req, N[:, 1], out=N[:, 0])
    per_epoch = np.array([[env.scenario.workload.feedback_per_epoch] for env in envs])
    n_fb = np.minimum(n_lab, per_epoch).astype(np.int64)
    return Epoch(route=route, class_mix=np.array(cms), style_mix=np.array(sms), acc_tier=np.array(accs),
                 gen_quality=np.array(gqs), counts=count, n_req=n_req, N=N, n_fb=n_fb, uniforms=uniforms,
                 ci_edge=ci[:, :1], ci_cloud=ci[:, 1:])


def _gather(envs: list[Any]) -> SimpleNamespace:
    """The copies' states as (N, E, ...) arrays (and lists of the per-copy floats)."""
    states = [env.state for env in envs]
    out = SimpleNamespace(**{name: np.array([getattr(s, name) for s in states]) for name in _STATE_ROWS})
    out.cloud_backlog_s = [s.cloud_backlog_s for s in states]
    return out


def _scatter(envs: list[Any], st: SimpleNamespace) -> None:
    """Write the epoch's state back into each copy's :class:`SimState`: its own rows of the epoch's arrays
    (views; no two copies share memory, and the next epoch gathers copies)."""
    for k, env in enumerate(envs):
        s = env.state
        s.edge_backlog_s, s.cloud_backlog_s = st.edge_backlog_s[k], st.cloud_backlog_s[k]
        s.op_remaining_s, s.since_op, s.battery_j = st.op_remaining_s[k], st.since_op[k], st.battery_j[k]
        s.last_violation, s.last_latency_ratio = st.last_violation[k], st.last_latency_ratio[k]
        s.label_hits, s.label_seen = st.label_hits[k], st.label_seen[k]
        s.epoch += 1
    st.epoch = [env.state.epoch for env in envs]


#: The per-copy figures :func:`_figures` reads, in the order of its columns.
_FIGURE_COLUMNS = ("epoch_s", "op_share_hw", "edge_idle_w", "edge_active_w", "edge_pue", "cloud_active_w",
                   "cloud_pue", "end_active_w", "end_idle_w", "tc_end", "tc_edge", "tc_cloud", "tg_edge", "tg_cloud",
                   "classify_in_b", "generate_in_b", "classify_out_b", "generate_out_b", "w_acc", "w_lat",
                   "w_energy", "w_sla", "w_carbon", "latency_clip", "energy_ref_j", "carbon_ref_g", "mean_rate",
                   "cloud_servers", "recharge_w", "battery_cap", "feedback_cap", "deadline_classify",
                   "deadline_generate")


def _figure_row(env: Any) -> tuple:
    """One copy's :data:`_FIGURE_COLUMNS` (read afresh every step, as the single env reads them)."""
    sc = env.scenario
    hw, wl, rw, node, tc, tg = sc.hardware, sc.workload, sc.reward, env.node, env.t_classify, env.t_generate
    ne, nc, nu = node["edge"], node["cloud"], node["end"]
    return (sc.epoch_s, hw.op_share, ne.idle_w, ne.active_w, ne.pue, nc.active_w, nc.pue, nu.active_w, nu.idle_w,
            tc["end"], tc["edge"], tc["cloud"], tg["edge"], tg["cloud"], wl.classify_in_bytes, wl.generate_in_bytes,
            wl.classify_out_bytes, wl.generate_out_bytes, rw.w_acc, rw.w_lat, rw.w_energy, rw.w_sla, rw.w_carbon,
            rw.latency_clip, env.energy_ref_j, env.carbon_ref_g, env.mean_rate, hw.cloud_servers,
            sc.energy.end_recharge_w, sc.energy.end_battery_j or 0.0, sc.workers.feedback_buffer, *env.deadline)


def _figures(envs: list[Any], table: np.ndarray) -> Any:
    """The copies' cost figures stacked: :class:`batch.Figures` with the env-side ones added ((N, 1) per
    copy; per edge (N, E)); ``table`` their :func:`_figure_row` rows."""
    c = {name: table[:, j : j + 1] for j, name in enumerate(_FIGURE_COLUMNS)}
    fg = batch.Figures(
        epoch_s=c["epoch_s"], op_share_hw=c["op_share_hw"],
        edge=(c["edge_idle_w"], c["edge_active_w"], c["edge_pue"]), cloud=(c["cloud_active_w"], c["cloud_pue"]),
        end=(c["end_active_w"], c["end_idle_w"]), t_classify=(c["tc_end"], c["tc_edge"], c["tc_cloud"]),
        t_generate=(c["tg_edge"], c["tg_cloud"]), in_b=(c["classify_in_b"], c["generate_in_b"]),
        out_b=(c["classify_out_b"], c["generate_out_b"]),
        radio=tuple(np.array([getattr(env, a) for env in envs]).astype(np.float64)
                    for a in ("access_j_up", "access_j_down", "backhaul_j_up", "backhaul_j_down")),
    )
    fg.t_dicts = ({"end": c["tc_end"], "edge": c["tc_edge"], "cloud": c["tc_cloud"]},
                  {"edge": c["tg_edge"], "cloud": c["tg_cloud"]})
    fg.rw = SimpleNamespace(**{a: c[a] for a in ("w_acc", "w_lat", "w_energy", "w_sla", "w_carbon", "latency_clip")})
    fg.weights = {a: c[a][:, 0] for a in ("w_acc", "w_lat", "w_energy", "w_sla", "w_carbon")}
    fg.energy_ref_j, fg.carbon_ref_g, fg.mean_rate = c["energy_ref_j"], c["carbon_ref_g"], c["mean_rate"]
    fg.cloud_servers, fg.recharge_w, fg.battery_cap = c["cloud_servers"], c["recharge_w"], c["battery_cap"]
    fg.battery_cap_or_inf = np.where(fg.battery_cap > 0, fg.battery_cap, np.inf)
    fg.feedback_cap = c["feedback_cap"].astype(np.int64)
    ones = np.ones(envs[0].n_edges)  # the link factors without faults
    legs = [env._legs({"active": 0, "access": ones, "backhaul": ones}, True, *_payloads(env)) for env in envs]
    fg.edge_leg, fg.cloud_leg = np.array([leg[0] for leg in legs]), np.array([leg[1] for leg in legs])
    fg.deadlines = np.array([env._deadlines() for env in envs])
    return fg


def _payloads(env: Any) -> tuple[tuple, tuple]:
    wl = env.scenario.workload
    return (wl.classify_in_bytes, wl.generate_in_bytes), (wl.classify_out_bytes, wl.generate_out_bytes)


def _latency(ep: Epoch, st: SimpleNamespace, fg: batch.Figures, sv: requests.Serving, work: requests.Work,
             battery_empty: np.ndarray) -> tuple[latency.Latency, np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`GaisNetEnv._latency` of the copies (no fault in force)."""
    from gaisnet_env import cost

    E = ep.route.shape[1]
    any_op = st.op_kind.any(axis=1)
    share = latency.op_share(st.op_kind, st.op_remaining_s, fg.epoch_s)
    edge_capacity = fg.epoch_s * (1.0 - fg.op_share_hw * share) * 1.0
    cloud_op_s = np.where(any_op, batch.row_sums(share * st.op_cloud_share) * fg.epoch_s[:, 0], 0.0)
    queue = latency.queue_inputs(st.edge_backlog_s, np.array(st.cloud_backlog_s), work.edge,
                                 (work.cloud_total + cloud_op_s) / fg.cloud_servers[:, 0], edge_capacity,
                                 fg.epoch_s[:, 0] * 1.0)
    new_backlog, mean_wait = cost.fluid_queue(queue[:, 0], queue[:, 1], queue[:, 2], period_s=fg.epoch_s)
    edge_leg, cloud_leg = fg.edge_leg, fg.cloud_leg
    lat_end = np.where(battery_empty, np.inf, fg.t_classify[0])
    tier = np.empty((*ep.route.shape[:1], 2, E), dtype=np.intp)
    tier[:, 0] = ep.route
    np.add(sv.gen_cloud, 1, out=tier[:, 1])
    lat = latency.request_latency(queue, new_backlog, mean_wait, edge_leg, cloud_leg, tier, lat_end, fg.deadlines,
                                  fg.epoch_s[:, :, None], fg.rw.latency_clip[:, :, None])
    return lat, share, edge_capacity, new_backlog
