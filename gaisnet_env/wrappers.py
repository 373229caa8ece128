"""Gymnasium wrappers for :class:`~gaisnet_env.env.GaisNetEnv`.

``FlattenMultiDiscreteAction`` gives algorithms that need a ``Discrete`` action (DQN) a flat
view of the env's ``MultiDiscrete`` action: index ``i`` is the mixed-radix number whose
digits are the MultiDiscrete components (the last component varies fastest).

``GraphObservation`` gives graph policies a ``Dict`` observation (node features, adjacency,
``edge_index``) over the topology, ``RewardWeights`` overrides the reward weights at run time,
``RecordMetrics`` puts per-episode metric means and totals in ``info["episode_metrics"]``.
``FaultInjection`` (in :mod:`gaisnet_env.fault_injection`, importable from here) injects random faults.
All compose with Gymnasium's standard wrappers (see ``docs/integration.md``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gaisnet_env.fault_injection import FAULT_KINDS as FAULT_KINDS
from gaisnet_env.fault_injection import FaultInjection as FaultInjection

#: Refuse flat spaces above this size (an MLP head with more outputs is not practical).
MAX_FLAT_ACTIONS: int = 2**24


class FlattenMultiDiscreteAction(gym.ActionWrapper):
    """Expose a ``MultiDiscrete`` action space as ``Discrete(prod(nvec))``.

    ``action(i)`` maps a flat index to the env's MultiDiscrete action and ``reverse(a)``
    maps a MultiDiscrete action back to its index. ``action_masks()`` (when the wrapped env
    has one) is lifted to the flat space: index ``i`` is feasible iff every component is; so is
    ``info["action_mask"]``, in Gymnasium's ``Discrete`` format (int8 ``(n,)``), so
    ``env.action_space.sample(mask=info["action_mask"])`` still works.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, spaces.MultiDiscrete):
            raise TypeError(f"FlattenMultiDiscreteAction: needs a MultiDiscrete action space, got {space}")
        self.nvec = np.asarray(space.nvec, dtype=np.int64).ravel()
        n = int(np.prod(self.nvec, dtype=object))
        if n > MAX_FLAT_ACTIONS:
            raise ValueError(
                f"FlattenMultiDiscreteAction: {n} flat actions (nvec {self.nvec.tolist()}) exceed "
                f"{MAX_FLAT_ACTIONS}; use a MultiDiscrete algorithm (PPO, A2C, MaskablePPO) instead"
            )
        self.action_space = spaces.Discrete(n)

    def action(self, action: Any) -> np.ndarray:
        """Flat index -> MultiDiscrete action (int64 array of shape ``nvec.shape``)."""
        i = int(np.asarray(action).reshape(()))
        if not 0 <= i < self.action_space.n:
            raise ValueError(f"action: flat index {i} out of range 0..{self.action_space.n - 1}")
        return np.asarray(np.unravel_index(i, tuple(self.nvec)), dtype=np.int64)

    def reverse(self, action: Any) -> int:
        """MultiDiscrete action -> flat index."""
        arr = np.asarray(action, dtype=np.int64).ravel()
        if arr.shape != self.nvec.shape or np.any(arr < 0) or np.any(arr >= self.nvec):
            raise ValueError(f"reverse: {arr.tolist()} is not an action of MultiDiscrete({self.nvec.tolist()})")
        return int(np.ravel_multi_index(tuple(arr), tuple(self.nvec)))

    def reverse_action(self, action: Any) -> int:  # gymnasium's name for the inverse
        return self.reverse(action)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, self._flat_info(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.action(action))
        return obs, reward, terminated, truncated, self._flat_info(info)

    def _flat_info(self, info: dict[str, Any]) -> dict[str, Any]:
        """``info`` with its ``action_mask`` (if any) lifted to this wrapper's Discrete space."""
        if "action_mask" not in info:
            return info
        from gaisnet_env.masks import discrete_mask

        return {**info, "action_mask": discrete_mask(self.action_masks())}

    def action_masks(self) -> np.ndarray:
        """Boolean mask over the flat actions (outer product of the per-component masks)."""
        flat = np.asarray(self.env.unwrapped.action_masks(), dtype=bool)  # type: ignore[attr-defined]
        out = np.ones(1, dtype=bool)
        start = 0
        for n in self.nvec:
            part = flat[start : start + n]
            out = (out[:, None] & part[None, :]).ravel()
            start += n
        return out


# ---------------------------------------------------------------------------------------------
# Graph observation, reward-weight override, per-episode metrics

