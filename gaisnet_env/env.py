"""The GaisNet environment: schedule knowledge relay, fine-tuning and inference routing.

One step is one decision epoch (``scenario.epoch_s`` seconds). For every edge server the
agent picks a route for the requests of its cell (end device, edge or cloud) and may start
one knowledge operation (none, relay_down, finetune, relay_up, relay_to_end). The model
workers are real PyTorch models (``gaisnet_env.workers``); latency, energy and carbon come
from the documented cost model (``gaisnet_env.cost`` and ``gaisnet_env.profiles``).

Observation layout (all features in [0, 1]), ``E`` edges, row-major per edge then global:

==== ============================ ==================================================
idx  per-edge feature             normalisation
==== ============================ ==================================================
0    request rate                 rate / (2 x scenario mean rate), clipped
1-3  accuracy end / edge / cloud  estimated from returned labels (default); exact with
                                  ``accuracy_view="exact"`` (oracle, held-out samples)
4    edge queue backlog           1 - exp(-backlog_s / epoch_s)
5    access link bandwidth        current / nominal
6    backhaul link bandwidth      current / nominal
7-10 epochs since relay_down,     1 - exp(-epochs / 20)
     finetune, relay_up,
     relay_to_end completed
11   knowledge op in flight       0 or 1
12   op time remaining            1 - exp(-remaining_s / epoch_s)
13   drift indicator              distance of the domain to the one last adapted to: of
                                  the edge's domain report (histograms of its labelled
                                  feedback) by default; of the true domain with
                                  ``accuracy_view="exact"``
14   edge-site carbon intensity   g/kWh / 1000, clipped
15   edge server up               0 or 1
16   end-device battery level     share of capacity (1 without batteries)
17   SLA violation share          of the cell's requests, last epoch
18   latency / deadline           last epoch, / reward.latency_clip
==== ============================ ==================================================

Global features: cloud backlog (1 - exp(-backlog_s / epoch_s)), cloud capacity factor,
time of day (0.5 + 0.5 sin, 0.5 + 0.5 cos), cloud-site carbon intensity (/1000), and the
episode's elapsed share.
"""


from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from gaisnet_env import cost, operator_view
from gaisnet_env import snapshot as snapshot_checks
from gaisnet_env.core import (
    actions,
    energy,
    feedback,
    figures,
    info,
    latency,
    layout,
    observation,
    ops,
    requests,
    reward,
)
from gaisnet_env.core import faults as core_faults
from gaisnet_env.core.info import check_finite_info as _check_finite_info
from gaisnet_env.core.state import SimState, add_totals, fill_operator_view, initial_state
from gaisnet_env.readings import WORKER_METHODS, EnvReadings, check_workers
from gaisnet_env.scenario import Scenario, load_scenario
from gaisnet_env.topology import backhaul_hops, build_topology
from gaisnet_env.worker_config import OPERATIONS, STYLES, TIERS
from gaisnet_env.workers import WorkerSystem
from gaisnet_env.workload import Workload

# the layout's names, public here since the first release
EDGE_FEATURES, GLOBAL_FEATURES = layout.EDGE_FEATURES, layout.GLOBAL_FEATURES
ROUTE_END, ROUTE_EDGE, ROUTE_CLOUD = layout.ROUTE_END, layout.ROUTE_EDGE, layout.ROUTE_CLOUD
OP_NONE, OP_RELAY_DOWN, OP_FINETUNE = layout.OP_NONE, layout.OP_RELAY_DOWN, layout.OP_FINETUNE
OP_RELAY_UP, OP_RELAY_TO_END = layout.OP_RELAY_UP, layout.OP_RELAY_TO_END
#: Allowed values of ``GaisNetEnv(accuracy_view=...)``.
ACCURACY_VIEWS: tuple[str, ...] = ("estimated", "exact")
__all__ = [
    "ACCURACY_VIEWS", "EDGE_FEATURES", "GLOBAL_FEATURES", "OP_FINETUNE", "OP_NONE", "OP_RELAY_DOWN",
    "OP_RELAY_TO_END", "OP_RELAY_UP", "ROUTE_CLOUD", "ROUTE_EDGE", "ROUTE_END", "WORKER_METHODS",
    "GaisNetEnv", "SimState", "_check_finite_info", "check_workers", "make_env",
]


