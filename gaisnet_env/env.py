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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from gaisnet_env import cost, masks, op_costs, operator_view, profiles
from gaisnet_env import snapshot as snapshot_checks
from gaisnet_env.scenario import Scenario, check_override_keys, load_scenario
from gaisnet_env.topology import backhaul_hops, build_topology
from gaisnet_env.worker_config import OPERATIONS, STYLES, TIERS
from gaisnet_env.workers import WorkerSystem
from gaisnet_env.workload import Workload

EDGE_FEATURES: tuple[str, ...] = (
    "request_rate",
    "accuracy_end",
    "accuracy_edge",
    "accuracy_cloud",
    "edge_backlog",
    "access_bandwidth",
    "backhaul_bandwidth",
    "since_relay_down",
    "since_finetune",
    "since_relay_up",
    "since_relay_to_end",
    "op_in_flight",
    "op_remaining",
    "drift",
    "edge_carbon_intensity",
    "edge_up",
    "battery",
    "sla_violation_share",
    "latency_ratio",
)
GLOBAL_FEATURES: tuple[str, ...] = (
    "cloud_backlog",
    "cloud_capacity",
    "time_sin",
    "time_cos",
    "cloud_carbon_intensity",
    "episode_progress",
)
ROUTE_END, ROUTE_EDGE, ROUTE_CLOUD = 0, 1, 2
#: Allowed values of ``GaisNetEnv(accuracy_view=...)``.
ACCURACY_VIEWS: tuple[str, ...] = ("estimated", "exact")
OP_NONE, OP_RELAY_DOWN, OP_FINETUNE, OP_RELAY_UP, OP_RELAY_TO_END = range(5)
#: Methods the env calls on its workers object (see docs/workers.md); checked at construction and reset.
WORKER_METHODS: tuple[str, ...] = (
    "reset",
    "accuracy",
    "generation_table",
    "version",
    "inference_flops",
    "generation_flops",
    "add_feedback",
    "start_op",
    "commit_op",
    "abort_op",
    "state_dict",
    "load_state_dict",
)
_SINCE_SCALE = 20.0  # epochs; the "time since op" features saturate over about this many epochs
_NEVER = 1e6  # epochs since an operation that never ran


@dataclass
class SimState:
    """Everything that changes during an episode except the workers' weights and the RNG."""

    epoch: int
    edge_backlog_s: np.ndarray  # (E,) seconds of queued work at each edge
    cloud_backlog_s: float  # seconds of queued work per cloud server
    op_kind: np.ndarray  # (E,) int, OPERATIONS index of the op in flight (0 = none)
    op_remaining_s: np.ndarray  # (E,) simulated seconds until the op in flight completes
    op_total_s: np.ndarray  # (E,) the op's whole duration, seconds
    op_cloud_share: np.ndarray  # (E,) share of the op's duration in which it computes on a cloud server
    since_op: np.ndarray  # (E, 4) epochs since each operation last completed
    adapted_class_mix: np.ndarray  # (E, 10) domain each edge's model was last adapted to
    adapted_style_mix: np.ndarray  # (E, S)
    battery_j: np.ndarray  # (E,) end-device battery energy per cell, J (inf without batteries)
    last_violation: np.ndarray  # (E,) share of SLA violations last epoch
    last_latency_ratio: np.ndarray  # (E,) mean latency / deadline last epoch
    cum: dict[str, float]  # episode totals
    # operator view of tier accuracy (gaisnet_env.operator_view), (E, 3) end/edge/cloud; None in older snapshots
    label_hits: np.ndarray | None = None  # decayed correct predictions on returned labels, samples
    label_seen: np.ndarray | None = None  # decayed returned labels scored, samples
    label_prior: np.ndarray | None = None  # accuracy carried over from the tier's previous model, share
    # operator view of drift: each edge's domain report when its model was last adapted, (E, 10) / (E, S)
    reported_class_mix: np.ndarray | None = None
    reported_style_mix: np.ndarray | None = None

    def copy(self) -> SimState:
        return SimState(**{f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)})


