"""The env's side of one epoch: the pieces of :meth:`GaisNetEnv.step <gaisnet_env.env.GaisNetEnv.step>`
that call the model workers (start, abort, commit ops; feedback) and hold the memos, around the pure
functions of :mod:`gaisnet_env.core` that compute the numbers. A mixin of the env: it reads
``self.state``, ``self.scenario``, ``self.workers`` and the cost figures (``self.t_classify``...)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from gaisnet_env import cost, masks, operator_view
from gaisnet_env.core import actions, energy, feedback, latency, ops, requests
from gaisnet_env.core import faults as core_faults
from gaisnet_env.core.layout import OP_NONE
from gaisnet_env.worker_config import OPERATIONS, TIERS


class EpochPieces:
    """The pieces of a step that touch the workers and the memos (a mixin of the env)."""

    state: Any
    scenario: Any
    workers: Any
    n_edges: int
    accuracy_view: str

    @property
    def _last_info(self) -> dict[str, Any]:
        """The info of the last reset or step (a quiet vector step leaves its row of the vector info, made
        into the dict on first read: :func:`gaisnet_env.quiet_info.info_row`)."""
        d = self.__dict__
        row = d.get("_last_info_row")
        if row is not None:
            from gaisnet_env.quiet_info import info_row

            d["_last_info_value"], d["_last_info_row"] = info_row(*row), None
        return d["_last_info_value"]

    @_last_info.setter
    def _last_info(self, value: dict[str, Any]) -> None:
        self.__dict__["_last_info_value"], self.__dict__["_last_info_row"] = value, None

    def _faults_at_start(self, f: dict[str, Any]) -> tuple[np.ndarray | None, int, float]:
        """Faults at the start of the epoch: an op in flight is lost when its edge is down or the link it
        transfers over is out (its cost stays charged); a down edge's queue is dropped (those requests
        fail). Returns ``(edge_down (E,) bool or None without faults, ops aborted, requests dropped)``."""
        if f["active"] == 0:
            return None, 0, 0.0
        st, g = self.state, self.scenario.workload.generate_share
        edge_down, lost = core_faults.lost_ops(f, st.op_kind)
        for e in np.flatnonzero(lost):
            self.workers.abort_op(int(e))
        st.op_kind, st.op_remaining_s = ops.abort(st.op_kind, st.op_remaining_s, lost)
        work_per_edge_request = (1.0 - g) * self.t_classify["edge"] + g * self.t_generate["edge"]
        dropped, st.edge_backlog_s = core_faults.drop_queues(edge_down, st.edge_backlog_s, work_per_edge_request)
        return edge_down, int(lost.sum()), dropped

    def _start_new_ops(self, op: np.ndarray, f: dict[str, Any],
                       defer: bool = False) -> Generator[list[Any], bool, ops.Starts]:
        """Start this epoch's ops (real training happens now) and book them into the state. A generator:
        with ``defer`` it yields the workers' deferred training jobs (see :meth:`_start_ops`)."""
        st = self.state
        starts = ops.no_starts(self.n_edges)
        if not op.any():
            return starts
        started = [(OPERATIONS[op[e]], int(e)) for e in np.flatnonzero(op != OP_NONE)]
        results = yield from self._start_ops(started, defer)
        for (name, e), res in zip(started, results, strict=True):
            if not res.ok:
                starts.failed += 1
                continue
            ops.record_start(st, starts, e, int(op[e]), self._op_cost(name, e, res, f))
        ops.close_round(st, starts.senders)
        return starts

    def _start_ops(self, started: list[tuple[str, int]], defer: bool = False) -> Generator[list[Any], bool, list[Any]]:
        """Start this epoch's ops: ``workers.start_ops`` (relay_ups as one federated round) where the
        workers have it, else ``start_op`` one by one. With ``defer`` (the native vector env batching its
        copies' ops, :mod:`gaisnet_env.copy_steps`) ``workers.start_ops_phased``, whose deferred training
        jobs are yielded to the caller and trained there."""
        if defer:
            return (yield from self.workers.start_ops_phased(started, defer=True))
        many = getattr(self.workers, "start_ops", None)
        if many is not None:
            return list(many(started))
        return [self.workers.start_op(name, e) for name, e in started]

    def _op_cost(self, name: str, e: int, res: Any,
                 faults: dict[str, Any]) -> tuple[float, float, float, float, float, float]:
        """Duration (s), edge and cloud energy (J, radio included), bytes up/down and cloud server-seconds
        (this edge's share) of an op started at edge ``e``: :func:`gaisnet_env.core.ops.op_cost` over the
        access link (relay_to_end) or the backhaul path (the others)."""
        sc = self.scenario
        if name == "relay_to_end":
            k = faults["access"][e]
            link = ops.LinkPath(self.access_up_bps[e] * k, self.access_down_bps[e] * k, self.access_rtt_s[e],
                                self.access_j_up[e], self.access_j_down[e])
        else:
            k = faults["backhaul"][e]
            link = ops.LinkPath(self.backhaul_up_bps[e] * k, self.backhaul_down_bps[e] * k, self.backhaul_rtt_s[e],
                                self.backhaul_j_up[e], self.backhaul_j_down[e])
        return ops.op_cost(name, res, sc.reference_models, sc.workers.relay_down_variant, sc.hardware.op_share,
                           self.node["edge"], self.node["cloud"], faults["cloud_capacity"], link)

    def _latency(self, f: dict[str, Any], sv: requests.Serving, work: requests.Work, route: np.ndarray,
                 battery_empty: np.ndarray) -> tuple[latency.Latency, np.ndarray, np.ndarray, np.ndarray]:
        """Queues and latency of the epoch: ``(latency, ops' share of the epoch (E,), edge capacity (E,, s),
        new backlog (E + 1,), s: the edges then the cloud per server)``. Ops in flight take ``op_share`` of
        their edge; their cloud compute joins the cloud queue's work, so requests wait behind it."""
        st, sc = self.state, self.scenario
        epoch_s, wl = sc.epoch_s, sc.workload
        share = latency.op_share(st.op_kind, st.op_remaining_s, epoch_s)
        edge_capacity = epoch_s * (1.0 - sc.hardware.op_share * share) * f["edge_up"]
        cloud_op_s = float((share * st.op_cloud_share).sum()) * epoch_s if st.op_kind.any() else 0.0
        queue = latency.queue_inputs(st.edge_backlog_s, st.cloud_backlog_s, work.edge,
                                     (work.cloud_total + cloud_op_s) / sc.hardware.cloud_servers, edge_capacity,
                                     epoch_s * f["cloud_capacity"])
        new_backlog, mean_wait = cost.fluid_queue(queue[0], queue[1], queue[2], period_s=epoch_s)
        in_b = (wl.classify_in_bytes, wl.generate_in_bytes)
        out_b = (wl.classify_out_bytes, wl.generate_out_bytes)
        edge_leg, cloud_leg, _payload = self._legs(f, f["active"] == 0, in_b, out_b)
        lat_end = np.where(battery_empty, np.inf, self.t_classify["end"])
        # tier serving each request: classify by route, generate at the edge or cloud generator
        tier = np.empty((2, self.n_edges), dtype=np.intp)
        tier[0] = route
        np.add(sv.gen_cloud, 1, out=tier[1])
        lat = latency.request_latency(queue, new_backlog, mean_wait, edge_leg, cloud_leg, tier, lat_end,
                                      self._deadlines(), epoch_s, sc.reward.latency_clip)
        return lat, share, edge_capacity, new_backlog

    def _energy(self, now: Any, f: dict[str, Any], N: np.ndarray, route: np.ndarray, work: requests.Work,
                lat: latency.Latency, starts: ops.Starts, share: np.ndarray,
                edge_capacity: np.ndarray) -> tuple[energy.Energy, tuple[float, float]]:
        """Energy and carbon of the epoch, and the carbon intensities (g/kWh, edge and cloud site); drains
        the end devices' batteries."""
        st, sc = self.state, self.scenario
        wl = sc.workload
        en = energy.epoch_energy(self.node, sc.epoch_s, sc.hardware.op_share, work.edge, edge_capacity, share,
                                 f["edge_up"], starts.energy_edge, starts.energy_cloud, work.at_cloud_n,
                                 self.t_classify, self.t_generate, work.end_busy)
        radio = energy.Radio(self.access_j_up, self.access_j_down, self.backhaul_j_up, self.backhaul_j_down)
        ci = self._carbon_intensity(now)
        energy.add_traffic(en, N, route, work.at_cloud_n, lat.finite, (wl.classify_in_bytes, wl.generate_in_bytes),
                           (wl.classify_out_bytes, wl.generate_out_bytes), radio, *ci)
        st.battery_j = energy.drain_batteries(st.battery_j, en, sc.energy.end_recharge_w, sc.epoch_s,
                                              sc.energy.end_battery_j)
        return en, ci

    def _feedback(self, rng: np.random.Generator, counts: np.ndarray, N: np.ndarray, f: dict[str, Any],
                  route: np.ndarray, class_mix: np.ndarray, style_mix: np.ndarray) -> None:
        """Labelled feedback: a label_rate share of this epoch's classify requests returns a label (at most
        feedback_per_epoch per cell) to the edge; the estimated view scores the tiers on them."""
        wl = self.scenario.workload
        n_fb, fb_edges = feedback.labels(rng, counts, N[1], wl.label_rate, wl.feedback_per_epoch, f)
        batch_fb = getattr(self.workers, "add_feedback_batch", None)
        if batch_fb is not None:  # one draw for all edges, the same samples as edge by edge
            if fb_edges.size == self.n_edges:  # every edge: the (read-only) arrays themselves
                batch_fb(fb_edges, class_mix, style_mix, n_fb, rng)
            elif fb_edges.size:
                batch_fb(fb_edges, class_mix[fb_edges], style_mix[fb_edges], n_fb[fb_edges], rng)
        else:
            for e in fb_edges:
                self.workers.add_feedback(int(e), class_mix[e], style_mix[e], int(n_fb[e]), rng)
        if self.accuracy_view == "estimated":
            self._observe_labels(fb_edges, n_fb, route)

    def _observe_labels(self, fb_edges: np.ndarray, n_fb: np.ndarray, route: np.ndarray) -> None:
        """Score this epoch's returned labels (the newest ``n_fb[e]`` feedback samples of each edge of
        ``fb_edges``) and fold them into the decayed counts of the state (see :func:`feedback.observed`)."""
        st = self.state
        E = self.n_edges
        new_hits = np.zeros((E, 3))
        new_seen = np.zeros((E, 3))
        cap = self.scenario.workers.feedback_buffer
        n = np.minimum(n_fb[fb_edges], cap)  # label_hits scores at most the buffer
        batch = getattr(self.workers, "label_hits_batch", None)
        if batch is not None:
            new_hits[fb_edges] = batch(fb_edges, n)
        else:
            for e, k in zip(fb_edges.tolist(), n.tolist(), strict=True):
                new_hits[e] = self.workers.label_hits(e, k)
        new_seen[fb_edges] = n[:, None]
        seen = feedback.observed(fb_edges, route, E)
        st.label_hits, st.label_seen = operator_view.observe(st.label_hits, st.label_seen, new_hits, new_seen, seen)

    def _advance_ops(self, class_mix: np.ndarray, style_mix: np.ndarray) -> tuple[int, int]:
        """Advance the ops in flight by an epoch and commit those that complete (``(finished, refused)``:
        a commit with non-finite weights is refused and the old ones kept)."""
        st = self.state
        estimated = self.accuracy_view == "estimated"
        st.op_remaining_s, st.since_op, due = ops.advance(st.op_kind, st.op_remaining_s, st.since_op,
                                                          self.scenario.epoch_s)
        finished = refused = 0
        changed = None  # (E, 3) tiers whose model this epoch's commits changed (estimated view)
        for e in due.tolist():
            kind = int(st.op_kind[e])
            st.op_kind[e] = 0
            st.op_remaining_s[e] = 0.0
            if self.workers.commit_op(e) is False:  # non-finite weights: refused, old ones kept
                refused += 1
                continue
            # the operator knows what it adapted to: the edge's domain report
            report = self.workers.domain_report(e)[:2] if estimated and ops.adapts(kind) else None
            changed = ops.record_commit(st, e, kind, class_mix, style_mix, report, changed)
            finished += 1
        if changed is not None and estimated:
            st.label_hits, st.label_seen, st.label_prior = operator_view.model_changed(
                st.label_hits, st.label_seen, st.label_prior, changed
            )
        return finished, refused

    def _faults(self, epoch: int) -> dict[str, Any]:
        """Multipliers in force at ``epoch``: link bandwidth factors, edges up, cloud capacity
        (:func:`gaisnet_env.core.faults.multipliers`).

        Inside step() and reset() they are computed once per epoch (the scenario's fault lists do not
        change during a call); outside, every call reads the lists afresh (wrappers inject faults between
        steps). The returned dict and arrays are shared: do not modify them."""
        scope = self._faults_scope
        if scope is None:
            return core_faults.multipliers(self.scenario.faults, self.n_edges, epoch)
        f = scope.get(epoch)
        if f is None:
            f = scope[epoch] = core_faults.multipliers(self.scenario.faults, self.n_edges, epoch)
        return f

    def _mask_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Feasible routes (E, 3) and operations (E, 5) at the current epoch (:func:`actions.mask`).

        Read-only views of one (E, 8) array, memoised on all they depend on: the link and edge factors in
        force, the batteries and the ops in flight (a no-op step usually changes none of them)."""
        st = self.state
        assert st is not None
        f = self._faults(st.epoch)
        links = (f["access"].tobytes(), f["backhaul"].tobytes(), f["edge_up"].tobytes()) if f["active"] else None
        key = (links, st.battery_j.tobytes(), st.op_kind.tobytes())
        memo = self._mask_memo
        if memo is None or memo[0] != key:
            m = actions.mask(f, st.battery_j, st.op_kind)
            m.setflags(write=False)
            memo = self._mask_memo = (key, m, m[:, : len(TIERS)], m[:, len(TIERS) :])
        return memo[2], memo[3]

    def gym_action_mask(self) -> tuple[np.ndarray, ...]:
        """Gymnasium's MultiDiscrete mask (``info["action_mask"]``): per edge a route (3) then an op (5) int8 array.

        ``env.action_space.sample(mask=env.gym_action_mask())`` draws a feasible action. The arrays are
        read-only and shared while the mask does not change (see :mod:`gaisnet_env.masks`)."""
        self._mask_arrays()
        m = self._mask_memo[1]  # the memoised (E, 8) array _mask_arrays just checked
        memo = getattr(self, "_gym_mask_memo", None)
        if memo is not None and memo[0] is m:
            return memo[1]
        out = masks.gym_mask(m, self.action_space.nvec)
        self._gym_mask_memo = (m, out)
        return out
