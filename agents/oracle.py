"""Look-ahead oracle: an UPPER REFERENCE, not a deployable policy. Slow by design.

Each epoch the oracle snapshots the live env (``env.snapshot()``: simulation state, RNG,
workload and model weights), tries a small set of candidate joint actions, simulates each for
``horizon`` epochs (the candidate first, then a copy of the ``rollout`` heuristic), restores
the snapshot after each trial and finally executes the candidate with the best simulated
return. Because the snapshot includes the RNG, the look-ahead sees the *actual* future
arrivals and drift: information no real scheduler has, hence "oracle".

Candidates: the proposal of every heuristic in ``proposers``, plus per-edge variations of the
rollout heuristic's proposal (each feasible op on the ``vary_edges`` edges with the largest
drift / accuracy gap, and each feasible route), capped at ``max_candidates``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from gaisnet_env.agents.base import N_OPS, N_ROUTES, ObsView, Policy, n_edges_of, split_mask
from gaisnet_env.agents.heuristics import make_heuristic

#: Heuristics whose proposals the oracle always considers.
#: ``periodic`` is among them because, tuned, it is the best heuristic on metro (a reference that could not
#: follow the best heuristic's proposal would not bound it).
DEFAULT_PROPOSERS: tuple[str, ...] = ("cost-aware", "periodic", "greedy-accuracy", "threshold", "always-edge",
                                      "always-cloud")


class LookaheadOracle:
    """Upper reference that plans on copies of the env (see the module docstring).

    Args:
        env: the live env it will act on (or call ``bind(env)``); must offer snapshot/restore.
        horizon: look-ahead epochs per candidate (the candidate's epoch included).
        max_candidates: joint actions simulated per epoch.
        vary_edges: edges whose op / route the variations touch (most drifted first).
        rollout: heuristic that continues the look-ahead after the candidate's first epoch.
        proposers: heuristics whose proposals are candidates.
        gamma: discount of the look-ahead return.
    """

    label = "oracle (look-ahead upper reference)"

    def __init__(
        self,
        env: Any | None = None,
        horizon: int = 3,
        max_candidates: int = 12,
        vary_edges: int = 2,
        rollout: str = "cost-aware",
        proposers: tuple[str, ...] = DEFAULT_PROPOSERS,
        gamma: float = 1.0,
    ) -> None:
        self.horizon, self.max_candidates, self.vary_edges = int(horizon), int(max_candidates), int(vary_edges)
        self.rollout_name, self.proposer_names, self.gamma = rollout, tuple(proposers), float(gamma)
        self.env: Any | None = None
        self.simulated_steps = 0
        if env is not None:
            self.bind(env)

    def bind(self, env: Any) -> None:
        """Attach the live env; builds the rollout and proposer heuristics on it."""
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        if not hasattr(self.env, "snapshot"):
            raise TypeError("LookaheadOracle: the env must provide snapshot() and restore()")
        self.rollout = make_heuristic(self.rollout_name, env=self.env)
        self.proposers = [make_heuristic(n, env=self.env) for n in self.proposer_names]

    def reset(self, seed: int | None = None) -> None:
        if self.env is None:
            raise RuntimeError("LookaheadOracle: call bind(env) (evaluate() does) before use")
        self.rollout.reset(seed)
        for p in self.proposers:
            p.reset(seed)

    # -- planning ---------------------------------------------------------------------------

    def _candidates(self, observation: np.ndarray, info: dict[str, Any]) -> list[np.ndarray]:
        E = n_edges_of(info, observation)
        routes_ok, ops_ok = split_mask(info, E)
        base = np.asarray(self.rollout.act(observation, info), dtype=np.int64)
        cands = [base] + [np.asarray(p.act(observation, info), dtype=np.int64) for p in self.proposers]
        view = ObsView(observation)
        urgency = view.edge("drift") + (np.max(view.accuracy, axis=1) - view.edge("accuracy_edge"))
        for e in np.argsort(-urgency)[: self.vary_edges]:
            for o in range(N_OPS):
                if ops_ok[e, o] and o != base[2 * e + 1]:
                    a = base.copy()
                    a[2 * e + 1] = o
                    cands.append(a)
            for r in range(N_ROUTES):
                if routes_ok[e, r] and r != base[2 * e]:
                    a = base.copy()
                    a[2 * e] = r
                    cands.append(a)
        unique: list[np.ndarray] = []
        seen: set[bytes] = set()
        for a in cands:
            key = a.tobytes()
            if key not in seen:
                seen.add(key)
                unique.append(a)
        return unique[: self.max_candidates]

    def _clone(self, policy: Policy) -> Policy:
        """Deep copy of a heuristic's memory that shares (does not copy) the env and cost model."""
        memo: dict[int, Any] = {id(self.env): self.env}
        pred = getattr(policy, "predictor", None)
        if pred is not None:
            memo[id(pred)] = pred
        return copy.deepcopy(policy, memo)

    def _simulate(self, first: np.ndarray, rollout: Policy) -> float:
        env = self.env
        assert env is not None
        total, disc = 0.0, 1.0
        obs, r, term, trunc, info = env.step(first)
        self.simulated_steps += 1
        total += r
        for _ in range(self.horizon - 1):
            if term or trunc:
                break
            disc *= self.gamma
            obs, r, term, trunc, info = env.step(rollout.act(obs, info))
            self.simulated_steps += 1
            total += disc * r
        return total

    def act(self, observation: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        env = self.env
        if env is None:
            raise RuntimeError("LookaheadOracle: call bind(env) before act()")
        # proposers' act() advances their own memory once per real epoch (cands built once)
        cands = self._candidates(observation, info)
        if len(cands) == 1:
            return cands[0]
        snap = env.snapshot()
        rollout_state = self._clone(self.rollout)
        best, best_val = cands[0], -np.inf
        try:
            for a in cands:
                val = self._simulate(a, self._clone(rollout_state))
                env.restore(snap)
                if val > best_val:
                    best, best_val = a, val
        finally:
            env.restore(snap)
        return best
