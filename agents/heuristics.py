"""Hand-written scheduling policies (baselines for the learned agents).

Each heuristic is a route rule combined with a knowledge-operation rule:

* route rules: ``end`` / ``edge`` / ``cloud`` (fixed tier), ``accuracy`` (the tier whose
  *observed* accuracy on the cell's domain is highest), ``latency`` (lowest predicted
  latency) and ``cost`` (highest predicted reward: accuracy minus latency, SLA and energy
  penalties, with the scenario's weights), the last two from the cost model's figures;
* op rules: ``none``, ``random``, ``periodic`` (relay_down every ``k`` epochs, relay_up
  every ``m``, finetune every ``j``, relay_to_end every ``n``) and ``threshold`` (finetune when the observed edge
  accuracy is ``acc_drop`` below its episode best or the drift
  indicator passes ``drift_finetune``; relay_down when drift passes ``drift_relay_down``;
  relay_up after a completed finetune; relay_to_end when the end tier lags the edge).

All of them respect the action mask in ``info['action_mask']``. Rules that need the cost
model's figures (``latency``, ``cost``) read them from the env passed to ``bind(env)``
(:func:`gaisnet_env.agents.base.evaluate` calls it); without an env they fall back to
observation-only proxies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from gaisnet_env.agents.base import (
    N_OPS,
    ObsView,
    Policy,
    compose,
    masked_route,
    n_edges_of,
    split_mask,
)
from gaisnet_env.agents.cost_predictor import ROUTE_CLOUD, ROUTE_EDGE, ROUTE_END, CostPredictor

if TYPE_CHECKING:
    from gaisnet_env.env import GaisNetEnv

OP_NONE, OP_RELAY_DOWN, OP_FINETUNE, OP_RELAY_UP, OP_RELAY_TO_END = range(5)
ROUTE_RULES: tuple[str, ...] = ("end", "edge", "cloud", "accuracy", "latency", "cost", "random")
OP_RULES: tuple[str, ...] = ("none", "random", "periodic", "threshold")


class RuleBasedPolicy:
    """A route rule plus an operation rule (see the module docstring); respects the mask.

    Args:
        route: route rule, one of :data:`ROUTE_RULES`.
        ops: operation rule, one of :data:`OP_RULES`.
        k, m, j, n: periodic rule: relay_down every ``k``, relay_up every ``m``, finetune every
            ``j``, relay_to_end every ``n`` epochs (0 disables); edges are staggered so they do
            not all start at once.
        acc_drop: threshold rule: finetune (again, after ``cooldown``) while the observed edge
            accuracy is more than this (absolute, accuracy in [0, 1]) below its episode best.
        drift_finetune: threshold rule: finetune when the drift indicator exceeds this.
        drift_relay_down: threshold rule: relay_down (cloud knowledge) when drift exceeds this.
        relay_up_after_finetune: threshold rule: send the adapter up after each finetune.
        end_gap: threshold rule: relay_to_end when end accuracy lags edge accuracy by more than
            this and the route is ``end`` (0 disables).
        cooldown: epochs an edge waits after an operation completes before another (threshold).
        op_prob: random rule: chance per edge and epoch of starting a uniformly chosen feasible op.
        seed: seed of the random rules (``reset(seed)`` reseeds).
        env: the live env, for the ``latency`` and ``cost`` route rules (or call ``bind``).
    """

    def __init__(
        self,
        route: str = "accuracy",
        ops: str = "none",
        *,
        k: int = 50,
        m: int = 50,
        j: int = 10,
        n: int = 10,
        acc_drop: float = 0.05,
        drift_finetune: float = 0.25,
        drift_relay_down: float = 0.6,
        relay_up_after_finetune: bool = True,
        end_gap: float = 0.05,
        cooldown: int = 2,
        op_prob: float = 0.2,
        seed: int | None = None,
        env: GaisNetEnv | None = None,
    ) -> None:
        if route not in ROUTE_RULES:
            raise ValueError(f"route: got {route!r}; allowed: {', '.join(ROUTE_RULES)}")
        if ops not in OP_RULES:
            raise ValueError(f"ops: got {ops!r}; allowed: {', '.join(OP_RULES)}")
        self.route_rule, self.op_rule = route, ops
        self.k, self.m, self.j, self.n = int(k), int(m), int(j), int(n)
        self.acc_drop, self.drift_finetune, self.drift_relay_down = acc_drop, drift_finetune, drift_relay_down
        self.relay_up_after_finetune, self.end_gap, self.cooldown = relay_up_after_finetune, end_gap, int(cooldown)
        self.op_prob = op_prob
        self._seed = seed
        self.env: GaisNetEnv | None = None
        self.predictor: CostPredictor | None = None
        if env is not None:
            self.bind(env)
        self.reset(seed)

    # -- Policy interface ----------------------------------------------------------------

    def bind(self, env: Any) -> None:
        """Give the policy the live (unwrapped) env for the cost-model route rules."""
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        self.predictor = CostPredictor(self.env) if self.route_rule in ("latency", "cost") else None

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(self._seed if seed is None else seed)
        self.t = 0
        self._best: np.ndarray | None = None  # best observed edge accuracy since last adaptation
        self._pending: np.ndarray | None = None  # (E, 5) ops waiting for a free edge
        self._last_since: np.ndarray | None = None
        self._last_done = np.zeros(0)

    def act(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        E = n_edges_of(info, observation)
        view = ObsView(observation)
        routes_ok, ops_ok = split_mask(info, E)
        route = self._route(view, routes_ok)
        op = self._ops(view, ops_ok, route)
        self.t += 1
        return compose(route, op, ops_ok)

    # -- route rules -----------------------------------------------------------------------

    def _route(self, view: ObsView, routes_ok: np.ndarray) -> np.ndarray:
        E = view.n_edges
        rule = self.route_rule
        if rule in ("end", "edge", "cloud"):
            fixed = {"end": ROUTE_END, "edge": ROUTE_EDGE, "cloud": ROUTE_CLOUD}[rule]
            return masked_route(np.full(E, fixed), routes_ok)
        if rule == "random":
            return np.array([self.rng.choice(np.flatnonzero(routes_ok[e])) for e in range(E)], dtype=np.int64)
        if rule == "accuracy":
            # ties go to the nearer tier (edge, then end, then cloud)
            score = view.accuracy + np.array([1e-4, 2e-4, 0.0])[None, :]
            score = np.where(routes_ok, score, -np.inf)
            return np.argmax(score, axis=1).astype(np.int64)
        if self.predictor is None:
            # without the cost model: the end device has no network leg, the cloud the longest
            return masked_route(np.full(E, ROUTE_END), routes_ok, np.tile([3.0, 2.0, 1.0], (E, 1)))
        pred = self.predictor.predict(view, routes_ok)
        if rule == "latency":
            ok = routes_ok & (pred["score"] > -np.inf)
            score = np.where(ok, -pred["latency_s"] - 10.0 * pred["violation"], -np.inf)
        else:
            score = pred["score"]
        out = np.argmax(score, axis=1).astype(np.int64)
        return masked_route(out, routes_ok)

    # -- operation rules -------------------------------------------------------------------

    def _ops(self, view: ObsView, ops_ok: np.ndarray, route: np.ndarray) -> np.ndarray:
        E = view.n_edges
        op = np.zeros(E, dtype=np.int64)
        if self.op_rule == "none":
            return op
        if self.op_rule == "random":
            for e in range(E):
                feas = np.flatnonzero(ops_ok[e, 1:]) + 1
                if feas.size and self.rng.random() < self.op_prob:
                    op[e] = int(self.rng.choice(feas))
            return op
        if self._pending is None or self._pending.shape[0] != E:
            self._pending = np.zeros((E, N_OPS), dtype=bool)
        if self.op_rule == "periodic":
            self._periodic(E)
        else:
            self._threshold(view, route)
        idle = view.edge("op_in_flight") < 0.5
        # one op per edge and epoch, in priority order; the rest stays pending
        for e in range(E):
            if not idle[e]:
                continue
            for kind in (OP_RELAY_DOWN, OP_FINETUNE, OP_RELAY_UP, OP_RELAY_TO_END):
                if self._pending[e, kind] and ops_ok[e, kind]:
                    op[e] = kind
                    self._pending[e, kind] = False
                    break
        return op

    def _periodic(self, E: int) -> None:
        assert self._pending is not None
        for e in range(E):
            t = self.t + 3 * e  # stagger the edges by three epochs each
            for kind, every, offset in (
                (OP_RELAY_DOWN, self.k, 0),
                (OP_RELAY_UP, self.m, self.m // 2),
                (OP_FINETUNE, self.j, 0),
                (OP_RELAY_TO_END, self.n, self.n // 2),  # half a period after the finetune
            ):
                if every > 0 and (t + offset) % every == every - 1:
                    self._pending[e, kind] = True

    def _threshold(self, view: ObsView, route: np.ndarray) -> None:
        assert self._pending is not None
        E = view.n_edges
        acc_edge = view.edge("accuracy_edge")
        acc_end = view.edge("accuracy_end")
        drift = view.edge("drift")
        since = np.stack([view.edge(f) for f in ("since_relay_down", "since_finetune", "since_relay_up")], axis=1)
        if self._best is None or self._best.shape[0] != E:
            self._best = acc_edge.copy()
            self._last_since = since.copy()
            self._last_done = np.full(E, -(10**9))
        assert self._last_since is not None
        # an op completed when its "epochs since" feature dropped back to ~0
        done = since < self._last_since - 1e-9
        self._best = np.maximum(self._best, acc_edge)  # best edge accuracy seen this episode
        self._last_done = np.where(done.any(axis=1), self.t, self._last_done)
        if self.relay_up_after_finetune:
            self._pending[done[:, 1], OP_RELAY_UP] = True
        self._last_since = since.copy()
        busy = view.edge("op_in_flight") > 0.5
        cool = (self.t - self._last_done) >= self.cooldown
        for e in range(E):
            if busy[e] or not cool[e] or self._pending[e, OP_RELAY_DOWN] or self._pending[e, OP_FINETUNE]:
                continue
            if drift[e] > self.drift_relay_down:
                self._pending[e, OP_RELAY_DOWN] = True
            elif drift[e] > self.drift_finetune or self._best[e] - acc_edge[e] > self.acc_drop:
                self._pending[e, OP_FINETUNE] = True
            elif self.end_gap > 0 and route[e] == ROUTE_END and acc_edge[e] - acc_end[e] > self.end_gap:
                self._pending[e, OP_RELAY_TO_END] = True


def _factory(route: str, ops: str, **fixed: Any) -> Callable[..., Policy]:
    def make(env: GaisNetEnv | None = None, **kwargs: Any) -> Policy:
        params = {**fixed, **kwargs}
        return RuleBasedPolicy(route=params.pop("route", route), ops=params.pop("ops", ops), env=env, **params)

    make.__doc__ = f"RuleBasedPolicy(route={route!r}, ops={ops!r}); keyword args override the defaults."
    return make


#: Registry of the heuristics: name -> factory ``(env=None, **params) -> Policy``.
HEURISTICS: dict[str, Callable[..., Policy]] = {
    "always-end": _factory("end", "none"),
    "always-edge": _factory("edge", "none"),
    "always-cloud": _factory("cloud", "none"),
    "random": _factory("random", "random"),
    "greedy-latency": _factory("latency", "none"),
    "greedy-accuracy": _factory("accuracy", "none"),
    # periodic and threshold tuned on metro's validation seeds (benchmarks/results/*_sweep*.md): periodic
    # finetunes every 5 epochs and relays to the end devices whenever the edge is idle (n=1, the grid's
    # floor; j=5 is interior: j=4 / 6 lose 0.7 / 1.0), never relay_down or relay_up (periodic_sweep_j.md)
    "periodic": _factory("cost", "periodic", j=5, k=0, m=0, n=1),
    "threshold": _factory("edge", "threshold", acc_drop=0.25, cooldown=4, drift_finetune=0.6),
    # relay_up costs more energy (cloud aggregation) than it earns on metro: off by default here. Thresholds
    # tuned on metro's validation seeds (benchmarks/results/cost-aware_sweep_wide.md: +2.86 +- 1.76 paired
    # over the shared threshold defaults acc_drop=0.05, cooldown=2, drift_finetune=0.25)
    "cost-aware": _factory("cost", "threshold", relay_up_after_finetune=False, acc_drop=0.15, cooldown=4,
                           drift_finetune=0.4),
}


def make_heuristic(name: str, env: GaisNetEnv | None = None, **params: Any) -> Policy:
    """Build the heuristic ``name`` (see :data:`HEURISTICS`) with optional parameter overrides."""
    if name not in HEURISTICS:
        raise ValueError(f"heuristic: got {name!r}; known: {', '.join(HEURISTICS)}")
    return HEURISTICS[name](env=env, **params)
