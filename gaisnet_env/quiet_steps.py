"""Quiet epochs of the native vector env's copies, stepped as arrays over the copies.

Most epochs of most copies start no op and commit none: then the workers only take labelled feedback and
score it, and everything else is arithmetic on the state. :class:`QuietSteps`
steps those copies together: each copy draws its random numbers from its own generator in the single
env's order (arrivals, returned labels, the labelled samples), and the rest runs once over ``(N, E)``
arrays (:mod:`gaisnet_env.core` with a leading env axis, :mod:`gaisnet_env.core.batch` for the
reductions, :mod:`gaisnet_env.copy_feedback` for the workers' feedback). Copy ``i`` ends the epoch in the
state, observation, reward and info the single env computes, bit for bit (``tests/test_quiet_steps.py``).
A copy is quiet when its workers are the stock :class:`~gaisnet_env.workers.WorkerSystem` (shared data
split), its action starts no op on a route that is feasible, no op of it completes this epoch, and no op in
flight is lost to a fault (faults in force are applied over the arrays: queues dropped at down edges, links
and cloud capacity scaled); the other copies step one by one (:mod:`gaisnet_env.copy_steps`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from gaisnet_env import cost, operator_view
from gaisnet_env.copy_feedback import CopyFeedback, shares_feedback
from gaisnet_env.copy_steps import step_copies
from gaisnet_env.core import actions, batch, draws, latency, requests, reward
from gaisnet_env.core import faults as core_faults
from gaisnet_env.core.faults import active_at
from gaisnet_env.core.layout import ROUTE_CLOUD, ROUTE_END
from gaisnet_env.quiet_figures import CopyFigures, epoch_faults, epoch_figures, fault_legs, kept_figures, read_figures
from gaisnet_env.quiet_info import Epoch, vector_info

# (the copies' equal-shaped arrays are stacked with np.array: a third of np.stack's time for many small arrays)
_STATE_ROWS = ("edge_backlog_s", "op_kind", "op_remaining_s", "op_cloud_share", "since_op", "battery_j",
               "label_hits", "label_seen", "label_prior", "reported_class_mix", "reported_style_mix")


def step_copies_quietly(quiet: QuietSteps | None, envs: Sequence[Any], acts: np.ndarray,
                        which: list[int]) -> tuple[dict[int, tuple], tuple | None]:
    """Step the copies ``which`` of ``envs`` with their rows of ``acts`` ((N, 2E)): the quiet ones together
    (``quiet``; None: none), the others one by one (:func:`step_copies`, their ops as one batch with the
    batched engine). Returns ``{i: (obs, reward, terminated, truncated, info)}`` of the copies that stepped
    one by one and ``(quiet copies, obs, rewards, truncated, info)`` of the quiet ones (their rows, in the
    order of the list; ``info`` their vector info), or None. Where a copy that steps one by one may raise on
    a masked action (``masked_action="raise"``), every copy steps one by one, so that the copies before it
    finish first."""
    pairs = np.asarray(acts).reshape(len(envs), -1, 2)
    chosen = quiet.select(pairs, which) if quiet is not None else []
    chosen_set = set(chosen)
    rest = [i for i in which if i not in chosen_set]
    if chosen and any(envs[i].masked_action == "raise" for i in rest):
        chosen, rest = [], which
    stepped = step_copies(envs, acts, rest)
    if not chosen:
        return stepped, None
    obs, rew, trunc, info = quiet.step(pairs, chosen)
    return stepped, (chosen, obs, rew, trunc, info)


def with_quiet_rows(stepped: dict[int, tuple], quiet: tuple | None) -> dict[int, tuple]:
    """``stepped`` of :func:`step_copies_quietly` with each quiet copy's ``(obs, reward, False, truncated,
    None)`` added (``info`` None: the env's ``_last_info`` is its row of the quiet copies' vector info)."""
    if quiet is not None:
        chosen, obs, rew, trunc, _ = quiet
        for k, i in enumerate(chosen):
            stepped[i] = (obs[k].copy(), float(rew[k]), False, bool(trunc[k]), None)
    return stepped


class QuietSteps:
    """Steps the quiet copies of a list of :class:`~gaisnet_env.env.GaisNetEnv` together."""

    def __init__(self, envs: Sequence[Any]) -> None:
        self.envs = envs
        self.feedback: CopyFeedback | None = None
        self._masks: np.ndarray | None = None  # (N, E, 8) each copy's feasibility mask at its last quiet step
        self._gym_masks = np.full(len(envs), None, dtype=object)  # and its Gymnasium mask tuple
        self._figures_memo: tuple | None = None  # (figure rows, per-edge arrays, figures) of the last step
        self._ahead: list[CopyFigures | None] = [None] * len(envs)  # each copy's figures of its next epoch
        self._selected: tuple | None = None  # (copies, their gathered states, fault flags, faults) of the last select
        self._shares_memo: tuple | None = None  # (the copies' workers, whether CopyFeedback holds them)

    def select(self, actions: np.ndarray, which: Sequence[int]) -> list[int]:
        """The copies of ``which`` that are quiet this epoch with their rows of ``actions`` (N, E, 2). Their
        gathered states, fault flags and (where a fault is in force) fault multipliers are kept for
        :meth:`step`."""
        envs = self.envs
        self._selected = None
        if len(which) < 2 or not self._shares_feedback():
            return []
        idx = np.asarray(which, dtype=np.intp)
        acts = actions[idx]
        copies = [envs[i] for i in which]
        st = _gather(copies)
        # no op, and a route in range (a copy with a bad action steps alone, whose parse names it)
        ok = ~acts[..., 1].any(axis=1) & ((acts[..., 0] >= 0) & (acts[..., 0] < ROUTE_CLOUD + 1)).all(axis=1)
        in_flight = st.op_kind > 0
        if in_flight.any():
            epoch_s = np.array([[env.scenario.epoch_s] for env in copies])
            ok &= ~(in_flight & (st.op_remaining_s - epoch_s <= 0)).any(axis=1)  # no op completes
        ok &= ~((acts[..., 0] == ROUTE_END) & (st.battery_j <= 0)).any(axis=1)  # the end route is feasible
        flags = [_fault_flags(env) for env in copies]
        faults = None
        if any(now for now, _ in flags):  # under a fault: no op in flight lost, every route feasible
            faults = epoch_faults(copies, 0, flags)
            ok &= _feasible(faults, st, acts[..., 0])
        keep = np.flatnonzero(ok).tolist()
        chosen = [which[k] for k in keep]
        if len(keep) < len(which):
            pos = np.asarray(keep, dtype=np.intp)
            st = SimpleNamespace(**{name: getattr(st, name)[pos] for name in _STATE_ROWS},
                                 cloud_backlog_s=[st.cloud_backlog_s[k] for k in keep])
            faults = None
        self._selected = (chosen, st, [flags[k] for k in keep], faults)
        return chosen

    def _shares_feedback(self) -> bool:
        """:func:`shares_feedback` of the copies' workers, kept while they are the same objects."""
        workers = [env.workers for env in self.envs]
        memo = self._shares_memo
        if memo is None or not all(map(operator.is_, workers, memo[0])):
            memo = self._shares_memo = (workers, shares_feedback(workers))
        return memo[1]

    def _epoch_figures(self, which: list[int]) -> list[CopyFigures]:
        """The copies' :func:`read_figures` of their epoch: those their last quiet observation read where
        they still hold (:meth:`CopyFigures.holds_for`), else read afresh."""
        out = []
        for i in which:
            env, fig = self.envs[i], self._ahead[i]
            if fig is None or not fig.holds_for(env):
                fig = self._ahead[i] = read_figures(env)
            out.append(fig)
        return out

    def step(self, actions: np.ndarray, which: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step the quiet copies ``which`` (from :meth:`select`): ``(obs (k, n_obs), rewards (k,), truncated
        (k,), info)`` with ``info`` in Gymnasium's vector format over those copies."""
        envs = [self.envs[i] for i in which]
        if self.feedback is None:
            self.feedback = CopyFeedback([env.workers for env in self.envs])
        self.feedback.sync([env.workers for env in self.envs])
        acts = np.array(actions[np.asarray(which)], dtype=np.int64)
        selected, self._selected = self._selected, None
        if selected is not None and selected[0] == which:  # select's gathering of these copies
            st, flags, faults = selected[1:]
        else:
            st, flags, faults = _gather(envs), None, None
        faults = faults if faults is not None else epoch_faults(envs, 0, flags)
        faults_next = epoch_faults(envs, 1, flags)
        fg = kept_figures(self, envs)
        ep = _draw(envs, acts[..., 0], faults, self._epoch_figures(which), fg)
        out = self._epoch(ep, st, fg, np.asarray(which), (faults, faults_next))
        for k, env in enumerate(envs):
            env._last_actions = acts[k]
            env.__dict__["_last_info_row"] = (out[3], k)  # its info, made on first read (GaisNetEnv._last_info)
        return out

    def _epoch(self, ep: Epoch, st: SimpleNamespace, fg: Any, which: np.ndarray,
               faults: tuple[SimpleNamespace, SimpleNamespace]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """The epoch of the gathered copies, in the order of :meth:`GaisNetEnv._step`; ``faults`` the
        multipliers of this epoch and the next (:func:`epoch_faults`)."""
        F = faults[0]
        envs = [self.envs[i] for i in which.tolist()]
        m, en, r, lat, edge_reward, events = epoch_costs(ep, st, fg, F, fault_legs(envs, fg, F))
        self._feedback(ep, st, fg, which, F.edge_up > 0)
        in_flight = st.op_kind > 0
        st.op_remaining_s = np.where(in_flight, st.op_remaining_s - fg.epoch_s, 0.0)
        st.since_op = st.since_op + 1.0
        _scatter(envs, st)
        infos = vector_info(envs, ep, m, en, r, lat, edge_reward, events, st, self._action_masks(which, st, faults[1]),
                            F)
        horizon = [env.scenario.horizon for env in envs]
        obs = self._observation(envs, which, st, fg, faults[1], horizon)
        return obs, r["total"], np.asarray(st.epoch) >= np.asarray(horizon), infos

    def _feedback(self, ep: Epoch, st: SimpleNamespace, fg: Any, which: np.ndarray, edge_up: np.ndarray) -> None:
        """The labelled feedback of the epoch into the copies' rings (edges that are up); the estimated view
        scores it."""
        n, E = ep.route.shape
        rows_k, fb_edges = np.nonzero((ep.n_fb > 0) & edge_up)
        newest = None
        if rows_k.size:
            rows = which[rows_k] * E + fb_edges
            n_fb = ep.n_fb[rows_k, fb_edges]
            newest = self.feedback.add(rows, ep.class_mix[rows_k, fb_edges], ep.style_mix[rows_k, fb_edges], n_fb,
                                       np.concatenate(ep.uniforms))
        estimated = np.array([self.envs[i].accuracy_view == "estimated" for i in which.tolist()])
        if not estimated.any():
            return
        new_hits, new_seen = np.zeros((n, E, 3)), np.zeros((n, E, 3))
        if rows_k.size:
            k = np.minimum(n_fb, fg.feedback_cap[rows_k, 0])  # label_hits scores at most the buffer
            # the rings' k newest samples are those just added where k is what a ring kept of them
            kept = np.minimum(n_fb, self.feedback.capacity)
            new_hits[rows_k, fb_edges] = self.feedback.label_hits(rows, k, newest if np.array_equal(k, kept) else None)
            new_seen[rows_k, fb_edges] = k[:, None]
        seen = np.zeros((n, E, 3), dtype=bool)
        seen[rows_k, fb_edges, :2] = True
        seen[rows_k, fb_edges, 2] = ep.route[rows_k, fb_edges] == ROUTE_CLOUD
        hits, seen_n = operator_view.observe(st.label_hits, st.label_seen, new_hits, new_seen, seen)
        est = estimated[:, None, None]
        st.label_hits = np.where(est, hits, st.label_hits)
        st.label_seen = np.where(est, seen_n, st.label_seen)

    def _action_masks(self, which: np.ndarray, st: SimpleNamespace, F: SimpleNamespace) -> np.ndarray:
        """The copies' Gymnasium masks after the epoch (``info["action_mask"]``, an object array of tuples):
        the feasibility masks of all of them in one call (under the next epoch's faults ``F``), each copy's
        tuple made by its own :meth:`GaisNetEnv.gym_action_mask` only where its mask changed since its last
        quiet step."""
        m = actions.mask({"active": F.active, "access": F.access, "backhaul": F.backhaul, "edge_up": F.edge_up},
                         st.battery_j, st.op_kind)
        if self._masks is None:
            self._masks = np.zeros((len(self.envs), *m.shape[1:]), dtype=bool)
        new = (self._masks[which] != m).any(axis=(1, 2)) | (self._gym_masks[which] == None)  # noqa: E711
        self._masks[which] = m
        for k in np.flatnonzero(new).tolist():  # its own tuple, under the next epoch's faults ``F`` (its scope)
            env = self.envs[which[k]]
            env._faults_scope = {env.state.epoch: F.dicts[k]}
            try:
                self._gym_masks[which[k]] = env.gym_action_mask()
            finally:
                env._faults_scope = None
        return self._gym_masks[which]

    def _observation(self, envs: list[Any], which: np.ndarray, st: SimpleNamespace, fg: Any,
                     F: SimpleNamespace, horizon: list[int]) -> np.ndarray:
        """The copies' next observations (:meth:`GaisNetEnv._observation`, batched); ``horizon`` their
        horizons, epochs."""
        estimated = np.array([env.accuracy_view == "estimated" for env in envs])
        if estimated.any():
            rc, rs, has = (a[which] for a in self.feedback.domain_reports())
            accuracy = operator_view.estimate(st.label_hits, st.label_seen, st.label_prior)
            drift = np.where(has, operator_view.domain_drift(rc, rs, st.reported_class_mix, st.reported_style_mix),
                             0.0)
        else:
            accuracy, drift = np.empty((len(envs), *st.label_hits.shape[1:])), np.empty(st.edge_backlog_s.shape)
        figs = epoch_figures(envs, [self._ahead[i] for i in which.tolist()])
        for k, (env, i, fig) in enumerate(zip(envs, which.tolist(), figs, strict=True)):
            env._domain = (fig.class_mix, fig.style_mix)
            self._ahead[i] = fig  # the next epoch's figures, for its draws
            if not estimated[k]:  # the oracle view
                accuracy[k], drift[k] = env._tier_accuracy(*env._domain), env._drift(*env._domain)
        ci = np.array([fig.carbon for fig in figs])
        f = {"access": F.access, "backhaul": F.backhaul, "edge_up": F.edge_up,
             "cloud_capacity": F.cloud_capacity.tolist()}
        return batch.observation(st, np.array([fig.rates for fig in figs]), fg.mean_rate, accuracy, drift, f,
                                 ci[:, :1], ci[:, 1:], [fig.hour for fig in figs], fg.battery_cap, fg.epoch_s,
                                 horizon)


def epoch_costs(ep: Epoch, st: SimpleNamespace, fg: Any, F: SimpleNamespace,
                legs: tuple[np.ndarray, np.ndarray]) -> tuple:
    """The arithmetic of a quiet epoch over the copies, in the order of :meth:`GaisNetEnv._step`: faults at the
    start (a down edge's queue dropped), serving, queues and latency (request ``legs``, edge and cloud
    (N, 2, E)), energy, batteries, metrics and reward, under the faults ``F`` (:func:`epoch_faults`). Updates
    the gathered state ``st`` (queues, batteries, last epoch's figures; ``cloud_backlog_s`` a list). Returns
    ``(metrics, energy, reward terms, latency, edge rewards, events)``, ``events`` the edges down, requests
    dropped and rerouted and batteries empty."""
    E = ep.route.shape[1]
    edge_down = F.edge_up == 0  # (no op in flight is lost: select checked)
    per_request = (1.0 - fg.generate_share) * fg.t_classify[1] + fg.generate_share * fg.t_generate[0]
    dropped = batch.row_sums(np.where(edge_down, st.edge_backlog_s, 0.0)) / np.maximum(per_request[:, 0], 1e-12)
    st.edge_backlog_s = np.where(edge_down, 0.0, st.edge_backlog_s)
    battery_empty = st.battery_j <= 0
    sv = requests.serve(ep.route, edge_down, F.access, F.backhaul, ep.acc_tier, ep.gen_quality)
    work = requests.work(ep.N, ep.route, sv, battery_empty, fg.t_dicts[0], fg.t_dicts[1])
    lat, share, edge_capacity, new_backlog = _latency(ep, st, fg, sv, work, battery_empty, F, legs)
    served = np.where(lat.finite, sv.served, 0.0)
    en = batch.energy(fg, work.edge, edge_capacity, share, F.edge_up, work.at_cloud_n, work.end_busy, ep.N,
                      ep.route, lat.finite, ep.ci_edge[:, 0], ep.ci_cloud[:, 0])
    has_battery = np.isfinite(st.battery_j).any(axis=1, keepdims=True)
    drained = np.clip(st.battery_j - (en.end_cell + en.radio_access) + fg.recharge_w * fg.epoch_s, 0.0,
                      fg.battery_cap_or_inf)
    st.battery_j = np.where(has_battery, drained, st.battery_j)
    m = batch.metrics(ep.N, ep.n_req, served, lat)
    r = batch.reward_terms(fg.weights, m, en.total, en.carbon_g, fg.energy_ref_j[:, 0], fg.carbon_ref_g[:, 0])
    st.last_violation, st.last_latency_ratio = reward.cell_figures(m, ep.n_req, fg.rw.latency_clip)
    st.edge_backlog_s = np.where(F.edge_up > 0, new_backlog[:, :E], 0.0)
    st.cloud_backlog_s = new_backlog[:, E].tolist()
    edge_reward = reward.edge_reward(fg.rw, m, ep.n_req, served, en, ep.ci_edge, ep.ci_cloud, st.last_violation,
                                     st.last_latency_ratio, fg.energy_ref_j, fg.carbon_ref_g)
    events = {"edge_down": edge_down, "dropped": dropped, "battery_empty": battery_empty,
              "rerouted": batch.row_sums(np.where(sv.gen_rerouted, ep.N[:, 1], 0.0))}
    return m, en, r, lat, edge_reward, events


def _fault_flags(env: Any) -> tuple[bool, bool]:
    """Whether a fault of the copy is in force at its epoch, and at the next (:func:`active_at`)."""
    faults, t = env.scenario.faults, env.state.epoch
    if not (faults.links or faults.edges_down or faults.cloud_overload) or not active_at(faults, t, t + 1):
        return False, False
    return active_at(faults, t), active_at(faults, t + 1)


def _feasible(F: SimpleNamespace, st: SimpleNamespace, route: np.ndarray) -> np.ndarray:
    """(N,) whether each copy's epoch can step quiet under the faults ``F`` in force (:func:`epoch_faults`):
    no op in flight lost to them and every route of ``route`` (N, E) feasible (the action carried out as
    given). A copy with no fault in force is feasible."""
    f = {"active": F.active, "access": F.access, "backhaul": F.backhaul, "edge_up": F.edge_up}
    lost = core_faults.lost_ops(f, st.op_kind)[1].any(axis=1)
    m = actions.mask(f, st.battery_j, st.op_kind)
    n, E = route.shape
    routes_ok = m[np.arange(n)[:, None], np.arange(E), np.clip(route, 0, ROUTE_CLOUD)].all(axis=1)
    return (F.active == 0) | (~lost & routes_ok)


def _draw(envs: list[Any], route: np.ndarray, F: SimpleNamespace, figs: list[CopyFigures], fg: Any) -> Epoch:
    """Each copy's random draws of its epoch, in the single env's order: arrivals and generate requests
    (:func:`requests.arrivals`), returned labels (:func:`feedback.labels`), the labelled samples' uniforms
    (:meth:`DigitsData.sample_private_batch`); ``figs`` the copies' :func:`read_figures`, ``fg`` their
    :func:`kept_figures`. The arithmetic around the draws runs batched."""
    rates = np.array([fig.rates for fig in figs])
    counts, n_gens, n_labs, accs, gqs, uniforms = [], [], [], [], [], []
    for env, f, fig, lam, (generate_share, label_rate, cap) in zip(envs, F.dicts, figs,
                                                                   (rates * fg.epoch_s).tolist(), fg.draw_params,
                                                                   strict=True):
        rng, cm, sm = env.np_random, fig.class_mix, fig.style_mix
        env._domain = (cm, sm)
        count, n_gen, n_lab = draws.arrivals_and_labels(rng, lam, generate_share, label_rate)
        labs = n_lab
        if f["active"]:  # labels of edges that are down do not arrive (feedback.labels)
            labs = [x for x, up in zip(labs, f["edge_up"].tolist(), strict=True) if up > 0] or [0]
        total = sum(labs) if max(labs) <= cap else sum(min(x, cap) for x in labs)  # kept (feedback.labels)
        if total:
            uniforms.append(rng.random(3 * total))
        accs.append(env._tier_accuracy(cm, sm))
        gqs.append(env._generation_quality(cm, sm))
        counts.append(count)
        n_gens.append(n_gen)
        n_labs.append(n_lab)
    ci, count, n_lab = np.array([fig.carbon for fig in figs]), np.array(counts, dtype=np.int64), np.array(n_labs)
    n_req = count.astype(np.float64)
    N = np.empty((len(envs), 2, count.shape[1]))
    N[:, 1] = n_gens
    np.subtract(n_req, N[:, 1], out=N[:, 0])
    n_fb = np.minimum(n_lab, fg.feedback_per_epoch).astype(np.int64)
    return Epoch(route=route, class_mix=np.array([fig.class_mix for fig in figs]),
                 style_mix=np.array([fig.style_mix for fig in figs]),
                 acc_tier=np.array(accs), gen_quality=np.array(gqs), counts=count, n_req=n_req, N=N, n_fb=n_fb,
                 uniforms=uniforms, ci_edge=ci[:, :1], ci_cloud=ci[:, 1:])


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


def _latency(ep: Epoch, st: SimpleNamespace, fg: Any, sv: requests.Serving, work: requests.Work,
             battery_empty: np.ndarray, F: SimpleNamespace,
             legs: tuple[np.ndarray, np.ndarray]) -> tuple[latency.Latency, np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`GaisNetEnv._latency` of the copies under their faults ``F``, with their request ``legs``."""
    E = ep.route.shape[1]
    any_op = st.op_kind.any(axis=1)
    share = latency.op_share(st.op_kind, st.op_remaining_s, fg.epoch_s)
    edge_capacity = fg.epoch_s * (1.0 - fg.op_share_hw * share) * F.edge_up
    cloud_op_s = np.where(any_op, batch.row_sums(share * st.op_cloud_share) * fg.epoch_s[:, 0], 0.0)
    queue = latency.queue_inputs(st.edge_backlog_s, np.array(st.cloud_backlog_s), work.edge,
                                 (work.cloud_total + cloud_op_s) / fg.cloud_servers[:, 0], edge_capacity,
                                 fg.epoch_s[:, 0] * F.cloud_capacity)
    new_backlog, mean_wait = cost.fluid_queue(queue[:, 0], queue[:, 1], queue[:, 2], period_s=fg.epoch_s)
    edge_leg, cloud_leg = legs
    lat_end = np.where(battery_empty, np.inf, fg.t_classify[0])
    tier = np.empty((*ep.route.shape[:1], 2, E), dtype=np.intp)
    tier[:, 0] = ep.route
    np.add(sv.gen_cloud, 1, out=tier[:, 1])
    lat = latency.request_latency(queue, new_backlog, mean_wait, edge_leg, cloud_leg, tier, lat_end, fg.deadlines,
                                  fg.epoch_s[:, :, None], fg.rw.latency_clip[:, :, None])
    return lat, share, edge_capacity, new_backlog