#: Tier one-hot columns of a :class:`GraphObservation` node feature row, in this order.
NODE_TIERS: tuple[str, ...] = ("cloud", "agg", "edge", "end")
#: Cell features an ``end`` node carries (the others stay 0 on end nodes).
END_NODE_FEATURES: tuple[str, ...] = (
    "request_rate",
    "accuracy_end",
    "access_bandwidth",
    "since_relay_to_end",
    "battery",
)


def node_feature_names() -> tuple[str, ...]:
    """Column names of a :class:`GraphObservation` node feature row (4 + 19 + 6 = 29 columns)."""
    from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

    return tuple(f"tier_{t}" for t in NODE_TIERS) + EDGE_FEATURES + GLOBAL_FEATURES


class GraphObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observation as a graph of the topology (``env.unwrapped.graph``) for graph policies.

    The observation is a ``Dict`` with

    * ``"nodes"``: ``float32 (N, 29)``, one row per node of the topology in the order of
      :attr:`node_names` (``cloud``, ``agg0..``, ``edge0..``, ``end0..``). Columns
      (:func:`node_feature_names`): a tier one-hot (cloud, agg, edge, end), the 19 per-edge
      features of the flat observation, the 6 global features. The cloud node carries the global
      features, an ``edgeI`` node the 19 features of cell ``I``, an ``endI`` node the subset
      :data:`END_NODE_FEATURES` of cell ``I``, an ``agg`` switch only its one-hot; every other
      entry is 0. Units and normalisations are those of the flat observation (``gaisnet_env.env``).
    * ``"adjacency"``: ``float32 (N, N)``, symmetric 0/1 matrix of the topology's links.
    * ``"edge_index"``: ``int64 (2, 2L)``, the ``L`` links in both directions (PyTorch Geometric's
      COO layout), sources in row 0.

    The topology is fixed for an env instance, so ``adjacency`` and ``edge_index`` are constant;
    only ``nodes`` changes. It may wrap ``NormalizeObservation`` (the flat values are then the
    normalised ones) as long as the flat layout is kept. :meth:`to_networkx` returns the graph with
    the features as node attributes.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        from gaisnet_env.env import EDGE_FEATURES, GLOBAL_FEATURES

        base = env.unwrapped
        graph = getattr(base, "graph", None)
        if graph is None:
            raise TypeError("GraphObservation: the unwrapped env has no `graph` (needs a GaisNetEnv)")
        space = env.observation_space
        n_e = int(base.n_edges)  # type: ignore[attr-defined]
        n_f, n_g = len(EDGE_FEATURES), len(GLOBAL_FEATURES)
        n_flat = n_e * n_f + n_g
        if not isinstance(space, spaces.Box) or space.shape != (n_flat,):
            raise TypeError(f"GraphObservation: needs the flat Box({n_flat},) observation, got {space}")
        tiers = dict(graph.nodes(data="tier"))
        order = {t: i for i, t in enumerate(NODE_TIERS)}

        def sort_key(v: str) -> tuple[int, int, str]:
            idx = graph.nodes[v].get("index", -1)
            if tiers[v] == "agg":
                idx = int(str(v)[3:]) if str(v)[3:].isdigit() else -1
            return order[tiers[v]], int(idx), str(v)

        self.node_names: list[str] = sorted(graph.nodes, key=sort_key)
        self._last_obs: dict[str, np.ndarray] | None = None
        self.feature_names: tuple[str, ...] = node_feature_names()
        pos = {v: i for i, v in enumerate(self.node_names)}
        n_nodes, n_cols = len(self.node_names), len(self.feature_names)
        zero, one = n_flat, n_flat + 1  # indices of the constants 0 and 1 in the extended vector
        gather = np.full((n_nodes, n_cols), zero, dtype=np.int64)
        col_e, col_g = len(NODE_TIERS), len(NODE_TIERS) + n_f
        end_cols = [EDGE_FEATURES.index(name) for name in END_NODE_FEATURES]
        for v, i in pos.items():
            tier = tiers[v]
            gather[i, order[tier]] = one
            if tier == "cloud":
                gather[i, col_g : col_g + n_g] = n_e * n_f + np.arange(n_g)
            elif tier == "edge":
                cell = int(graph.nodes[v]["index"])
                gather[i, col_e : col_e + n_f] = cell * n_f + np.arange(n_f)
            elif tier == "end":
                cell = int(graph.nodes[v]["index"])
                for c in end_cols:
                    gather[i, col_e + c] = cell * n_f + c
        self._gather = gather
        self._filled = gather < n_flat  # entries taken from the flat observation (not constant 0/1)
        adj = np.zeros((n_nodes, n_nodes), dtype=np.float32)
        links = [(pos[a], pos[b]) for a, b in graph.edges]
        for a, b in links:
            adj[a, b] = adj[b, a] = 1.0
        self._adjacency = adj
        src = [a for a, b in links] + [b for a, b in links]
        dst = [b for a, b in links] + [a for a, b in links]
        self._edge_index = np.array([src, dst], dtype=np.int64)
        low = float(min(np.min(space.low), 0.0))
        high = float(max(np.max(space.high), 1.0))
        self.observation_space = spaces.Dict(
            {
                "nodes": spaces.Box(low, high, shape=(n_nodes, n_cols), dtype=np.float32),
                "adjacency": spaces.Box(0.0, 1.0, shape=(n_nodes, n_nodes), dtype=np.float32),
                "edge_index": spaces.Box(0, n_nodes - 1, shape=self._edge_index.shape, dtype=np.int64),
            }
        )

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        """Flat observation -> ``{"nodes", "adjacency", "edge_index"}``."""
        ext = np.concatenate([np.asarray(observation, dtype=np.float32).ravel(), np.array([0.0, 1.0], np.float32)])
        return {
            "nodes": ext[self._gather],
            "adjacency": self._adjacency.copy(),
            "edge_index": self._edge_index.copy(),
        }

    def to_networkx(self, observation: dict[str, np.ndarray] | None = None) -> Any:
        """A copy of the topology (``networkx.Graph``) with node attributes from ``observation``.

        Every node gets ``x`` (its feature row, float32 ``(29,)``) and one attribute per non-zero
        column of its tier (e.g. ``accuracy_edge`` on edge nodes); the graph's own attributes
        (``tier``, ``pos``, ``index``, link ``kind``) are kept. Without ``observation`` the latest
        one (from the last ``reset``/``step``) is used.
        """
        if observation is None:
            if self._last_obs is None:
                raise RuntimeError("to_networkx: no observation yet; call reset() or pass one")
            observation = self._last_obs
        nodes = np.asarray(observation["nodes"], dtype=np.float32)
        g = self.env.unwrapped.graph.copy()  # type: ignore[attr-defined]
        for i, v in enumerate(self.node_names):
            g.nodes[v]["x"] = nodes[i].copy()
            for c in np.flatnonzero(self._filled[i]):
                g.nodes[v][self.feature_names[c]] = float(nodes[i, c])
        return g

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = super().reset(**kwargs)
        self._last_obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self._last_obs = obs
        return obs, reward, terminated, truncated, info


