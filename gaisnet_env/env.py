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
from collections.abc import Generator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from gaisnet_env import operator_view
from gaisnet_env import snapshot as snapshot_checks
from gaisnet_env.core import actions, figures, info, layout, observation, requests, reward
from gaisnet_env.core.info import check_finite_info as _check_finite_info
from gaisnet_env.core.state import SimState, add_totals, fill_operator_view, initial_state
from gaisnet_env.env_arguments import ACCURACY_VIEWS, ENV_ARGUMENTS, RENDER_MODES, check_arguments
from gaisnet_env.epoch import EpochPieces
from gaisnet_env.op_batching import run_phases
from gaisnet_env.readings import WORKER_METHODS, EnvReadings, check_workers
from gaisnet_env.scenario import Scenario, check_override_keys, load_scenario
from gaisnet_env.topology import backhaul_hops, build_topology
from gaisnet_env.worker_config import OPERATIONS, STYLES, TIERS
from gaisnet_env.workers import WorkerSystem
from gaisnet_env.workload import Workload

# the layout's names, public here since the first release
EDGE_FEATURES, GLOBAL_FEATURES = layout.EDGE_FEATURES, layout.GLOBAL_FEATURES
ROUTE_END, ROUTE_EDGE, ROUTE_CLOUD = layout.ROUTE_END, layout.ROUTE_EDGE, layout.ROUTE_CLOUD
OP_NONE, OP_RELAY_DOWN, OP_FINETUNE = layout.OP_NONE, layout.OP_RELAY_DOWN, layout.OP_FINETUNE
OP_RELAY_UP, OP_RELAY_TO_END = layout.OP_RELAY_UP, layout.OP_RELAY_TO_END
__all__ = [
    "ACCURACY_VIEWS", "EDGE_FEATURES", "GLOBAL_FEATURES", "OP_FINETUNE", "OP_NONE", "OP_RELAY_DOWN",
    "OP_RELAY_TO_END", "OP_RELAY_UP", "ROUTE_CLOUD", "ROUTE_EDGE", "ROUTE_END", "WORKER_METHODS",
    "GaisNetEnv", "SimState", "check_workers", "make_env",
]


class GaisNetEnv(EpochPieces, EnvReadings, gym.Env):
    """Cloud-edge-end generative-AI system with real model workers (see module docstring)."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}

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
        check_override_keys(overrides, "GaisNetEnv", ENV_ARGUMENTS)
        check_arguments(render_mode, masked_action, accuracy_view, torch_threads)
        if torch_threads is not None:
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
        return run_phases(self.step_phases(action), self._train_deferred)

    def step_phases(self, action: Any, defer_ops: bool = False) -> Generator[list[Any], bool, tuple]:
        """:meth:`step` as a generator: with ``defer_ops`` (stock workers with ``workers.batched_ops``) it
        yields the epoch's deferred training jobs and takes back whether they all trained, so that the native
        vector env trains its copies' jobs as one batch (:mod:`gaisnet_env.copy_steps`); returns the step's
        ``(obs, reward, terminated, truncated, info)``. Without ``defer_ops`` it yields nothing."""
        if self.state is None:
            raise RuntimeError("step() called before reset()")
        # the fault multipliers of an epoch are computed once per step and shared by its pieces (masks,
        # observation); the scope ends with the step, so faults injected between steps always show
        self._faults_scope = {}
        try:
            return (yield from self._step(action, defer_ops))
        finally:
            self._faults_scope = None

    def _train_deferred(self, jobs: list[Any]) -> bool:
        """Train this env's own deferred jobs (a step with ``defer_ops`` driven by :meth:`step`)."""
        return self.workers.train_jobs(jobs)

    def _step(self, action: Any, defer_ops: bool = False) -> Generator[list[Any], bool, tuple]:
        """One epoch: faults, ops started, requests served (queues, latency, energy), reward, feedback,
        ops advanced and committed; the pieces are the pure functions of :mod:`gaisnet_env.core`."""
        st, sc = self.state, self.scenario
        # -- the action carried out; faults at the start of the epoch; ops started (workers train them)
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
        starts = yield from self._start_new_ops(op, f, defer_ops)
        # -- requests (generated here), queues and latency, energy and carbon (charged here)
        counts, n_req, N = requests.arrivals(rng, now.rates, sc.epoch_s, sc.workload.generate_share)
        acc_tier = self._tier_accuracy(class_mix, style_mix)  # (E, 3)
        sv = requests.serve(route, edge_down, f["access"], f["backhaul"], acc_tier,
                            self._generation_quality(class_mix, style_mix))
        work = requests.work(N, route, sv, battery_empty, self.t_classify, self.t_generate)
        lat, share, edge_capacity, new_backlog = self._latency(f, sv, work, route, battery_empty)
        served = sv.served if lat.all_finite else np.where(lat.finite, sv.served, 0.0)
        en, ci = self._energy(now, f, N, route, work, lat, starts, share, edge_capacity)
        # -- metrics and reward; the per-cell figures the next observation shows
        m = reward.metrics(N, n_req, served, lat)
        r = reward.reward(sc.reward, m, en.total, en.carbon_g, self.energy_ref_j, self.carbon_ref_g)
        st.last_violation, st.last_latency_ratio = reward.cell_figures(m, n_req, sc.reward.latency_clip)
        st.edge_backlog_s = np.where(f["edge_up"] > 0, new_backlog[: self.n_edges], 0.0)
        st.cloud_backlog_s = float(new_backlog[self.n_edges])
        edge_reward = reward.edge_reward(sc.reward, m, n_req, served, en, *ci, st.last_violation,
                                         st.last_latency_ratio, self.energy_ref_j, self.carbon_ref_g)
        # -- labelled feedback; ops advanced and committed (weights change here)
        self._feedback(rng, counts, N, f, route, class_mix, style_mix)
        ops_finished, ops_refused = self._advance_ops(class_mix, style_mix)
        # -- episode totals and info
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