class GaisNetEnv(gym.Env):
    """Cloud-edge-end generative-AI system with real model workers (see module docstring)."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    @staticmethod
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
            overrides: scenario fields, nested (``reward={"w_lat": 1}``) or dotted. A keyword that is neither
                an argument above nor a top-level scenario field raises
                :class:`~gaisnet_env.scenario.ScenarioArgumentError` (a TypeError and a ScenarioError).
        """
        check_override_keys(overrides, "GaisNetEnv", _ENV_ARGUMENTS)
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
        self._rows = np.arange(E)
        self._action_hi = np.array([len(TIERS), len(OPERATIONS)], dtype=np.uint64)  # per column, exclusive
        self._faults_scope: dict[int, dict[str, Any]] | None = None  # see step()
        self._clear_memos()

    def _clear_memos(self) -> None:
        """Drop the memos of values derived from the workload and the workers (on reset and restore; each
        memo also checks its own key, see where it is used)."""
        self._figures_memo: dict[int, _EpochFigures] = {}  # epoch -> workload figures (_figures)
        self._figures_of: Workload | None = None  # the workload they come from
        self._acc_memo: tuple | None = None  # (workers, weights key, class_mix, style_mix, accuracy)
        self._acc_mean_memo: tuple | None = None  # (accuracy, its per-tier means over edges)
        self._gen_memo: tuple | None = None  # (class_mix, style_mix, generator weight tokens, quality)
        self._drift_memo: tuple | None = None  # (class_mix, style_mix, adapted mixes' bytes, drift)
        self._mask_memo: tuple | None = None  # (key, (E, 8) mask, its routes and ops views); see _mask_arrays
        self._gym_mask_memo: tuple | None = None  # ((E, 8) mask of _mask_memo, its gym_action_mask tuple)
        self._stock_of: tuple | None = None  # (workers, whether _stock_workers holds for them)

    # ------------------------------------------------------------------------------------
    # static cost figures

    def _setup_costs(self) -> None:
        """Per-tier compute, power and link figures, and the per-request FLOPs (counted or reference)."""
        sc, w = self.scenario, self.workers
        E = self.n_edges
        self.node = {t: profiles.NODES[getattr(sc.hardware, t)] for t in TIERS}
        access = sc.topology.edge_access_links or [sc.topology.access_link] * E
        acc_links = [profiles.LINKS[name] for name in access]
        bh = profiles.LINKS[sc.topology.backhaul_link]
        self.access_up_bps = np.array([lk.uplink_bps for lk in acc_links])
        self.access_down_bps = np.array([lk.downlink_bps for lk in acc_links])
        self.access_rtt_s = np.array([lk.rtt_s for lk in acc_links])
        self.access_j_up = np.array([lk.up_j_per_bit for lk in acc_links])  # J/bit per direction
        self.access_j_down = np.array([lk.down_j_per_bit for lk in acc_links])
        self.backhaul_up_bps = np.full(E, bh.uplink_bps)
        self.backhaul_down_bps = np.full(E, bh.downlink_bps)
        self.backhaul_rtt_s = bh.rtt_s * self.hops
        self.backhaul_j_up = bh.up_j_per_bit * self.hops
        self.backhaul_j_down = bh.down_j_per_bit * self.hops

        refs = sc.reference_models
        self.classify_flops = {}
        for t in TIERS:  # ops are charged part by part (gaisnet_env.op_costs)
            ref = getattr(refs, t)
            real = w.inference_flops(t)
            self.classify_flops[t] = ref.inference_flops if ref and ref.inference_flops > 0 else real
        self.generate_flops = {}
        for where in ("edge", "cloud"):
            ref = getattr(refs, where)
            real = w.generation_flops(where)
            self.generate_flops[where] = ref.generate_flops if ref and ref.generate_flops > 0 else real
        # seconds of compute per request on one node of each tier
        self.t_classify = {t: self.classify_flops[t] / self.node[t].effective_flops for t in TIERS}
        self.t_generate = {t: self.generate_flops[t] / self.node[t].effective_flops for t in ("edge", "cloud")}

        wl = sc.workload
        self.deadline = np.array([wl.classify_deadline_s, wl.generate_deadline_s])
        # reward normalisers
        edge_n = self.node["edge"]
        self.energy_ref_j = sc.reward.energy_reference_j or E * edge_n.active_w * sc.epoch_s
        mean_ci = profiles.GRID[sc.energy.edge_region].mean_g_per_kwh
        self.carbon_ref_g = sc.reward.carbon_reference_g or cost.carbon_g(self.energy_ref_j, mean_ci)
        self.mean_rate = max(wl.rate_per_s, 1e-9)
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
        E, S = self.n_edges, self.n_styles
        rng = self.np_random
        check_workers(self.workers)  # also catches a subclass that swapped ``self.workers``
        self._check_label_hits()
        self.workload = Workload(sc, rng)
        self.workers.reset(int(rng.integers(2**31 - 1)))
        # workers' version counters are process-wide (they key the prediction cache); report them per episode
        self._version_base = self._versions()
        class_mix, style_mix = self._domains_at(0)
        battery = sc.energy.end_battery_j
        self.state = SimState(
            epoch=0,
            edge_backlog_s=np.zeros(E),
            cloud_backlog_s=0.0,
            op_kind=np.zeros(E, dtype=np.int64),
            op_remaining_s=np.zeros(E),
            op_total_s=np.zeros(E),
            op_cloud_share=np.zeros(E),
            since_op=np.full((E, 4), _NEVER),
            adapted_class_mix=np.full((E, 10), 0.1),
            adapted_style_mix=np.eye(S)[np.zeros(E, dtype=np.int64)],
            battery_j=np.full(E, float(battery) if battery else np.inf),
            last_violation=np.zeros(E),
            last_latency_ratio=np.zeros(E),
            cum={k: 0.0 for k in ("energy_j", "carbon_g", "bytes_up", "bytes_down", "requests", "violations")},
        )
        st = self.state
        st.label_hits, st.label_seen, st.label_prior = operator_view.initial(E, 3)
        st.reported_class_mix, st.reported_style_mix = st.adapted_class_mix.copy(), st.adapted_style_mix.copy()
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
        st, sc = self.state, self.scenario
        E = self.n_edges
        rows = self._rows
        act = self._check_action(action)
        mask = self._mask_arrays()
        route, op = act[:, 0], act[:, 1]
        masked = 0
        route_ok = mask[0][rows, route]
        op_ok = mask[1][rows, op]
        rerouted = None  # routes the fallback changed (their requests are rerouted); None: none changed
        if route_ok.all() and op_ok.all():
            self._last_actions = act  # a fresh array (see _check_action)
        else:
            if self.masked_action == "raise":
                bad = int(np.flatnonzero(~(route_ok & op_ok))[0])
                raise ValueError(
                    f"action[{bad}] = (route {TIERS[route[bad]]}, op {OPERATIONS[op[bad]]}) is masked "
                    f"(route feasible: {mask[0][bad].tolist()}, op feasible: {mask[1][bad].tolist()})"
                )
            masked = int((~route_ok).sum() + (~op_ok).sum())
            route = np.where(route_ok, route, self._fallback_route(route, mask[0]))
            op = np.where(op_ok, op, OP_NONE)
            self._last_actions = np.stack([route, op], axis=1)
            rerouted = route != act[:, 0]

        epoch_s = sc.epoch_s
        t = st.epoch
        rng = self.np_random
        now = self._figures(t)
        class_mix, style_mix = self._domains_at(t)
        self._domain = (class_mix, style_mix)
        faults = self._faults(t)
        f_access, f_backhaul, f_edge_up = faults["access"], faults["backhaul"], faults["edge_up"]
        no_fault = faults["active"] == 0  # every multiplier is 1: nothing down or degraded

        # -- faults at the start of the epoch -------------------------------------------------
        # an op in flight is lost when its edge is down or the link it transfers over is out
        # (its cost stays charged); a down edge's queue is dropped (those requests fail)
        kind = st.op_kind
        if no_fault:
            edge_down = None
            ops_aborted = 0
            requests_dropped = 0.0
        else:
            edge_down = f_edge_up == 0
            link_out = np.where(kind == OP_RELAY_TO_END, f_access == 0, f_backhaul == 0)
            lost = (kind > 0) & (edge_down | (link_out & (kind != OP_FINETUNE)))
            ops_aborted = int(lost.sum())
            for e in np.flatnonzero(lost):
                self.workers.abort_op(int(e))
                st.op_kind[e] = 0
                st.op_remaining_s[e] = 0.0
            g = sc.workload.generate_share
            work_per_edge_request = (1.0 - g) * self.t_classify["edge"] + g * self.t_generate["edge"]
            dropped_s = np.where(edge_down, st.edge_backlog_s, 0.0)
            requests_dropped = float(dropped_s.sum() / max(work_per_edge_request, 1e-12))
            st.edge_backlog_s = np.where(edge_down, 0.0, st.edge_backlog_s)
        battery_empty = st.battery_j <= 0

        # -- knowledge operations: start the new ones (real training happens now) ----------
        op_energy_edge = np.zeros(E)  # J, per edge that started an op (radio included)
        op_energy_cloud = np.zeros(E)  # J, cloud energy of that edge's op
        ops_started = ops_failed = 0
        bytes_up = bytes_down = 0.0
        if op.any():
            started = [(OPERATIONS[op[e]], int(e)) for e in np.flatnonzero(op != OP_NONE)]
            senders = []
            for (name, e), res in zip(started, self._start_ops(started), strict=True):
                if not res.ok:
                    ops_failed += 1
                    continue
                ops_started += 1
                if name == "relay_up":
                    senders.append(e)
                dur, energy_e, energy_c, up, down, cloud_s = self._op_cost(name, e, res, faults)
                st.op_kind[e] = op[e]
                st.op_remaining_s[e] = st.op_total_s[e] = dur
                st.op_cloud_share[e] = cloud_s / dur if dur > 0 else 0.0
                op_energy_edge[e] = energy_e
                op_energy_cloud[e] = energy_c
                bytes_up += up
                bytes_down += down
            # a federated round of relay_ups completes when its slowest upload and the distillation are done
            if len(senders) > 1:
                st.op_remaining_s[senders] = st.op_total_s[senders] = st.op_total_s[senders].max()

        # -- requests ------------------------------------------------------------------------
        # per-edge quantities of the two request kinds are (2, E) arrays: row 0 classify, row 1 generate
        # (row-major, so .ravel() is the concatenation classify then generate)
        counts = rng.poisson(now.rates * epoch_s)
        n_req = counts.astype(np.float64)
        N = np.empty((2, E))
        N[1] = rng.binomial(counts, sc.workload.generate_share)
        np.subtract(n_req, N[1], out=N[0])
        n_cls, n_gen = N[0], N[1]

        acc_tier = self._tier_accuracy(class_mix, style_mix)  # (E, 3)
        gen_quality = self._generation_quality(class_mix, style_mix)  # (E, 2): edge, cloud generators
        at_cloud = route == ROUTE_CLOUD
        # end-routed generate requests go to the edge generator; when that edge is down the base
        # station forwards them to the cloud if the access link and backhaul are up
        if edge_down is None:
            gen_rerouted = None
            gen_cloud = at_cloud
        else:
            gen_rerouted = (route == ROUTE_END) & edge_down & (f_access > 0) & (f_backhaul > 0)
            gen_cloud = at_cloud | gen_rerouted
        # served accuracy per edge for classify requests and quality for generate requests
        served = np.empty((2, E))
        served[0] = acc_tier[rows, route]
        served[1] = gen_quality[rows, gen_cloud.astype(np.intp)]

        # compute work per tier (seconds on one node)
        wl = sc.workload
        tc_end, tc_edge, tc_cloud = self.t_classify["end"], self.t_classify["edge"], self.t_classify["cloud"]
        tg_edge, tg_cloud = self.t_generate["edge"], self.t_generate["cloud"]
        edge_work = n_cls * (route == ROUTE_EDGE) * tc_edge + n_gen * ~gen_cloud * tg_edge
        on_backhaul = np.empty((2, E), dtype=bool)  # requests that cross the backhaul (served at the cloud)
        on_backhaul[0] = at_cloud
        on_backhaul[1] = gen_cloud
        at_cloud_n = N * on_backhaul  # (2, E) requests served at the cloud
        cloud_work_total = at_cloud_n[0].sum() * tc_cloud + at_cloud_n[1].sum() * tg_cloud
        # devices with an empty battery cannot classify locally (forced end routes fail)
        # summed over the cell's devices
        end_busy = n_cls * ((route == ROUTE_END) & ~battery_empty) * tc_end

        # queues (ops in flight take op_share of the edge); the edge queues and the cloud's (per
        # server) are one fluid_queue call over E + 1 servers, the cloud last
        if st.op_kind.any():
            share = np.where(st.op_kind > 0, np.minimum(st.op_remaining_s, epoch_s) / epoch_s, 0.0)
        else:
            share = np.zeros(E)
        edge_capacity = epoch_s * (1.0 - sc.hardware.op_share * share) * f_edge_up
        cloud_capacity = epoch_s * faults["cloud_capacity"]
        # ops' cloud compute takes cloud server time in their part of this epoch: it joins the cloud queue's
        # work (per server), so requests wait behind it
        cloud_op_s = float((share * st.op_cloud_share).sum()) * epoch_s if st.op_kind.any() else 0.0
        queue = np.empty((3, E + 1))  # backlog at the start, work, capacity
        queue[0, :E] = st.edge_backlog_s
        queue[0, E] = st.cloud_backlog_s
        queue[1, :E] = edge_work
        queue[1, E] = (cloud_work_total + cloud_op_s) / sc.hardware.cloud_servers
        queue[2, :E] = edge_capacity
        queue[2, E] = cloud_capacity
        new_backlog, mean_wait = cost.fluid_queue(queue[0], queue[1], queue[2], period_s=epoch_s)
        new_edge_backlog, edge_wait = new_backlog[:E], mean_wait[:E]
        new_cloud_backlog, cloud_wait = float(new_backlog[E]), float(mean_wait[E])

        # latency per edge for its routed requests: (2, E)
        in_b = (wl.classify_in_bytes, wl.generate_in_bytes)
        out_b = (wl.classify_out_bytes, wl.generate_out_bytes)
        edge_leg, cloud_leg, _payload = self._legs(faults, no_fault, in_b, out_b)
        # waits at the start and end of the epoch: backlog / drain rate (linear in between)
        backlogs = np.empty((2, E + 1))
        backlogs[0] = queue[0]
        backlogs[1] = new_backlog
        waits = _drain_wait(backlogs, queue[2] / epoch_s)
        lat_end = np.where(battery_empty, np.inf, tc_end)
        # tier serving each request: classify by route, generate at the edge or cloud generator
        tier = np.empty((2, E), dtype=np.intp)
        tier[0] = route
        np.add(gen_cloud, 1, out=tier[1])
        # np.choose: the values of np.select, cheaper
        lat0 = np.choose(tier, (lat_end, edge_leg + waits[0, :E], cloud_leg + waits[0, E]))
        lat1 = np.choose(tier, (lat_end, edge_leg + waits[1, :E], cloud_leg + waits[1, E]))
        lat_mean = np.choose(tier, (lat_end, edge_leg + edge_wait, cloud_leg + cloud_wait))
        # requests that cannot be served at all (no feasible path): failed, counted as violations
        finite = np.isfinite(lat_mean)
        all_finite = finite.all()
        deadline = self._deadlines()
        viols = np.where(finite, cost.violation_share(lat0, lat1, deadline), 1.0)
        clip = sc.reward.latency_clip
        # latencies are >= 0: fmin gives nan_to_num(x, nan=clip, posinf=clip) capped at clip
        ratios = np.fmin(lat_mean / deadline, clip)
        if not all_finite:
            served = np.where(finite, served, 0.0)
        acc_cls = served[0]

        # -- energy (J) and carbon (g) -------------------------------------------------------
        node_e, node_c, node_u = self.node["edge"], self.node["cloud"], self.node["end"]
        edge_busy = np.minimum(edge_work, edge_capacity) + sc.hardware.op_share * share * epoch_s
        energy_edge_cell = (
            cost.compute_energy_j(node_e.idle_w, node_e.active_w, edge_busy, epoch_s, node_e.pue) * f_edge_up
            + op_energy_edge
        )
        energy_edge = float(energy_edge_cell.sum())
        # the cloud is shared: this system is charged the active power of the time it uses, times PUE
        cloud_work_cell = at_cloud_n[0] * tc_cloud + at_cloud_n[1] * tg_cloud
        energy_cloud_cell = node_c.active_w * cloud_work_cell * node_c.pue + op_energy_cloud
        energy_cloud = float(energy_cloud_cell.sum())
        end_energy_cell = (node_u.active_w - node_u.idle_w) * end_busy
        on_access = np.empty((2, E), dtype=bool)  # requests that cross the access link
        on_access[0] = route != ROUTE_END
        on_access[1] = True
        # request bytes per direction (E,): requests go up, results come down
        n_access, n_backhaul = N * on_access * finite, at_cloud_n * finite
        in_access, out_access = n_access.T @ in_b, n_access.T @ out_b
        in_backhaul, out_backhaul = n_backhaul.T @ in_b, n_backhaul.T @ out_b
        radio_access = (cost.radio_energy_j(in_access, self.access_j_up)
                        + cost.radio_energy_j(out_access, self.access_j_down))
        radio_backhaul = (cost.radio_energy_j(in_backhaul, self.backhaul_j_up)
                          + cost.radio_energy_j(out_backhaul, self.backhaul_j_down))
        energy_radio = float(radio_access.sum() + radio_backhaul.sum())
        energy_end = float(end_energy_cell.sum())
        ci_edge, ci_cloud = self._carbon_intensity(now)
        energy_total = energy_edge + energy_cloud + energy_end + energy_radio
        carbon = cost.carbon_g(energy_edge + energy_end + energy_radio, ci_edge) + cost.carbon_g(energy_cloud, ci_cloud)
        bytes_up += float(in_access.sum() + in_backhaul.sum())
        bytes_down += float(out_access.sum() + out_backhaul.sum())

        # batteries of end devices: compute at the end and the radio's uplink
        if np.isfinite(st.battery_j).any():
            drain = end_energy_cell + radio_access
            st.battery_j = np.clip(
                st.battery_j - drain + sc.energy.end_recharge_w * epoch_s, 0.0, sc.energy.end_battery_j
            )

        # -- aggregate metrics and reward ----------------------------------------------------
        n_total = float(n_req.sum())
        weighted_quality = N * served  # (2, E)
        weighted_ratio = N * ratios
        weighted_viol = N * viols
        if n_total > 0:
            # shares of request-weighted sums: clip the last-bit rounding (1.0000000000000002)
            accuracy = min(float(weighted_quality.ravel().sum() / n_total), 1.0)
            lat_ratio = float(weighted_ratio.ravel().sum() / n_total)
            violations = float(weighted_viol.ravel().sum())
            viol_share = min(violations / n_total, 1.0)
            lat_means = np.where(finite, lat_mean, 0).ravel()
            fw = N.ravel() * finite.ravel()
            fw_sum = fw.sum()
            lat_mean_s = float((fw * lat_means).sum() / max(fw_sum, 1e-12))
            lat_p50, lat_p95 = _weighted_quantiles(lat_means, fw, (0.5, 0.95)) if fw_sum > 0 else (0.0, 0.0)
        else:
            accuracy = float(acc_cls.mean())
            lat_ratio = viol_share = violations = 0.0
            lat_mean_s = lat_p50 = lat_p95 = 0.0
        rw = sc.reward
        r_acc = rw.w_acc * accuracy
        r_lat = rw.w_lat * lat_ratio
        r_energy = rw.w_energy * energy_total / self.energy_ref_j
        r_sla = rw.w_sla * viol_share
        r_carbon = rw.w_carbon * carbon / self.carbon_ref_g
        reward = r_acc - r_lat - r_energy - r_sla - r_carbon

        # per-edge bookkeeping for the next observation
        cell_n = np.maximum(n_req, 1e-12)
        has_req = n_req > 0
        st.last_violation = np.where(has_req, (weighted_viol[0] + weighted_viol[1]) / cell_n, 0.0)
        st.last_latency_ratio = np.where(has_req, (weighted_ratio[0] + weighted_ratio[1]) / cell_n, 0.0) / clip
        st.edge_backlog_s = np.where(f_edge_up > 0, new_edge_backlog, 0.0)
        st.cloud_backlog_s = new_cloud_backlog
        # per-edge reward (for the multi-agent view): the same terms, restricted to the cell
        cell_acc = np.where(has_req, (weighted_quality[0] + weighted_quality[1]) / cell_n, acc_cls)
        cell_energy = energy_edge_cell + energy_cloud_cell + end_energy_cell + radio_access + radio_backhaul
        cell_carbon = cost.carbon_g(energy_edge_cell + end_energy_cell + radio_access + radio_backhaul, ci_edge)
        cell_carbon = cell_carbon + cost.carbon_g(energy_cloud_cell, ci_cloud)
        edge_reward = (
            rw.w_acc * cell_acc
            - rw.w_lat * st.last_latency_ratio * clip
            - rw.w_energy * cell_energy / (self.energy_ref_j / E)
            - rw.w_sla * st.last_violation
            - rw.w_carbon * cell_carbon / (self.carbon_ref_g / E)
        )

        # labelled feedback: a label_rate share of this epoch's classify requests returns a label (at most
        # feedback_per_epoch per cell) to the edge
        n_lab = rng.binomial(counts - N[1].astype(np.int64), sc.workload.label_rate)
        n_fb = np.minimum(n_lab, sc.workload.feedback_per_epoch).astype(np.int64)
        fb_edges = np.flatnonzero(n_fb > 0) if no_fault else np.flatnonzero((n_fb > 0) & (f_edge_up > 0))
        batch_fb = getattr(self.workers, "add_feedback_batch", None)
        if batch_fb is not None:  # one draw for all edges, the same samples as edge by edge
            if fb_edges.size == E:  # every edge: the (read-only) arrays themselves
                batch_fb(fb_edges, class_mix, style_mix, n_fb, rng)
            elif fb_edges.size:
                batch_fb(fb_edges, class_mix[fb_edges], style_mix[fb_edges], n_fb[fb_edges], rng)
        else:
            for e in fb_edges:
                self.workers.add_feedback(int(e), class_mix[e], style_mix[e], int(n_fb[e]), rng)
        if self.accuracy_view == "estimated":
            self._observe_labels(fb_edges, n_fb, route)

        # -- advance operations in flight; commit those that complete this epoch -------------
        ops_finished = ops_refused = 0
        in_flight = st.op_kind > 0
        changed = None  # (E, 3) tiers whose model this epoch's commits changed (estimated view)
        st.since_op += 1.0
        if in_flight.any():
            st.op_remaining_s = np.where(in_flight, st.op_remaining_s - epoch_s, 0.0)
            for e in np.flatnonzero(in_flight & (st.op_remaining_s <= 0)):
                kind = int(st.op_kind[e])
                st.op_kind[e] = 0
                st.op_remaining_s[e] = 0.0
                if self.workers.commit_op(int(e)) is False:  # non-finite weights: refused, old ones kept
                    ops_refused += 1
                    continue
                st.since_op[e, kind - 1] = 0.0
                changed = operator_view.tiers_changed(changed, E, int(e), OPERATIONS[kind])
                if kind in (OP_RELAY_DOWN, OP_FINETUNE):
                    st.adapted_class_mix[e] = class_mix[e]
                    st.adapted_style_mix[e] = style_mix[e]
                    if self.accuracy_view == "estimated":  # the operator knows what it adapted to: the report
                        ch, sh, _ = self.workers.domain_report(int(e))
                        st.reported_class_mix[e], st.reported_style_mix[e] = ch, sh
                ops_finished += 1
        else:
            st.op_remaining_s = np.zeros(E)
        if changed is not None and self.accuracy_view == "estimated":
            st.label_hits, st.label_seen, st.label_prior = operator_view.model_changed(
                st.label_hits, st.label_seen, st.label_prior, changed
            )

        st.epoch += 1
        c = st.cum
        c["energy_j"] += energy_total
        c["carbon_g"] += carbon
        c["bytes_up"] += bytes_up
        c["bytes_down"] += bytes_down
        c["requests"] += n_total
        c["violations"] += violations

        if rerouted is None and gen_rerouted is None:
            requests_rerouted = 0.0
        else:
            no = np.zeros(E, dtype=bool)
            rerouted = no if rerouted is None else rerouted
            gen_rerouted = no if gen_rerouted is None else gen_rerouted
            requests_rerouted = float(n_req[rerouted].sum() + n_gen[gen_rerouted & ~rerouted].sum())
        if all_finite:
            requests_failed = 0.0
        else:
            failed = N * ~finite
            requests_failed = float(failed[0].sum() + failed[1].sum())
        n_cls_sum, n_gen_sum = n_cls.sum(), n_gen.sum()
        info = self._base_info()
        info.update(
            accuracy=accuracy,
            accuracy_classify=min(float(weighted_quality[0].sum() / n_cls_sum), 1.0) if n_cls_sum else 0.0,
            quality_generate=min(float(weighted_quality[1].sum() / n_gen_sum), 1.0) if n_gen_sum else 0.0,
            latency_mean_s=lat_mean_s,
            latency_p50_s=lat_p50,
            latency_p95_s=lat_p95,
            latency_ratio=lat_ratio,
            sla_violations=violations,
            sla_violation_share=viol_share,
            requests=n_total,
            requests_classify=float(n_cls_sum),
            requests_generate=float(n_gen_sum),
            requests_failed=requests_failed,
            energy_j=energy_total,
            energy_end_j=energy_end,
            energy_edge_j=float(energy_edge),
            energy_cloud_j=float(energy_cloud),
            energy_radio_j=energy_radio,
            carbon_g=float(carbon),
            bytes_up=bytes_up,
            bytes_down=bytes_down,
            ops_started=ops_started,
            ops_finished=ops_finished,
            ops_failed=ops_failed,
            ops_refused=ops_refused,
            ops_aborted=ops_aborted,
            actions_masked=masked,
            faults_active=faults["active"],
            edges_down=0 if edge_down is None else int(edge_down.sum()),
            links_degraded=0 if no_fault else int((f_access < 1).sum() + (f_backhaul < 1).sum()),
            cloud_capacity=float(faults["cloud_capacity"]),
            batteries_empty=int(battery_empty.sum()),
            requests_rerouted=requests_rerouted,
            requests_dropped=requests_dropped,
            route_counts=np.bincount(route, minlength=3).astype(np.int64),
            op_counts=np.bincount(op, minlength=5).astype(np.int64),
            reward_accuracy=r_acc,
            reward_latency=-r_lat,
            reward_energy=-r_energy,
            reward_sla=-r_sla,
            reward_carbon=-r_carbon,
            edge_reward=edge_reward,
            edge_accuracy=acc_tier[:, ROUTE_EDGE].copy(),
            edge_backlog_s=st.edge_backlog_s.copy(),
            cloud_backlog_s=st.cloud_backlog_s,
        )
        _check_finite_info(info, t)
        if not math.isfinite(reward):
            raise FloatingPointError(f"reward is {reward} at epoch {t}: a bug in the simulation")
        self._last_info = info
        truncated = st.epoch >= sc.horizon
        obs = self._observation()
        return obs, float(reward), False, truncated, info

    def _deadlines(self) -> np.ndarray:
        """The deadlines (classify, generate) as a (2, E) array, memoised on their values."""
        key = self.deadline.tobytes()
        memo = self._deadline_memo
        if memo is None or memo[0] != key:
            rows = np.repeat(self.deadline.astype(np.float64)[:, None], self.n_edges, axis=1)
            memo = self._deadline_memo = (key, _read_only(rows))
        return memo[1]

    def _legs(self, faults: dict[str, Any], no_fault: bool, in_b: tuple, out_b: tuple) -> tuple:
        """Network plus compute latency of a request at the edge and at the cloud, (2, E) each (row 0
        classify, row 1 generate), and the request + response bytes (2, 1). They change only with the link
        factors (faults), the payloads and the compute times: memoised on those."""
        comp = (self.t_classify["edge"], self.t_generate["edge"], self.t_classify["cloud"], self.t_generate["cloud"])
        # no fault in force: the link factors are all 1
        links = None if no_fault else (faults["access"].tobytes(), faults["backhaul"].tobytes())
        key = (links, in_b, out_b, comp)
        memo = self._legs_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        in_b_arr = np.array(in_b, dtype=np.float64)
        out_b_arr = np.array(out_b, dtype=np.float64)
        up_bw = self.access_up_bps * faults["access"]
        down_bw = self.access_down_bps * faults["access"]
        bh_up = self.backhaul_up_bps * faults["backhaul"]
        bh_down = self.backhaul_down_bps * faults["backhaul"]
        with np.errstate(divide="ignore"):
            access_leg = cost.transfer_time_s(in_b_arr[None, :], up_bw[:, None], self.access_rtt_s[:, None]) + (
                cost.transfer_time_s(out_b_arr[None, :], down_bw[:, None], self.access_rtt_s[:, None])
            )
            backhaul_leg = cost.transfer_time_s(in_b_arr[None, :], bh_up[:, None], self.backhaul_rtt_s[:, None]) + (
                cost.transfer_time_s(out_b_arr[None, :], bh_down[:, None], self.backhaul_rtt_s[:, None])
            )
        comp_edge = np.array(comp[:2])
        comp_cloud = np.array(comp[2:])
        edge_leg = np.ascontiguousarray((access_leg + comp_edge[None, :]).T)
        cloud_leg = np.ascontiguousarray((access_leg + backhaul_leg + comp_cloud[None, :]).T)
        payload = (in_b_arr + out_b_arr)[:, None]
        out = (edge_leg, cloud_leg, payload)
        for a in out:
            a.setflags(write=False)
        self._legs_memo = (key, out)
        return out

    # ------------------------------------------------------------------------------------
    # pieces of a step

    def _check_action(self, action: Any) -> np.ndarray:
        """Return the action as an (E, 2) int array or raise naming the offending index."""
        E = self.n_edges
        try:
            arr = np.asarray(action)
        except Exception as e:  # pragma: no cover - numpy accepts nearly anything
            raise ValueError(f"action: cannot convert {type(action).__name__} to an array: {e}") from None
        if arr.dtype.kind not in "iub":
            # integral floats only (and small enough to cast: 1e300 is not an index); compared in float64,
            # so that float16 does not overflow on the bound
            wide = arr.astype(np.float64) if arr.dtype.kind == "f" else None
            if wide is not None and np.all(np.abs(wide) < 2**31) and np.all(wide == np.round(wide)):
                arr = wide.astype(np.int64)
            else:
                raise ValueError(f"action: expected integers, got dtype {arr.dtype} (values {arr.ravel()[:8]})")
        if arr.shape not in ((2 * E,), (E, 2)):
            raise ValueError(f"action: expected shape ({2 * E},) or ({E}, 2) for {E} edges, got {arr.shape}")
        given = arr.reshape(E, 2)
        arr = given.astype(np.int64)
        if (arr.view(np.uint64) < self._action_hi).all() and (given.dtype.kind != "u" or given.max() < 2**63):
            return arr  # (negative values wrap to huge unsigned ones; uint64 beyond int64 to negative ones)
        for col, (name, n) in enumerate((("route", len(TIERS)), ("operation", len(OPERATIONS)))):
            bad = np.flatnonzero((given[:, col] < 0) | (given[:, col] >= n))
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"action[{2 * i + col}] (edge {i} {name}) = {given[i, col]} is out of range; allowed 0..{n - 1}"
                )
        return arr

    def _faults(self, epoch: int) -> dict[str, Any]:
        """Multipliers in force at ``epoch``: link bandwidth factors, edges up, cloud capacity.

        Inside step() and reset() they are computed once per epoch (the scenario's fault lists do not
        change during a call); outside, every call reads the lists afresh (wrappers inject faults between
        steps). The returned dict and arrays are shared: do not modify them."""
        scope = self._faults_scope
        if scope is None:
            return self._compute_faults(epoch)
        f = scope.get(epoch)
        if f is None:
            f = scope[epoch] = self._compute_faults(epoch)
        return f

    def _compute_faults(self, epoch: int) -> dict[str, Any]:
        sc = self.scenario
        E = self.n_edges
        access = np.ones(E)
        backhaul = np.ones(E)
        edge_up = np.ones(E)
        cloud = 1.0
        active = 0
        for lf in sc.faults.links:
            if lf.start_epoch <= epoch < lf.start_epoch + lf.duration_epochs:
                target = access if lf.link == "access" else backhaul
                target[lf.edge] = min(target[lf.edge], lf.bandwidth_factor)
                active += 1
        for ed in sc.faults.edges_down:
            if ed.start_epoch <= epoch < ed.start_epoch + ed.duration_epochs:
                edge_up[ed.edge] = 0.0
                active += 1
        for co in sc.faults.cloud_overload:
            if co.start_epoch <= epoch < co.start_epoch + co.duration_epochs:
                cloud = min(cloud, co.capacity_factor)
                active += 1
        return {"access": access, "backhaul": backhaul, "edge_up": edge_up, "cloud_capacity": cloud, "active": active}

    def _mask_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Feasible routes (E, 3) and operations (E, 5) at the current epoch.

        Read-only views of one (E, 8) array, memoised on all they depend on: the link and edge factors in
        force, the batteries and the ops in flight (a no-op step usually changes none of them)."""
        st = self.state
        assert st is not None
        f = self._faults(st.epoch)
        links = (f["access"].tobytes(), f["backhaul"].tobytes(), f["edge_up"].tobytes()) if f["active"] else None
        key = (links, st.battery_j.tobytes(), st.op_kind.tobytes())
        memo = self._mask_memo
        if memo is not None and memo[0] == key:
            return memo[2], memo[3]
        E, n_routes = self.n_edges, len(TIERS)
        m = np.ones((E, n_routes + len(OPERATIONS)), dtype=bool)  # routes then ops
        battery_ok = st.battery_j > 0
        idle = st.op_kind == 0
        relay_up_busy = bool((st.op_kind == OP_RELAY_UP).any())
        if f["active"]:
            access_up = f["access"] > 0
            backhaul_up = f["backhaul"] > 0
            edge_up = f["edge_up"] > 0
            via_edge = access_up & edge_up
            via_cloud = access_up & backhaul_up
            # at least one route stays selectable; requests with no path fail (SLA violations)
            m[:, ROUTE_END] = battery_ok | ~(via_edge | via_cloud)
            m[:, ROUTE_EDGE] = via_edge
            m[:, ROUTE_CLOUD] = via_cloud
            idle &= edge_up
            m[:, n_routes + OP_RELAY_DOWN] = idle & backhaul_up
            m[:, n_routes + OP_FINETUNE] = idle
            m[:, n_routes + OP_RELAY_UP] = m[:, n_routes + OP_RELAY_DOWN]
            m[:, n_routes + OP_RELAY_TO_END] = idle & access_up
        else:  # no fault in force: every edge and link is up, every op feasible on an idle edge
            m[:, ROUTE_END] = battery_ok
            m[:, n_routes + OP_RELAY_DOWN :] = idle[:, None]
        if relay_up_busy:  # no second relay_up while one is in flight
            m[:, n_routes + OP_RELAY_UP] = False
        m.setflags(write=False)
        self._mask_memo = (key, m, m[:, :n_routes], m[:, n_routes:])
        return self._mask_memo[2], self._mask_memo[3]

    def action_masks(self) -> np.ndarray:
        """Flat boolean mask for sb3-contrib's MaskablePPO: per edge 3 route then 5 op entries."""
        if self.state is None:
            raise RuntimeError("action_masks() called before reset()")
        routes, ops = self._mask_arrays()
        memo = self._mask_memo
        if memo is not None and memo[2] is routes and memo[3] is ops:  # the memoised (E, 8) array, flat
            return memo[1].ravel().copy()
        return np.concatenate([routes, ops], axis=1).ravel()

    def gym_action_mask(self) -> tuple[np.ndarray, ...]:
        """Gymnasium's MultiDiscrete mask (``info["action_mask"]``): per edge a route (3) then an op (5) int8 array.

        ``env.action_space.sample(mask=env.gym_action_mask())`` draws a feasible action. The arrays are
        read-only and shared while the mask does not change (see :mod:`gaisnet_env.masks`)."""
        self._mask_arrays()
        m = self._mask_memo[1]  # type: ignore[index]  # the memoised (E, 8) array _mask_arrays just checked
        memo = self._gym_mask_memo
        if memo is not None and memo[0] is m:
            return memo[1]
        out = masks.gym_mask(m, self.action_space.nvec)
        self._gym_mask_memo = (m, out)
        return out

    @staticmethod
    def _fallback_route(route: np.ndarray, routes_ok: np.ndarray) -> np.ndarray:
        """Nearest feasible tier: cloud -> edge -> end, edge -> cloud -> end, end -> edge -> cloud."""
        order = {
            ROUTE_END: (ROUTE_EDGE, ROUTE_CLOUD),
            ROUTE_EDGE: (ROUTE_CLOUD, ROUTE_END),
            ROUTE_CLOUD: (ROUTE_EDGE, ROUTE_END),
        }
        out = route.copy()
        for e, r in enumerate(route):
            if not routes_ok[e, r]:
                out[e] = next((c for c in order[int(r)] if routes_ok[e, c]), ROUTE_END)
        return out

    def _op_cost(self, name: str, e: int, res: Any,
                 faults: dict[str, Any]) -> tuple[float, float, float, float, float, float]:
        """Duration (s), edge and cloud energy (J, radio included), bytes up/down and cloud server-seconds
        (this edge's share) of a started op. Compute is charged part by part at the declared profiles
        (:mod:`gaisnet_env.op_costs`); a federated round's senders split its energy (``res.share``) but
        each waits for the whole round."""
        sc = self.scenario
        refs = sc.reference_models
        node_e, node_c = self.node["edge"], self.node["cloud"]
        charged = op_costs.op_charge(res, refs)
        flops_edge, flops_cloud = charged["edge"], charged["cloud"]
        share = float(getattr(res, "share", 1.0))
        up, down = float(res.bytes_up), float(res.bytes_down)
        if name == "relay_down":
            if sc.workers.relay_down_variant == "ship_samples" and refs.edge and refs.edge.sample_bytes:
                down = float(res.samples * refs.edge.sample_bytes)
            elif sc.workers.relay_down_variant == "ship_adapter" and refs.edge and refs.edge.update_bytes:
                down = float(refs.edge.update_bytes)
        elif name == "relay_up" and refs.edge and refs.edge.update_bytes:
            up = float(refs.edge.update_bytes)
        elif name == "relay_to_end" and refs.end and refs.end.update_bytes:
            down = float(refs.end.update_bytes)
        t_edge = flops_edge / (node_e.effective_flops * sc.hardware.op_share)
        # an overloaded cloud gives the op a smaller share of its servers (energy is per FLOP)
        t_cloud = flops_cloud / (node_c.effective_flops * faults["cloud_capacity"])
        if name == "relay_to_end":
            link = faults["access"][e]
            bw_down, bw_up = self.access_down_bps[e] * link, self.access_up_bps[e] * link
            rtt, j_up, j_down = self.access_rtt_s[e], self.access_j_up[e], self.access_j_down[e]
        else:
            link = faults["backhaul"][e]
            bw_down, bw_up = self.backhaul_down_bps[e] * link, self.backhaul_up_bps[e] * link
            rtt, j_up, j_down = self.backhaul_rtt_s[e], self.backhaul_j_up[e], self.backhaul_j_down[e]
        t_net = float(cost.transfer_time_s(up, bw_up, rtt)) if up else 0.0
        t_net += float(cost.transfer_time_s(down, bw_down, rtt)) if down else 0.0
        duration = t_edge + t_cloud + t_net
        # dynamic energy of the edge's busy time (its idle power is charged every epoch anyway)
        energy_edge = (node_e.active_w - node_e.idle_w) * flops_edge / node_e.effective_flops
        energy_edge += float(cost.radio_energy_j(up, j_up) + cost.radio_energy_j(down, j_down))
        energy_cloud = share * node_c.active_w * flops_cloud / node_c.effective_flops * node_c.pue
        return float(duration), float(energy_edge), float(energy_cloud), up, down, share * float(t_cloud)

    def _start_ops(self, started: list[tuple[str, int]]) -> list[Any]:
        """Start this epoch's ops: ``workers.start_ops`` (relay_ups as one federated round) where the
        workers have it, else ``start_op`` one by one."""
        many = getattr(self.workers, "start_ops", None)
        if many is not None:
            return list(many(started))
        return [self.workers.start_op(name, e) for name, e in started]

    def _stock_workers(self) -> bool:
        """Whether the workers are a :class:`WorkerSystem` (or a subclass) with its own ``accuracy_all``,
        ``_stacked_tables``, ``_uid`` and ``version``: their accuracy is then a function of the domain and of
        the weight tokens (``_uid_*``, new on every weight change), and their versions are ``_ver_*``."""
        w = self.workers
        memo = self._stock_of
        if memo is None or memo[0] is not w:
            names = ("accuracy_all", "_stacked_tables", "_uid", "version")
            ok = isinstance(w, WorkerSystem) and all(
                getattr(type(w), n) is getattr(WorkerSystem, n) and n not in vars(w) for n in names
            )
            memo = self._stock_of = (w, ok)
        return memo[1]

    def _check_label_hits(self) -> None:
        """The estimated accuracy view needs ``workers.label_hits``: raise TypeError if it is missing."""
        for name in ("label_hits", "domain_report"):
            if self.accuracy_view == "estimated" and not callable(getattr(self.workers, name, None)):
                raise TypeError(
                    f"workers: {type(self.workers).__name__} has no method {name!r}, which "
                    f"accuracy_view='estimated' (the default) needs; implement it (see WorkerSystem.{name}) "
                    "or pass accuracy_view=\"exact\""
                )

    def _observe_labels(self, fb_edges: np.ndarray, n_fb: np.ndarray, route: np.ndarray) -> None:
        """Score this epoch's returned labels (the newest ``n_fb[e]`` feedback samples of each edge of
        ``fb_edges``) and fold them into the decayed counts of the state. End and edge answers are always
        known at the edge; the cloud's only where the edge routed to the cloud this epoch."""
        st = self.state
        E = self.n_edges
        new_hits = np.zeros((E, 3))
        new_seen = np.zeros((E, 3))
        cap = self.scenario.workers.feedback_buffer
        for e in fb_edges:
            n = min(int(n_fb[e]), cap)  # label_hits scores at most the buffer
            new_hits[e] = self.workers.label_hits(int(e), n)
            new_seen[e] = n
        observed = np.zeros((E, 3), dtype=bool)
        observed[fb_edges, :2] = True
        observed[fb_edges, 2] = route[fb_edges] == ROUTE_CLOUD
        st.label_hits, st.label_seen = operator_view.observe(st.label_hits, st.label_seen, new_hits, new_seen, observed)

    def _tier_accuracy(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E, 3) accuracy of each tier's classifier on each cell's current domain.

        Memoised for stock workers (see :meth:`_stock_workers`) on read-only domain arrays (those of
        :meth:`_domains_at`, which never change) and the weight tokens: a new domain or any weight change
        (an op committed, reset, restore) recomputes. The result is then read-only."""
        w = self.workers
        key = None
        if self._stock_workers() and not (class_mix.flags.writeable or style_mix.flags.writeable):
            key = (w._uid_cloud, *w._uid_edge, *w._uid_end)
            memo = self._acc_memo
            if memo is not None and memo[0] is w and memo[2] is class_mix and memo[3] is style_mix and memo[1] == key:
                return memo[4]
        acc_all = getattr(w, "accuracy_all", None)
        if acc_all is not None:  # batched over edges from cached tables
            out = np.clip(np.array(acc_all(class_mix, style_mix), dtype=np.float64), 0.0, 1.0)
        else:
            E = self.n_edges
            out = np.empty((E, 3))
            for e in range(E):
                for j, tier in enumerate(TIERS):
                    out[e, j] = w.accuracy(tier, e, class_mix[e], style_mix[e])
            # domain mixes sum to 1 up to rounding: a share may come out as 1.0000000000000004
            out = np.clip(out, 0.0, 1.0)
        if key is not None:
            out.setflags(write=False)
            self._acc_memo = (w, key, class_mix, style_mix, out)
        return out

    def _generation_quality(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E, 2) expected quality of the edge's and the cloud's generator on each cell's current domain:
        ``style_mix[e] @ table @ class_mix[e]`` with the tables of ``workers.generation_table``. Memoised for
        stock workers on read-only domain arrays and the generator weight tokens (see :meth:`_tier_accuracy`)."""
        w = self.workers
        key = None
        if self._stock_workers() and not (class_mix.flags.writeable or style_mix.flags.writeable):
            key = w.gens.uids()
            memo = self._gen_memo
            if memo is not None and memo[0] is class_mix and memo[1] is style_mix and memo[2] == key:
                return memo[3]
        E = self.n_edges
        tables = np.empty((E, 2, len(STYLES), 10))
        cloud = np.asarray(w.generation_table("cloud", 0), dtype=np.float64)
        for e in range(E):
            tables[e, 0] = w.generation_table("edge", e)
            tables[e, 1] = cloud
        sm = np.asarray(style_mix, dtype=np.float64)[:, None, None, :]
        cm = np.asarray(class_mix, dtype=np.float64)[:, None, :, None]
        out = np.clip(np.matmul(np.matmul(sm, tables), cm)[:, :, 0, 0], 0.0, 1.0)
        if key is not None:
            out.setflags(write=False)
            self._gen_memo = (class_mix, style_mix, key, out)
        return out

    def _figures(self, epoch: int) -> _EpochFigures:
        """Workload figures of ``epoch`` (hour, rates; domains via :meth:`_domains_at`), memoised: they are
        pure functions of the workload (a new object on reset and restore, which drops the memo) and of the
        epoch. A step reads its epoch and the next one; the last few epochs are kept."""
        wl = self.workload
        memo = self._figures_memo
        if self._figures_of is not wl:
            memo.clear()
            self._figures_of = wl
        fig = memo.get(epoch)
        if fig is None:
            if len(memo) >= 4:
                del memo[next(iter(memo))]
            fig = memo[epoch] = _EpochFigures(wl.hour(epoch), _read_only(wl.rates(epoch)))
        return fig

    def _domains_at(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``workload.domains(epoch)`` as read-only arrays, memoised with :meth:`_figures`."""
        fig = self._figures(epoch)
        if fig.domains is None:
            class_mix, style_mix = self.workload.domains(epoch)
            # cells keep a domain for many epochs: when nothing changed since the epoch before, share its
            # (bit-identical) arrays, so that the memos keyed on them hold (accuracy, quality, drift)
            prev = self._figures_memo.get(epoch - 1)
            if (
                prev is not None
                and prev.domains is not None
                and prev.domains[0].tobytes() == class_mix.tobytes()
                and prev.domains[1].tobytes() == style_mix.tobytes()
            ):
                fig.domains = prev.domains
            else:
                fig.domains = (_read_only(class_mix), _read_only(style_mix))
        return fig.domains

    def true_domain(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth for analysis and benchmarks, not an observation: every cell's (class mix (E, 10),
        style mix (E, n_styles)) at ``epoch`` (read-only arrays). An operator does not know it."""
        if self.state is None:
            raise RuntimeError("call reset() before true_domain()")
        return self._domains_at(int(epoch))

    def _carbon_intensity(self, fig: _EpochFigures) -> tuple[float, float]:
        """Grid carbon intensity (g/kWh) at the edge and cloud sites in the hour of ``fig``, memoised in it
        (keyed on the regions and the trace)."""
        en = self.scenario.energy
        key = (en.edge_region, en.cloud_region, en.carbon_trace)
        if fig.carbon is None or fig.carbon[0] != key:
            ci_edge = float(profiles.carbon_intensity(en.edge_region, fig.hour, en.carbon_trace))
            ci_cloud = float(profiles.carbon_intensity(en.cloud_region, fig.hour, en.carbon_trace))
            fig.carbon = (key, ci_edge, ci_cloud)
        return fig.carbon[1], fig.carbon[2]

    def _observation(self) -> np.ndarray:
        st, sc = self.state, self.scenario
        assert st is not None
        t = st.epoch
        E = self.n_edges
        now = self._figures(t)
        class_mix, style_mix = self._domains_at(min(t, sc.horizon))
        self._domain = (class_mix, style_mix)
        f = self._faults(t)
        hour = now.hour
        n_edge = E * len(EDGE_FEATURES)
        flat = np.empty(n_edge + len(GLOBAL_FEATURES))  # edge features row-major, then the global ones
        feats = flat[:n_edge].reshape(E, len(EDGE_FEATURES))
        feats[:, 0] = np.minimum(now.rates / (2.0 * self.mean_rate), 1.0)
        if self.accuracy_view == "exact":  # the oracle view
            feats[:, 1:4] = self._tier_accuracy(class_mix, style_mix)
        else:  # the operator's view: from the labels that came back
            feats[:, 1:4] = operator_view.estimate(st.label_hits, st.label_seen, st.label_prior)
        feats[:, 4] = 1.0 - np.exp(-st.edge_backlog_s / sc.epoch_s)
        feats[:, 5] = f["access"]
        feats[:, 6] = f["backhaul"]
        feats[:, 7:11] = 1.0 - np.exp(-st.since_op / _SINCE_SCALE)
        feats[:, 11] = st.op_kind > 0
        feats[:, 12] = 1.0 - np.exp(-st.op_remaining_s / sc.epoch_s)
        if self.accuracy_view == "exact":
            feats[:, 13] = self._drift(class_mix, style_mix)
        else:  # from the edges' domain reports (an edge without feedback reports no drift)
            rc, rs, has = operator_view.reports(self.workers, E)
            feats[:, 13] = np.where(has, operator_view.domain_drift(rc, rs, st.reported_class_mix,
                                                                     st.reported_style_mix), 0.0)
        ci_edge, ci_cloud = self._carbon_intensity(now)
        feats[:, 14] = min(ci_edge / 1000.0, 1.0)
        feats[:, 15] = f["edge_up"]
        cap = sc.energy.end_battery_j
        feats[:, 16] = st.battery_j / cap if cap else 1.0
        feats[:, 17] = st.last_violation
        feats[:, 18] = st.last_latency_ratio
        flat[n_edge:] = (
            1.0 - math.exp(-st.cloud_backlog_s / sc.epoch_s),
            f["cloud_capacity"],
            0.5 + 0.5 * math.sin(2 * math.pi * hour / 24.0),
            0.5 + 0.5 * math.cos(2 * math.pi * hour / 24.0),
            min(ci_cloud / 1000.0, 1.0),
            min(t / sc.horizon, 1.0),
        )
        obs = flat.astype(np.float32)
        if not np.isfinite(obs).all():
            bad = int(np.flatnonzero(~np.isfinite(obs))[0])
            raise FloatingPointError(f"observation[{bad}] is not finite at epoch {t}: a bug in the simulation")
        return obs.clip(0.0, 1.0, out=obs)

    def _drift(self, class_mix: np.ndarray, style_mix: np.ndarray) -> np.ndarray:
        """(E,) distance in [0, 1] between the current domain and the one last adapted to."""
        st = self.state
        assert st is not None
        # memo on read-only domain arrays (see _tier_accuracy) and the adapted mixes' bytes (a commit
        # writes them in place)
        key = None
        if not (class_mix.flags.writeable or style_mix.flags.writeable):
            key = (st.adapted_class_mix.tobytes(), st.adapted_style_mix.tobytes())
            memo = self._drift_memo
            if memo is not None and memo[0] is class_mix and memo[1] is style_mix and memo[2] == key:
                return memo[3]
        out = operator_view.domain_drift(class_mix, style_mix, st.adapted_class_mix, st.adapted_style_mix)
        if key is not None:
            self._drift_memo = (class_mix, style_mix, key, _read_only(out))
        return out

    def _versions(self) -> dict[str, Any]:
        """Model versions: how many times each model's weights changed (process-wide counters)."""
        E = self.n_edges
        w = self.workers
        if self._stock_workers():  # version() reads these counters
            return {
                "model_version_cloud": w._ver_cloud,
                "model_version_edge": np.array(w._ver_edge, dtype=np.int64),
                "model_version_end": np.array(w._ver_end, dtype=np.int64),
            }
        return {
            "model_version_cloud": self.workers.version("cloud", 0),
            "model_version_edge": np.array([self.workers.version("edge", e) for e in range(E)], dtype=np.int64),
            "model_version_end": np.array([self.workers.version("end", e) for e in range(E)], dtype=np.int64),
        }

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
            "action_mask": self.gym_action_mask(),
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
        if self.state.label_hits is None:  # a snapshot from before the operator view: no labels seen
            st = self.state
            st.label_hits, st.label_seen, st.label_prior = operator_view.initial(self.n_edges, 3)
        if self.state.reported_class_mix is None:  # a snapshot from before the reported drift
            st = self.state
            st.reported_class_mix, st.reported_style_mix = st.adapted_class_mix.copy(), st.adapted_style_mix.copy()
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


def check_workers(workers: Any) -> None:
    """Raise TypeError naming the first method of :data:`WORKER_METHODS` that ``workers`` lacks."""
    for name in WORKER_METHODS:
        if not callable(getattr(workers, name, None)):
            raise TypeError(
                f"workers: {type(workers).__name__} has no method {name!r}; a workers object needs "
                f"{', '.join(WORKER_METHODS)} (see docs/workers.md)"
            )


def _check_finite_info(info: dict[str, Any], epoch: int) -> None:
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


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """:func:`cost.weighted_quantile` of 1-D ``values`` and ``weights`` for each of ``qs``, sorting once."""
    keep = weights > 0.0
    v, wt = (values, weights) if keep.all() else (values[keep], weights[keep])
    if v.size == 0:
        return tuple(float("nan") for _ in qs)
    order = np.argsort(v, kind="stable")
    v, cw = v[order], np.cumsum(wt[order])
    idx = np.searchsorted(cw, np.array(qs) * cw[-1], side="left")
    return tuple(float(v[min(int(i), v.size - 1)]) for i in idx)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class _EpochFigures:
    """Workload figures of one epoch (see :meth:`GaisNetEnv._figures`)."""

    __slots__ = ("hour", "rates", "domains", "carbon")

    def __init__(self, hour: float, rates: np.ndarray) -> None:
        self.hour = hour
        self.rates = rates
        self.domains: tuple[np.ndarray, np.ndarray] | None = None
        self.carbon: tuple | None = None  # (regions and trace, edge, cloud g/kWh)


def _drain_wait(backlog_s: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Seconds until ``backlog_s`` of work drains at ``rate`` (server-seconds per second); inf if stalled."""
    wait = np.where(backlog_s > 0, np.inf, 0.0)
    np.divide(backlog_s, rate, out=wait, where=(rate > 0) & (backlog_s > 0))
    return wait


#: GaisNetEnv's own keyword arguments (named in the error for an unknown one).
_ENV_ARGUMENTS: tuple[str, ...] = (
    "scenario", "render_mode", "cache_dir", "masked_action", "accuracy_view", "torch_threads", "worker_system",
)


def make_env(scenario: str | Path | dict[str, Any] | Scenario = "metro", **kwargs: Any) -> GaisNetEnv:
    """Build a :class:`GaisNetEnv` directly (no registry, no wrappers)."""
    return GaisNetEnv(scenario, **kwargs)