#: Reward weights :class:`RewardWeights` can override (the scenario's ``reward:`` section).
REWARD_WEIGHTS: tuple[str, ...] = ("w_acc", "w_lat", "w_energy", "w_sla", "w_carbon")


class RewardWeights(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Override the scenario's reward weights at run time, e.g. ``RewardWeights(env, w_lat=2.0)``.

    The reward is recomputed from the raw metrics the env reports in ``info`` (all dimensionless):

    ``r = w_acc·accuracy − w_lat·latency_ratio − w_energy·energy_j/E_ref − w_sla·sla_violation_share
    − w_carbon·carbon_g/C_ref``

    with ``E_ref`` (J per epoch) and ``C_ref`` (g per epoch) the env's normalisers
    (``env.unwrapped.energy_ref_j`` / ``carbon_ref_g``). Weights not given keep the scenario's
    values, so with no overrides the reward equals the env's. ``info["reward_*"]`` components are
    rewritten with the new weights and ``info["reward_original"]`` keeps the env's reward.
    ``info["edge_reward"]`` (per-edge, multi-agent view) keeps the scenario's weights; to change
    those build the env with ``reward={...}`` overrides instead.
    """

    def __init__(self, env: gym.Env, weights: dict[str, float] | None = None, **kw: float) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, weights=weights, **kw)
        gym.Wrapper.__init__(self, env)
        given = {**(weights or {}), **kw}
        unknown = sorted(set(given) - set(REWARD_WEIGHTS))
        if unknown:
            raise ValueError(f"RewardWeights: unknown weight(s) {unknown}; allowed: {', '.join(REWARD_WEIGHTS)}")
        base = env.unwrapped
        scenario_reward = base.scenario.reward  # type: ignore[attr-defined]
        self.weights: dict[str, float] = {k: float(getattr(scenario_reward, k)) for k in REWARD_WEIGHTS}
        for k, v in given.items():
            v = float(v)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"RewardWeights: {k} = {v}; must be finite and >= 0")
            self.weights[k] = v
        self.energy_ref_j = float(base.energy_ref_j)  # type: ignore[attr-defined]
        self.carbon_ref_g = float(base.carbon_ref_g)  # type: ignore[attr-defined]

    def components(self, info: dict[str, Any]) -> dict[str, float]:
        """The reward's signed terms under :attr:`weights`, from a step's ``info``."""
        w = self.weights
        return {
            "reward_accuracy": w["w_acc"] * float(info["accuracy"]),
            "reward_latency": -w["w_lat"] * float(info["latency_ratio"]),
            "reward_energy": -w["w_energy"] * float(info["energy_j"]) / self.energy_ref_j,
            "reward_sla": -w["w_sla"] * float(info["sla_violation_share"]),
            "reward_carbon": -w["w_carbon"] * float(info["carbon_g"]) / self.carbon_ref_g,
        }

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        comp = self.components(info)
        info = dict(info)
        info["reward_original"] = float(reward)
        info.update(comp)
        return obs, float(sum(comp.values())), terminated, truncated, info


#: Info metrics :class:`RecordMetrics` averages over an episode (per step).
METRICS_MEAN: tuple[str, ...] = (
    "accuracy",
    "accuracy_end",
    "accuracy_edge",
    "accuracy_cloud",
    "latency_mean_s",
    "latency_p95_s",
    "latency_ratio",
    "sla_violation_share",
    "energy_j",
    "carbon_g",
)
#: Info metrics :class:`RecordMetrics` sums over an episode.
METRICS_TOTAL: tuple[str, ...] = (
    "requests",
    "sla_violations",
    "energy_j",
    "energy_end_j",
    "energy_edge_j",
    "energy_cloud_j",
    "energy_radio_j",
    "carbon_g",
    "bytes_up",
    "bytes_down",
    "ops_started",
    "ops_finished",
    "ops_failed",
    "ops_refused",
    "ops_aborted",
    "actions_masked",
)


class RecordMetrics(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Accumulate ``info`` metrics over an episode; at its end put a summary in ``info["episode_metrics"]``.

    The summary is a flat dict of floats: ``<key>_mean`` (per-epoch mean) for :data:`METRICS_MEAN`,
    ``<key>_total`` (episode sum) for :data:`METRICS_TOTAL`, ``length`` (epochs) and ``return``
    (sum of the rewards this wrapper sees). Units are those of the metric (``energy_j_total`` in
    J, ``carbon_g_mean`` in g per epoch). Keys absent from ``info`` are skipped. The latest summary
    is also kept in :attr:`episode_metrics`. Like ``RecordEpisodeStatistics`` it must sit
    *outside* any ``TimeLimit`` so that it sees the truncation; it composes with
    ``RecordEpisodeStatistics`` (``info["episode"]``) and works in vector envs (the summary is
    aggregated like any info dict).
    """

    def __init__(
        self,
        env: gym.Env,
        mean_keys: tuple[str, ...] | list[str] = METRICS_MEAN,
        total_keys: tuple[str, ...] | list[str] = METRICS_TOTAL,
        info_key: str = "episode_metrics",
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, mean_keys=mean_keys, total_keys=total_keys, info_key=info_key)
        gym.Wrapper.__init__(self, env)
        self.mean_keys = tuple(mean_keys)
        self.total_keys = tuple(total_keys)
        self.info_key = info_key
        self.episode_metrics: dict[str, float] | None = None
        self._clear()

    def _clear(self) -> None:
        self._sums: dict[str, float] = {}
        self._length = 0
        self._return = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._clear()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._length += 1
        self._return += float(reward)
        for k in set(self.mean_keys) | set(self.total_keys):
            if k in info and np.ndim(info[k]) == 0:
                self._sums[k] = self._sums.get(k, 0.0) + float(info[k])
        if terminated or truncated:
            n = max(self._length, 1)
            summary: dict[str, float] = {"length": float(self._length), "return": self._return}
            for k in self.mean_keys:
                if k in self._sums:
                    summary[f"{k}_mean"] = self._sums[k] / n
            for k in self.total_keys:
                if k in self._sums:
                    summary[f"{k}_total"] = self._sums[k]
            self.episode_metrics = summary
            info = dict(info)
            info[self.info_key] = dict(summary)
            self._clear()
        return obs, reward, terminated, truncated, info