class GaisNetEnv(EnvReadings, gym.Env):
    """Cloud-edge-end generative-AI system with real model workers (see module docstring)."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def default_config() -> dict[str, Any]:
        """The default scenario (``metro``) as a plain dict; any subset can be passed as overrides."""
        return load_scenario("metro").to_dict()

    def __init__(
        self,
        scenario: str | Path | dict[str, Any] | Scenario = "metro",
        render_mode: str | None = None,
        cache_dir: str | None = None,
        masked_action: str = "fallback",
        accuracy_view: str = "estimated",
        torch_threads: int | None = 1,
        worker_system: Any = None,
        **overrides: Any,
    ) -> None:
        """Build the env.

        Args:
            scenario: built-in name (``tiny``, ``metro``, ``city``, ``drift-storm``, ``green``),
                a YAML path, a mapping or a :class:`Scenario`.
            render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
            cache_dir: where pre-trained cloud weights are cached (default
                ``$GAISNET_CACHE_DIR`` or ``~/.cache/gaisnet_env``).
            masked_action: what a masked (infeasible) choice does: ``"fallback"`` (the op is
                dropped and the route falls back to a feasible tier; counted in
                ``info["actions_masked"]``) or ``"raise"`` (ValueError).
            accuracy_view: what observation features 1-3 (tier accuracy) show: ``"estimated"`` (the
                default, the operator's view: decayed shares correct on the labelled feedback that came
                back, see :mod:`gaisnet_env.operator_view`; needs the workers' ``label_hits``) or
                ``"exact"`` (the oracle view: each tier's exact accuracy on the cell's true domain, from
                the held-out test pool; more than a real operator knows).
            torch_threads: torch intra-op threads for this process (``None`` leaves it).
            worker_system: model workers to use instead of the default :class:`WorkerSystem`: an
                object with the methods of :data:`WORKER_METHODS` (docs/workers.md), or a class /
                factory called as ``factory(n_edges, config, seed=..., cache_dir=...)``. A missing
                method raises TypeError naming it. (``workers=`` stays the scenario section override.)
                Strings: ``"real"`` (the default) or ``"fast"``: the calibrated fast path
                (:class:`~gaisnet_env.surrogate.SurrogateWorkerSystem`: operations predicted by a
                response model fitted on recorded real runs, not trained; for prototyping).
            overrides: scenario fields, nested (``reward={"w_lat": 1}``) or dotted.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: got {render_mode!r}; allowed: None, 'ansi', 'rgb_array'")
        if masked_action not in ("fallback", "raise"):
            raise ValueError(f"masked_action: got {masked_action!r}; allowed: 'fallback', 'raise'")
        if accuracy_view not in ACCURACY_VIEWS:
            raise ValueError(f"accuracy_view: got {accuracy_view!r}; allowed: 'estimated', 'exact'")
        if torch_threads is not None:
            if isinstance(torch_threads, bool) or not isinstance(torch_threads, (int, np.integer)) or torch_threads < 1:
                raise ValueError(f"torch_threads: got {torch_threads!r}; allowed: None or an integer >= 1")
            torch.set_num_threads(int(torch_threads))
        self.scenario: Scenario = load_scenario(scenario, **overrides)
        self.render_mode = render_mode
        self.masked_action = masked_action
        self.accuracy_view = accuracy_view
        sc = self.scenario
        self.n_edges = E = sc.topology.n_edges
        self.n_styles = len(STYLES)

        self.graph = build_topology(sc.topology, sc.seed)
        self.hops = np.asarray(backhaul_hops(self.graph), dtype=np.float64)
        workers = WorkerSystem if worker_system in (None, "real") else worker_system
        if workers == "fast":  # the calibrated fast path (gaisnet_env.surrogate)
            from gaisnet_env.surrogate import SurrogateWorkerSystem

            workers = SurrogateWorkerSystem
        elif isinstance(workers, str):
            raise ValueError(f"worker_system: got {workers!r}; allowed: 'real', 'fast', a workers object or a factory")
        if isinstance(workers, type) or (callable(workers) and not hasattr(workers, "start_op")):
            workers = workers(E, sc.workers, seed=sc.seed, cache_dir=cache_dir)
        check_workers(workers)
        self.workers = workers
        self._check_label_hits()
        self._setup_costs()

        self.action_space = spaces.MultiDiscrete(np.array([[len(TIERS), len(OPERATIONS)]] * E, dtype=np.int64).ravel())
        n_obs = E * len(EDGE_FEATURES) + len(GLOBAL_FEATURES)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(n_obs,), dtype=np.float32)
        self.state: SimState | None = None
        self._last_info: dict[str, Any] = {}
        self._last_actions = np.zeros((E, 2), dtype=np.int64)
        self._faults_scope: dict[int, dict[str, Any]] | None = None  # see step()
        self._clear_memos()

    def _setup_costs(self) -> None:
        """Per-tier compute, power and link figures, and the per-request FLOPs (counted or reference): the
        attributes named in :func:`gaisnet_env.core.figures.static_figures`."""
        w = self.workers
        flops = {t: w.inference_flops(t) for t in TIERS}
        gen_flops = {where: w.generation_flops(where) for where in ("edge", "cloud")}
        for name, value in figures.static_figures(self.scenario, self.hops, flops, gen_flops).items():
            setattr(self, name, value)
        self._legs_memo: tuple | None = None  # (key, legs) of the last step (see _legs)
        self._deadline_memo: tuple | None = None  # (deadline bytes, (2, E) deadlines)

    # ------------------------------------------------------------------------------------
    # gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._clear_memos()
        self._faults_scope = {}  # as in step()
        try:
            return self._reset()
        finally:
            self._faults_scope = None

    def _reset(self):
        sc = self.scenario
        rng = self.np_random
        check_workers(self.workers)  # also catches a subclass that swapped ``self.workers``
        self._check_label_hits()
        self.workload = Workload(sc, rng)
        self.workers.reset(int(rng.integers(2**31 - 1)))
        # workers' version counters are process-wide (they key the prediction cache); report them per episode
        self._version_base = self._versions()
        class_mix, style_mix = self._domains_at(0)
        self.state = initial_state(self.n_edges, self.n_styles, sc.energy.end_battery_j)
        self._domain = (class_mix, style_mix)
        self._last_info = self._base_info()
        return self._observation(), dict(self._last_info)

    def step(self, action: Any):
        if self.state is None:
            raise RuntimeError("step() called before reset()")
        # the fault multipliers of an epoch are computed once per step and shared by its pieces (masks,
        # observation); the scope ends with the step, so faults injected between steps always show
        self._faults_scope = {}
        try:
            return self._step(action)
        finally:
            self._faults_scope = None

    def _step(self, action: Any):
        """One epoch: faults, ops started, requests served (queues, latency, energy), reward, feedback,
        ops advanced and committed; the pieces are the pure functions of :mod:`gaisnet_env.core`."""
        st, sc = self.state, self.scenario
        act = actions.parse(action, self.n_edges)
        routes_ok, ops_ok = self._mask_arrays()
        acts, masked, rerouted = actions.apply_mask(act, routes_ok, ops_ok, self.masked_action == "raise")
        self._last_actions = acts
        route, op = acts[:, 0], acts[:, 1]
        t, rng = st.epoch, self.np_random
        now = self._figures(t)
        class_mix, style_mix = self._domains_at(t)
        self._domain = (class_mix, style_mix)
        f = self._faults(t)
        edge_down, ops_aborted, requests_dropped = self._faults_at_start(f)
        battery_empty = st.battery_j <= 0
        starts = self._start_new_ops(op, f)
        counts, n_req, N = requests.arrivals(rng, now.rates, sc.epoch_s, sc.workload.generate_share)
        acc_tier = self._tier_accuracy(class_mix, style_mix)  # (E, 3)
        sv = requests.serve(route, edge_down, f["access"], f["backhaul"], acc_tier,
                            self._generation_quality(class_mix, style_mix))
        work = requests.work(N, route, sv, battery_empty, self.t_classify, self.t_generate)
        lat, share, edge_capacity, new_backlog = self._latency(f, sv, work, route, battery_empty)
        served = sv.served if lat.all_finite else np.where(lat.finite, sv.served, 0.0)
        en, ci = self._energy(now, f, N, route, work, lat, starts, share, edge_capacity)
        m = reward.metrics(N, n_req, served, lat)
        r = reward.reward(sc.reward, m, en.total, en.carbon_g, self.energy_ref_j, self.carbon_ref_g)
        st.last_violation, st.last_latency_ratio = reward.cell_figures(m, n_req, sc.reward.latency_clip)
        st.edge_backlog_s = np.where(f["edge_up"] > 0, new_backlog[: self.n_edges], 0.0)
        st.cloud_backlog_s = float(new_backlog[self.n_edges])
        edge_reward = reward.edge_reward(sc.reward, m, n_req, served, en, *ci, st.last_violation,
                                         st.last_latency_ratio, self.energy_ref_j, self.carbon_ref_g)
        self._feedback(rng, counts, N, f, route, class_mix, style_mix)
        ops_finished, ops_refused = self._advance_ops(class_mix, style_mix)
        st.epoch += 1
        traffic = (starts.bytes_up + en.bytes_up, starts.bytes_down + en.bytes_down)
        add_totals(st.cum, en, traffic, m)
        events = {
            "ops_started": starts.started, "ops_finished": ops_finished, "ops_failed": starts.failed,
            "ops_refused": ops_refused, "ops_aborted": ops_aborted, "actions_masked": masked,
            "batteries_empty": int(battery_empty.sum()), "requests_failed": info.failed_count(N, lat),
            "requests_rerouted": requests.rerouted_count(n_req, N[1], rerouted, sv.gen_rerouted),
            "requests_dropped": requests_dropped,
        }
        out = self._base_info()
        out.update(info.step_info(m, N, en, r, traffic, events, f, edge_down, route, op, edge_reward, acc_tier, st))
        _check_finite_info(out, t)
        if not math.isfinite(r.total):
            raise FloatingPointError(f"reward is {r.total} at epoch {t}: a bug in the simulation")
        self._last_info = out
        truncated = st.epoch >= sc.horizon
        return self._observation(), float(r.total), False, truncated, out

    # ------------------------------------------------------------------------------------
    # pieces of a step (the env's side: workers, memos; the numbers are gaisnet_env.core's)

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

    def _start_new_ops(self, op: np.ndarray, f: dict[str, Any]) -> ops.Starts:
        """Start this epoch's ops (real training happens now) and book them into the state."""
        st = self.state
        starts = ops.no_starts(self.n_edges)
        if not op.any():
            return starts
        started = [(OPERATIONS[op[e]], int(e)) for e in np.flatnonzero(op != OP_NONE)]
        for (name, e), res in zip(started, self._start_ops(started), strict=True):
            if not res.ok:
                starts.failed += 1
                continue
            ops.record_start(st, starts, e, int(op[e]), self._op_cost(name, e, res, f))
        ops.close_round(st, starts.senders)
        return starts

    def _start_ops(self, started: list[tuple[str, int]]) -> list[Any]:
        """Start this epoch's ops: ``workers.start_ops`` (relay_ups as one federated round) where the
        workers have it, else ``start_op`` one by one."""
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
        for e in fb_edges:
            n = min(int(n_fb[e]), cap)  # label_hits scores at most the buffer
            new_hits[e] = self.workers.label_hits(int(e), n)
            new_seen[e] = n
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

    def action_masks(self) -> np.ndarray:
        """Flat boolean mask for sb3-contrib's MaskablePPO: per edge 3 route then 5 op entries."""
        if self.state is None:
            raise RuntimeError("action_masks() called before reset()")
        routes, ops_ok = self._mask_arrays()
        memo = self._mask_memo
        if memo is not None and memo[2] is routes and memo[3] is ops_ok:  # the memoised (E, 8) array, flat
            return memo[1].ravel().copy()
        return np.concatenate([routes, ops_ok], axis=1).ravel()

    def _observation(self) -> np.ndarray:
        """The observation at the current epoch (:func:`gaisnet_env.core.observation.observation`)."""
        st, sc = self.state, self.scenario
        assert st is not None
        t = st.epoch
        now = self._figures(t)
        class_mix, style_mix = self._domains_at(min(t, sc.horizon))
        self._domain = (class_mix, style_mix)
        f = self._faults(t)
        if self.accuracy_view == "exact":  # the oracle view
            acc = self._tier_accuracy(class_mix, style_mix)
            drift = self._drift(class_mix, style_mix)
        else:  # the operator's view: from the labels that came back and the edges' domain reports
            acc = operator_view.estimate(st.label_hits, st.label_seen, st.label_prior)
            rc, rs, has = operator_view.reports(self.workers, self.n_edges)  # an edge without feedback: no drift
            drift = np.where(has, operator_view.domain_drift(rc, rs, st.reported_class_mix, st.reported_style_mix), 0.0)
        ci_edge, ci_cloud = self._carbon_intensity(now)
        return observation.observation(st, now.rates, self.mean_rate, acc, drift, f, ci_edge, ci_cloud, now.hour,
                                       sc.energy.end_battery_j, sc.epoch_s, sc.horizon)

    def _base_info(self) -> dict[str, Any]:
        st = self.state
        assert st is not None
        cm, sm = self._domain
        tier_acc = self._tier_accuracy(cm, sm)
        memo = self._acc_mean_memo
        if memo is not None and memo[0] is tier_acc:  # a memoised (read-only) accuracy: its means too
            acc = memo[1]
        else:
            # per tier over edges, contiguous rows: the same pairwise sums as np.mean of a list
            acc = np.ascontiguousarray(tier_acc.T).mean(axis=1)
            if not tier_acc.flags.writeable:
                self._acc_mean_memo = (tier_acc, acc)
        return {
            "epoch": st.epoch,
            "time_s": st.epoch * self.scenario.epoch_s,
            "accuracy_end": float(acc[0]),
            "accuracy_edge": float(acc[1]),
            "accuracy_cloud": float(acc[2]),
            **{k: v - self._version_base[k] for k, v in self._versions().items()},
            "ops_in_flight": int(np.count_nonzero(st.op_kind > 0)),
            "episode_energy_j": st.cum["energy_j"],
            "episode_carbon_g": st.cum["carbon_g"],
            "episode_bytes_up": st.cum["bytes_up"],
            "episode_bytes_down": st.cum["bytes_down"],
            "action_mask": self.action_masks(),
        }

    # ------------------------------------------------------------------------------------
    # snapshot / restore, rendering

    def snapshot(self) -> dict[str, Any]:
        """The whole mutable state (simulation, RNG, workload, model weights), deep-copied."""
        if self.state is None:
            raise RuntimeError("snapshot() called before reset()")
        return {
            "state": self.state.copy(),
            "rng": copy.deepcopy(self.np_random.bit_generator.state),
            "workload": copy.deepcopy(self.workload),
            "workers": self.workers.state_dict(),
            "version_base": copy.deepcopy(self._version_base),
            "domain": copy.deepcopy(self._domain),
            "last_info": copy.deepcopy(self._last_info),
            "scenario": snapshot_checks.fingerprint(self.scenario),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Return to a state taken by :meth:`snapshot` of an env of the same scenario (this one or any
        other instance, in any process); later steps replay bit for bit. Raises ValueError naming what
        does not match for a snapshot of another scenario or a damaged one; nothing is changed then."""
        snapshot_checks.check(snap, self.scenario, SimState)
        self.state = snap["state"].copy()
        fill_operator_view(self.state)  # a snapshot from before the operator view or the reported drift
        self.np_random.bit_generator.state = copy.deepcopy(snap["rng"])
        self.workload = copy.deepcopy(snap["workload"])
        self.workers.load_state_dict(snap["workers"])
        self._version_base = copy.deepcopy(snap["version_base"])
        self._domain = copy.deepcopy(snap["domain"])
        self._last_info = copy.deepcopy(snap["last_info"])
        self._clear_memos()

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='ansi' or 'rgb_array'")
            return None
        from gaisnet_env import render

        if self.render_mode == "ansi":
            return render.ansi(self)
        return render.rgb_array(self)

    def close(self) -> None:
        from gaisnet_env import render

        render.close(self)



def make_env(scenario: str | Path | dict[str, Any] | Scenario = "metro", **kwargs: Any) -> GaisNetEnv:
    """Build a :class:`GaisNetEnv` directly (no registry, no wrappers)."""
    return GaisNetEnv(scenario, **kwargs)
